#!/usr/bin/env python3
"""Helpers of test_edit_sd.sh (numpy only).

  sd_cli_util.py inputs DIR SD_FULL.safetensors
      DIR/sd.safetensors: SD_FULL without the sizes it binds (sige.unet.latent_*),
      so that the models are sized to the picture; DIR/a.png (256 x 256),
      DIR/b.png (a 16 x 16 red square at 24..40), DIR/m.png (its mask),
      DIR/odd.png (100 x 100), DIR/small.png (128 x 128)
  sd_cli_util.py compare A.png B.png Y0,Y1,X0,X1 FAR_MAX [ALL_MEAN]
      exits 1 unless |A - B| <= FAR_MAX outside rows Y0..Y1, columns X0..X1
      (and, when given, its mean over the whole picture <= ALL_MEAN)
  sd_cli_util.py size A.png W H
"""
import json, struct, sys, zlib
import numpy as np


def write_png(path, a):
    a = np.ascontiguousarray(a.astype(np.uint8))
    h, w = a.shape[:2]
    ct = 2 if a.ndim == 3 else 0
    raw = b"".join(b"\0" + a[y].tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ct, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def read_png(path):
    """8-bit gray/RGB/RGBA PNGs as sige writes them (any filter)."""
    d = open(path, "rb").read()
    i, idat = 8, b""
    while i < len(d):
        n = struct.unpack(">I", d[i:i + 4])[0]
        t, c = d[i + 4:i + 8], d[i + 8:i + 8 + n]
        i += 12 + n
        if t == b"IHDR":
            w, h, bd, ct = struct.unpack(">IIBB", c[:10])
        elif t == b"IDAT":
            idat += c
    ch = {0: 1, 2: 3, 6: 4}[ct]
    raw = zlib.decompress(idat)
    st = w * ch
    out = np.zeros((h, st), np.int32)
    prev = np.zeros(st, np.int32)
    pos = 0
    for y in range(h):
        f = raw[pos]
        row = np.frombuffer(raw[pos + 1:pos + 1 + st], np.uint8).astype(np.int32)
        pos += 1 + st
        cur = np.zeros(st, np.int32)
        for x in range(st):
            a = cur[x - ch] if x >= ch else 0
            b = prev[x]
            c2 = prev[x - ch] if x >= ch else 0
            if f == 0: p = 0
            elif f == 1: p = a
            elif f == 2: p = b
            elif f == 3: p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c2), abs(a - c2), abs(a + b - 2 * c2)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c2)
            cur[x] = (row[x] + p) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, ch)


def inputs(out, full):
    with open(full, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.get("__metadata__", {})
    for k in ("sige.unet.latent_h", "sige.unet.latent_w"):
        meta.pop(k, None)
    h = json.dumps(head).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(out + "/sd.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    y, x = np.mgrid[0:256, 0:256]
    a = np.stack([x, y, 128 + 60 * np.sin(x / 9.0)], -1).clip(0, 255)
    write_png(out + "/a.png", a)
    b = a.copy()
    b[24:40, 24:40] = [250, 20, 20]
    write_png(out + "/b.png", b)
    m = np.zeros((256, 256))
    m[24:40, 24:40] = 255
    write_png(out + "/m.png", m)
    write_png(out + "/odd.png", a[:100, :100])
    write_png(out + "/small.png", a[:128, :128])


def compare(pa, pb, box, far_max, all_mean=None):
    a, b = read_png(pa), read_png(pb)
    if a.shape != b.shape:
        print("shapes differ: %s %s" % (a.shape, b.shape)); return 1
    d = np.abs(a - b).max(-1)
    y0, y1, x0, x1 = map(int, box.split(","))
    far = np.ones(d.shape, bool)
    far[y0:y1, x0:x1] = False
    fm = int(d[far].max()) if far.any() else 0
    print("far max %d (limit %s), mean %.3f (limit %s)" % (fm, far_max, d.mean(), all_mean))
    return 0 if fm <= float(far_max) and (all_mean is None or d.mean() <= float(all_mean)) else 1


if __name__ == "__main__":
    if sys.argv[1] == "inputs":
        inputs(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "compare":
        sys.exit(compare(*sys.argv[2:]))
    elif sys.argv[1] == "size":
        a = read_png(sys.argv[2])
        sys.exit(0 if (a.shape[1], a.shape[0], a.shape[2]) == (int(sys.argv[3]), int(sys.argv[4]), 3) else 1)
