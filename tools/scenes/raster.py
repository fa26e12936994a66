"""Shared raster helpers of the scene generators: seeded noise, shapes as
boolean masks, shading, and a PNG writer (zlib only: the build machines have
no PIL).  Everything is numpy, float32 RGB in [0, 1], images H x W x 3.
"""
import struct
import zlib

import numpy as np


def value_noise(rng, h, w, cell):
    """Smooth noise in [0, 1]: a random grid of (h/cell) x (w/cell) values,
    bilinearly interpolated (cubic-eased so that grid lines do not show)."""
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    ys = (np.arange(h, dtype=np.float32) + rng.random()) / cell
    xs = (np.arange(w, dtype=np.float32) + rng.random()) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = ys - y0, xs - x0
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    rows = grid[:, x0] + (grid[:, x0 + 1] - grid[:, x0]) * fx[None, :]  # separable: x, then y
    top, bot = rows[y0], rows[y0 + 1]
    return top + (bot - top) * fy[:, None]


def fbm(rng, h, w, cell, octaves=4, gain=0.5):
    """Fractal noise in about [0, 1]: octaves of value noise, each half the cell."""
    total, amp, norm = np.zeros((h, w), np.float32), 1.0, 0.0
    for _ in range(octaves):
        total += amp * value_noise(rng, h, w, max(cell, 1.0))
        norm += amp
        amp *= gain
        cell /= 2
    return total / norm


def grid(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / max(ry, 1e-3)) ** 2 + ((xx - cx) / max(rx, 1e-3)) ** 2 <= 1.0


def rect(yy, xx, y0, x0, y1, x1):
    return (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)


def triangle(yy, xx, p0, p1, p2):
    """Points inside the triangle with vertices (y, x)."""
    def side(a, b):
        return (xx - b[1]) * (a[0] - b[0]) - (a[1] - b[1]) * (yy - b[0])
    d1, d2, d3 = side(p0, p1), side(p1, p2), side(p2, p0)
    neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
    pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
    return ~(neg & pos)


def paint(img, mask, colour, texture=None, amount=0.0):
    """Fills mask with colour, modulated by texture (values around 0.5) by amount."""
    col = np.asarray(colour, np.float32)
    if texture is None:
        img[mask] = col
    else:
        t = (1.0 + amount * (texture[mask] - 0.5) * 2.0)[:, None]
        img[mask] = col[None, :] * t


def shade(img, mask, factor):
    """Multiplies the pixels under mask by factor (a scalar or an H x W map)."""
    f = factor[mask] if isinstance(factor, np.ndarray) else factor
    img[mask] = img[mask] * (f[:, None] if isinstance(f, np.ndarray) else f)


def jitter(rng, colour, amount):
    c = np.asarray(colour, np.float32) * (1.0 + rng.uniform(-amount, amount))
    c += rng.uniform(-amount, amount, 3).astype(np.float32) * 0.5
    return np.clip(c, 0.0, 1.0)


def to_u8(img):
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_png(path, arr):
    """Writes an H x W (grey, uint8 or uint16) or H x W x 3 (RGB uint8) array."""
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    if arr.ndim == 3:
        colour_type, depth = 2, 8
    else:
        colour_type, depth = 0, 16 if arr.dtype == np.uint16 else 8
    if depth == 16:
        arr = arr.astype(">u2")
    raw = b"".join(b"\0" + arr[y].tobytes() for y in range(h))

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def read_png(path):
    """Reads the PNGs write_png writes (8-bit grey/RGB/RGBA, 16-bit grey),
    non-interlaced: enough for the tools' round trips and example files."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour_type, _, _, interlace = hdr
    chans = {0: 1, 2: 3, 6: 4}.get(colour_type)
    if chans is None or interlace or depth not in (8, 16):
        raise ValueError(f"{path}: colour type {colour_type}, depth {depth} not supported here")
    bpp = chans * depth // 8
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * bpp)
    out = np.zeros((h, w * bpp), np.int32)
    prev = np.zeros(w * bpp, np.int32)
    for y in range(h):
        ft, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        cur = np.zeros_like(line)
        if ft == 0:
            cur = line
        elif ft == 2:
            cur = (line + prev) & 255
        else:
            for x in range(len(line)):
                a = cur[x - bpp] if x >= bpp else 0
                b, c = prev[x], prev[x - bpp] if x >= bpp else 0
                if ft == 1:
                    p = a
                elif ft == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 255
        out[y], prev = cur, cur
    if depth == 16:
        out = out.reshape(h, w * chans, 2)
        out = (out[..., 0] << 8) | out[..., 1]
    return out.reshape(h, w, chans).astype(np.uint16 if depth == 16 else np.uint8)
