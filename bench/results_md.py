"""Rewrites one `## ` section of bench/RESULTS.md (the benchmark scripts' shared writer)."""
import os


def replace_section(path, heading, section):
    """Replaces the section that starts with `heading` (up to the next `## `) by `section`, or
    appends it; creates the file if needed."""
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)
