#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (small valid inputs of each format, plus
a few near misses). The checkpoint seeds are real checkpoints of a tiny model, made with

    gan train --model dcgan --loss bce  --image-size 16 --ngf 4 --ndf 4 --latent-dim 8 --batch 4 \
        --steps 1 --seed 1 --checkpoint-every 1 --sample-every 0 --runs-dir /tmp/rg-seeds --name dcgan
    (and --loss wgan --seed 2 --name dcgan-wgan)

and copied in by hand (this script leaves them alone)."""
import gzip, json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def npy(header, data, major=1):
    pre = 10 if major == 1 else 12
    header += " " * ((64 - (pre + len(header) + 1) % 64) % 64) + "\n"
    n = len(header)
    size = struct.pack("<H", n) if major == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes([major, 0]) + size + header.encode("latin-1") + data

f4 = lambda *v: struct.pack("<%df" % len(v), *v)
f8 = lambda *v: struct.pack("<%dd" % len(v), *v)
put("npy", "f4-2x3", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4(1, 2, 3, 4, 5, 6)))
put("npy", "f8-3-v2", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f8(0.1, -2.5, 1e300), major=2))
put("npy", "f4-py2-v3", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }", f4(7, 8), major=3))
put("npy", "scalar", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f4(3.5)))
put("npy", "empty-0x5", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", b""))
put("npy", "fortran-1d", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", f4(5, 6)))
put("npy", "nested", npy("{'descr': '<f4', 'fortran_order': False, 'shape': ((1,),), }", f4(1)))

def st(header, data):
    j = json.dumps(header, sort_keys=True).encode()
    j += b" " * ((8 - len(j) % 8) % 8)
    return struct.pack("<Q", len(j)) + j + data

put("safetensors", "two-f32", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [1, 1], "data_offsets": [8, 12]}}, f4(1, 2, 3)))
put("safetensors", "mixed", st({"__metadata__": {"format": "pt"},
                                "w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]},
                                "n": {"dtype": "I64", "shape": [], "data_offsets": [16, 24]},
                                "i": {"dtype": "I32", "shape": [2], "data_offsets": [24, 32]}},
                               f8(1.5, -2) + struct.pack("<q", 7) + struct.pack("<2i", -1, 3)))
put("safetensors", "empty", st({}, b""))

# IDX: the first byte picks images (odd) or labels (even); the rest is the file.
images = struct.pack(">IIII", 0x803, 2, 4, 4) + bytes(range(32))
labels = struct.pack(">II", 0x801, 3) + bytes([1, 7, 9])
put("idx", "images-raw", b"\x01" + images)
put("idx", "labels-raw", b"\x00" + labels)
put("idx", "images-gz", b"\x01" + gzip.compress(images, mtime=0))
put("idx", "labels-gz", b"\x00" + gzip.compress(labels, mtime=0))
put("idx", "labels-gz-2members", b"\x00" + gzip.compress(labels[:6], mtime=0) + gzip.compress(labels[6:], mtime=0))

# Frames: header "RGAN" | version 3 | type | flags u16 | tag u64 | length u32 | checksum u32,
# then the payload; after the handshake's first frame (the claim: nonce 32 | MAC 32 | JSON), a
# 16-byte tag follows each frame. The fuzz target fixes checksums, the claim's MAC and the tags
# up (unless its first byte is 0xFF), so zeros stand in for them here.
def frame(ftype, payload, tag=0, tagged=True):
    return b"RGAN" + bytes([3, ftype]) + b"\0\0" + struct.pack("<QII", tag, len(payload), 0) + payload + (bytes(16) if tagged else b"")

def hello(rank=0):
    claim = json.dumps({"rank": rank, "ringHost": "10.0.0.2", "ringPort": 7001, "pid": 42}).encode()
    return frame(2, bytes(32) + bytes(32) + claim, tagged=False)

def batch(step, positions, h, w, pixels):
    head = json.dumps({"step": step, "iteration": 0, "positions": positions, "height": h, "width": w}).encode()
    return frame(6, struct.pack("<I", len(head)) + head + pixels)

put("frames", "hello-admitted", b"\0" + hello())
put("frames", "hello-wrong-mac", b"\xff" + hello())
put("frames", "hello-then-frames", b"\0" + hello() + frame(8, b"") + batch(1, [0, 1], 2, 2, bytes(8))
    + frame(9, json.dumps({"reason": "done", "reform": False}).encode()) + frame(10, b""))
put("frames", "reject", b"\0" + frame(4, b"authentication failed: wrong token", tagged=False))
put("frames", "garbage-http", b"\0" + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
put("frames", "raw-checksums", b"\xff" + hello())
