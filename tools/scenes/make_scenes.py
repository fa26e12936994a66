#!/usr/bin/python3
"""Writes procedurally made training scenes, deterministic from seeds.

  make_scenes.py streets OUT_DIR --first 0 --count 8
      OUT_DIR/street_<seed>_labels.png    Cityscapes colours (what users paint)
      OUT_DIR/street_<seed>_ids.png       class ids, 8-bit grey
      OUT_DIR/street_<seed>_instance.png  instance ids, 16-bit grey (class*1000+n)
      OUT_DIR/street_<seed>_photo.png     the rendered photograph
  make_scenes.py churches OUT_DIR --first 0 --count 8
      OUT_DIR/church_<seed>.png
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from churches import render_church  # noqa: E402
from palette import colourise  # noqa: E402
from raster import write_png  # noqa: E402
from streets import render_street  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["streets", "churches"])
    ap.add_argument("out")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--height", type=int, default=0, help="default 256")
    ap.add_argument("--width", type=int, default=0, help="default 512 (streets), 256 (churches)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    h = a.height or 256
    for seed in range(a.first, a.first + a.count):
        if a.kind == "streets":
            label, inst, photo = render_street(seed, h, a.width or 512)
            base = os.path.join(a.out, f"street_{seed:06d}")
            write_png(base + "_labels.png", colourise(label))
            write_png(base + "_ids.png", label.astype("uint8"))
            write_png(base + "_instance.png", inst.astype("uint16"))
            write_png(base + "_photo.png", photo)
        else:
            write_png(os.path.join(a.out, f"church_{seed:06d}.png"), render_church(seed, h, a.width or 256))


if __name__ == "__main__":
    main()
