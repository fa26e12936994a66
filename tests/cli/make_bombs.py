#!/usr/bin/env python3
"""Makes fresh hostile inputs for test_cli.sh (issue 20, points 2 and 3):

  encode_bomb.pth  a PyTorch zip (about 9 KB) whose data.pkl, deflated,
                   encodes one 4 MiB string with the allow-listed
                   _codecs.encode again and again: 8192 calls, 32 GiB asked
  png_bomb.png     a PNG (about 380 KB) declaring 20000 x 20000 RGB pixels
                   (1.2 GB decoded), its IDAT a deflate stream of zeros
  png_iccp_bomb.png  a PNG of the model's size (512 x 256) whose iCCP
                   profile inflates to 1 GiB

  make_bombs.py OUTDIR
Only the Python standard library is used."""
import struct
import sys
import zipfile
import zlib
from pathlib import Path


def encode_bomb(path):
    text_len = 4 << 20
    calls = 8192
    p = bytearray(b"\x80\x02" + b"c_codecs\nencode\nq\x00")
    p += b"X" + struct.pack("<I", text_len) + b"a" * text_len
    p += b"X\x06\x00\x00\x00latin1\x86q\x01R0"
    p += b"h\x00h\x01R0" * calls
    p += b"N."
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("archive/data.pkl", bytes(p))
        z.writestr("archive/version", b"3\n")


def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bomb(path, width=20000, height=20000, target=380_000):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # zeros compress about 1000:1: enough rows to make ~380 KB
    co = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)
    out = bytearray()
    for _ in range(height):
        out += co.compress(row)
        if len(out) >= target:
            break
    out += co.flush()
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", bytes(out)) +
                           chunk(b"IEND", b""))


def png_iccp_bomb(path, width=512, height=256):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    co = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    prof = bytearray()
    for _ in range(1024):
        prof += co.compress(block)
    prof += co.flush()
    iccp = b"bomb\x00\x00" + bytes(prof)
    idat = zlib.compress(b"".join(b"\x00" + b"\x07" * (3 * width) for _ in range(height)), 9)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"iCCP", iccp) +
                           chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def main():
    out = Path(sys.argv[1])
    encode_bomb(out / "encode_bomb.pth")
    png_bomb(out / "png_bomb.png")
    png_iccp_bomb(out / "png_iccp_bomb.png")


if __name__ == "__main__":
    main()
