#!/usr/bin/env python3
"""No function in Sources/ is longer than 60 lines (issue 25: a function a newcomer reads in one
screen). Counts every Swift `func`, `init`, `deinit`, accessor and computed property with a body,
and every C function, from its declaration line to its closing brace; prints those over the limit
and exits 1 when there is one.

    python3 scripts/check-function-length.py [--limit 60] [ROOT=Sources]
"""
import os
import re
import sys

DECL = re.compile(r'\b(func\s+[^\s(<]+|init\??\s*[(<]|deinit\b|(?:get|set)\s*\{|var\s+\w+\s*:[^=]*\{\s*$)')
C_DECL = re.compile(r'^[A-Za-z_][\w\s\*]*\b(\w+)\s*\([^;]*$')   # a C function definition's first line
NOT_A_BODY = ('@', '#', 'func ', 'let ', 'var ', 'case ', '///', '//')


def strip(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split('//')[0]


def body_end(lines, i):
    """The index of the line closing the body that starts at or after line i, or None."""
    depth, started = 0, False
    for j in range(i, len(lines)):
        t = strip(lines[j])
        if not started and j > i and t.strip().startswith(NOT_A_BODY):
            return None   # a declaration without a body (a protocol requirement, @_silgen_name)
        for ch in t:
            if ch == '{':
                depth += 1
                started = True
            elif ch == '}':
                depth -= 1
        if started and depth <= 0:
            return j
        if not started and j > i + 8:
            return None
    return None


def functions(root):
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name.endswith('.swift'):
                pattern = DECL
            elif name.endswith('.c'):
                pattern = C_DECL
            else:
                continue
            lines = open(path, encoding='utf-8').read().split('\n')
            for i, line in enumerate(lines):
                if line.strip().startswith(('//', '*', '/*', '#')) or not pattern.search(line):
                    continue
                end = body_end(lines, i)
                if end is not None:
                    yield path, i + 1, end - i + 1, line.strip()


def main(argv):
    limit, root = 60, 'Sources'
    args = list(argv)
    if args[:1] == ['--limit']:
        limit, args = int(args[1]), args[2:]
    if args:
        root = args[0]
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    long = [(n, p, l, d) for p, l, n, d in functions(root) if n > limit]
    for n, p, l, d in sorted(long, reverse=True):
        print(f"{p}:{l}: {n} lines: {d[:90]}")
    if long:
        sys.exit(f"check-function-length: {len(long)} function(s) in {root}/ over {limit} lines; split them")
    print(f"check-function-length: every function in {root}/ is at most {limit} lines")


if __name__ == '__main__':
    main(sys.argv[1:])
