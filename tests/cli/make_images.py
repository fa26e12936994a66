#!/usr/bin/env python3
"""Writes data/church_a.png and data/church_b.png: two deterministic 128x128
RGB images for the CLI test of `sige edit --model pd:...` (b is a with a
painted rectangle, about 4% of the pixels), and data/photo_512x256.png, the
same picture at GauGAN's size, which `sige render` must refuse as a label
map.  Standard library only."""
import os
import struct
import zlib

W = H = 128


def png(path, pixel, w=W, h=H):
    rows = b"".join(b"\0" + bytes(c for x in range(w) for c in pixel(x, y)) for y in range(h))
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(rows, 9)))
        f.write(chunk(b"IEND", b""))


def church(x, y):
    if y < 50:  # sky
        return (90 + y, 140 + y, 220)
    if 40 <= x < 88 and y < 110:  # walls, a tower above
        return (170, 150, 120) if (x // 8 + y // 8) % 2 else (150, 130, 100)
    if 58 <= x < 70 and 20 <= y < 50:
        return (120, 100, 80)
    return (60 + (x * 3) % 40, 120, 50)  # grass


def edited(x, y):
    if 20 <= x < 36 and 70 <= y < 96:  # a tree
        return (30, 90, 30)
    return church(x, y)


here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(here, "data"), exist_ok=True)
png(os.path.join(here, "data", "church_a.png"), church)
png(os.path.join(here, "data", "church_b.png"), edited)
png(os.path.join(here, "data", "photo_512x256.png"), lambda x, y: church(x // 4, y // 2), 512, 256)
