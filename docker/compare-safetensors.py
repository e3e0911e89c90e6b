#!/usr/bin/env python3
"""compare-safetensors.py A B: exit 0 when the two safetensors files hold the same tensors (names,
dtypes, shapes and bytes, compared bit for bit); otherwise print what differs and exit 1.
The standard library only (the header is 8 bytes of length, then JSON)."""
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


a, b = load(sys.argv[1]), load(sys.argv[2])
bad = []
if a.keys() != b.keys():
    bad.append(f"tensor names differ: {sorted(a.keys() ^ b.keys())}")
for k in sorted(a.keys() & b.keys()):
    if a[k][:2] != b[k][:2]:
        bad.append(f"{k}: {a[k][:2]} vs {b[k][:2]}")
    elif a[k][2] != b[k][2]:
        diff = sum(x != y for x, y in zip(a[k][2], b[k][2]))
        bad.append(f"{k}: {diff} of {len(a[k][2])} bytes differ")
for line in bad:
    print("compare-safetensors: " + line)
if not a:
    print("compare-safetensors: no tensors")
    sys.exit(1)
sys.exit(1 if bad else 0)
