#!/usr/bin/env python3
"""Writes the small seed corpus of the fuzz harnesses (one folder per
harness) into OUT: a few valid inputs of each format, so libFuzzer starts
from inputs that get past the magic numbers and headers. Standard library
only; the committed golden test files (CIFAR pickles, a JPEG) are copied in.
Usage: python3 tests/fuzz/make_seeds.py OUT
"""
import io
import os
import shutil
import struct
import sys
import tarfile
import zlib

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "datasets", "golden")


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def cifar_binary(out):
    # fuzz_cifar_binary: byte 0 selects 10 (even) / 100 (odd) classes.
    rec10 = bytes([3]) + bytes((7 * j) % 256 for j in range(3072))
    rec100 = bytes([5, 42]) + bytes((13 * j) % 256 for j in range(3072))
    write(out, "cifar10_two", b"\x00" + rec10 * 2)
    write(out, "cifar100_one", b"\x01" + rec100)


def pickles(out):
    for name in ("tiny_cifar10_batch.pkl", "tiny_cifar100_train.pkl"):
        os.makedirs(out, exist_ok=True)
        shutil.copy(os.path.join(GOLDEN, name), os.path.join(out, name))
    import pickle
    write(out, "plain_dict_p2", pickle.dumps({b"labels": [1, 2], b"data": b"\x00" * 8}, protocol=2))
    write(out, "plain_dict_p4", pickle.dumps({"labels": [1, 2], "data": b"\x00" * 8}, protocol=4))
    # Deep nesting (the reader bounds it at 256 levels and tears values down
    # without recursion): 300,000 one-element tuples, and a chain of lists
    # appended top-down through the memo, which only the finished tree shows.
    write(out, "deep_tuples", b"\x80\x02N" + b"\x85" * 300000 + b".")
    chain = b"\x80\x02](]q\x00"
    for i in range(1, 1000):
        slot = bytes([i % 2])
        chain += b"]q" + slot + b"a" + b"h" + slot
    write(out, "deep_list_chain", chain + b"e.")


def idx(out):
    # fuzz_idx: 2-byte little-endian labels length, labels file, images file.
    n, rows, cols = 3, 4, 5
    labels = struct.pack(">II", 0x801, n) + bytes([1, 7, 9])
    images = struct.pack(">IIII", 0x803, n, rows, cols) + bytes(range(n * rows * cols))
    write(out, "three_4x5", struct.pack("<H", len(labels)) + labels + images)


def stl10(out):
    write(out, "labels", bytes([1, 10, 5, 3]))
    write(out, "one_image", bytes((3 * j) % 256 for j in range(3 * 96 * 96)))


def tar(out):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in (("a/data_batch_1", b"x" * 700), ("b" * 120 + "/long_name.bin", b"hello")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        d = tarfile.TarInfo("dir")
        d.type = tarfile.DIRTYPE
        t.addfile(d)
    write(out, "gnu_longname", buf.getvalue())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("p" * 150 + "/pax.bin")
        info.size = 3
        t.addfile(info, io.BytesIO(b"abc"))
    write(out, "pax", buf.getvalue())


def png(w, h):
    raw = b"".join(b"\x00" + bytes((x * 40 + y * 70 + c * 90) % 256 for x in range(w) for c in range(3))
                   for y in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def bmp(w, h):
    row = (w * 3 + 3) // 4 * 4
    pixels = b"".join(bytes((x * 50 + y * 30 + c) % 256 for x in range(w) for c in range(3)).ljust(row, b"\x00")
                      for y in range(h))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def images(out):
    write(out, "rgb_3x2.png", png(3, 2))
    write(out, "rgb_4x3.bmp", bmp(4, 3))
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(GOLDEN, "tiny_gradient.jpg"), os.path.join(out, "tiny_gradient.jpg"))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    cifar_binary(os.path.join(root, "cifar_binary"))
    pickles(os.path.join(root, "pickle"))
    idx(os.path.join(root, "idx"))
    stl10(os.path.join(root, "stl10"))
    tar(os.path.join(root, "tar"))
    images(os.path.join(root, "image"))


if __name__ == "__main__":
    main()
