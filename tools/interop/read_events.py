#!/usr/bin/env python3
"""Read TensorBoard event files with the real reader of the PyPI `tensorboard` package and print
what it saw as one JSON object (used by RingGAN's tests; handy on its own too).

    python3 tools/interop/read_events.py PATH     # an event file, or a folder of them

Output:
    {"path": ..., "tags": {"scalars": [...], "images": [...], ...},
     "scalars": {tag: [[step, value, wall_time], ...]},
     "images":  {tag: [{"step", "width", "height", "png_bytes", "png_magic_ok"}, ...]},
     "file_version": ...}

Loads everything (size_guidance 0: no sampling), with
tensorboard.backend.event_processing.event_accumulator.EventAccumulator.
"""

import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    path = sys.argv[1]
    acc = EventAccumulator(path, size_guidance={"scalars": 0, "images": 0, "tensors": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    out = {
        "path": path,
        "tags": {k: sorted(v) if isinstance(v, list) else v for k, v in tags.items()},
        "scalars": {},
        "images": {},
        "file_version": getattr(acc, "file_version", None),
    }
    for tag in tags.get("scalars", []):
        out["scalars"][tag] = [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)]
    for tag in tags.get("images", []):
        out["images"][tag] = [
            {
                "step": e.step,
                "width": e.width,
                "height": e.height,
                "png_bytes": len(e.encoded_image_string),
                "png_magic_ok": e.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n",
            }
            for e in acc.Images(tag)
        ]
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
