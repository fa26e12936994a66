#!/usr/bin/python3
"""The trained models on real data, which is never in this repository: a
Cityscapes label map for the GauGAN and a church photograph for the DDPM,
both taken from a checkout of the published SIGE code (lmxyy/sige: its
gaugan/assets/{gt,synthetic}_{label,instance}.npy are a Cityscapes
validation map and its edited copy; diffusion/assets/{original,edited}.png
an LSUN church and the same picture with painted strokes).

  SIGE_CHECKOUT=/path/to/sige /usr/bin/python3 tools/train/real_check.py \
      --sige build/tools/sige --gaugan data/models/gaugan-street.safetensors \
      [--ddpm data/models/ddpm-church.safetensors] --out docs/images

GauGAN: renders the real map and checks what issue #17 asks of it, by the
mean colour of the rendered classes: vegetation green (G above R and B),
sky bright (mean above 110 levels) and bluish (B above R), road grey
(saturation below 0.25), cars distinct from the road (mean colours more
than 20 levels apart); then the sparse edit of the map (a car added)
against the dense render of the edited map (PSNR >= 30 dB).
DDPM: SDEdit of the photograph with its painted strokes: the strokes'
region changes (mean change above 10 levels) and the rest stays >= 30 dB
from the original.  Prints one line per check (PASS / FAIL) and writes the
figures real-gaugan.png and real-ddpm.png into --out.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

from fidelity import figure, psnr, reach_of, sh
from palette import colourise
from raster import read_png, write_png

VEGETATION, SKY, ROAD, CAR = 21, 23, 7, 26


def class_mean(img, label, cls):
    m = label == cls
    return img[m].astype(np.float64).mean(axis=0) if m.any() else None


def check(name, ok, detail):
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    return ok


def gaugan(a, env, tmp, src):
    paths = {}
    for which in ("gt", "synthetic"):
        label = np.load(os.path.join(src, f"{which}_label.npy")).astype(np.uint8)
        inst = np.load(os.path.join(src, f"{which}_instance.npy")).astype(np.uint16)
        paths[which] = (os.path.join(tmp, f"{which}_ids.png"), os.path.join(tmp, f"{which}_inst.png"), label)
        write_png(paths[which][0], label)  # gray: the class ids themselves
        write_png(paths[which][1], inst)  # 16-bit: Cityscapes instanceIds
    (a_ids, a_inst, label), (b_ids, b_inst, edited) = paths["gt"], paths["synthetic"]
    render, dense, sparse = (os.path.join(tmp, n) for n in ("render.png", "dense.png", "sparse.png"))
    sh([a.sige, "render", "--model", a.gaugan, "--labels", a_ids, "--instance", a_inst, "--out", render], env)
    sh([a.sige, "render", "--model", a.gaugan, "--labels", b_ids, "--instance", b_inst, "--out", dense], env)
    sh([a.sige, "edit", "-m", "spade:" + a.gaugan, "-a", a_ids, "--original-instance", a_inst,
        "-b", b_ids, "--edited-instance", b_inst, "-o", sparse], env)
    img, d, s = (read_png(p)[..., :3] for p in (render, dense, sparse))
    veg, sky, road, car = (class_mean(img, label, c) for c in (VEGETATION, SKY, ROAD, CAR))
    ok = check("vegetation green", veg[1] > veg[0] and veg[1] > veg[2], f"mean RGB {veg.round()}")
    ok &= check("sky bright and bluish", sky.mean() > 110 and sky[2] > sky[0], f"mean RGB {sky.round()}")
    sat = (road.max() - road.min()) / max(road.max(), 1)
    ok &= check("road grey", sat < 0.25, f"mean RGB {road.round()}, saturation {sat:.2f}")
    dist = float(np.linalg.norm(car - road))
    ok &= check("cars distinct from the road", dist > 20, f"car mean RGB {car.round()}, {dist:.0f} levels from the road's")
    p = psnr(s, d)
    ok &= check("sparse edit vs dense render of the edited map", p >= 30,
                f"{p:.1f} dB ({100 * np.mean(edited != label):.2f} % of the labels changed)")
    diff = np.clip(np.abs(d.astype(int) - s.astype(int)) * 10, 0, 255).astype(np.uint8)
    figure(os.path.join(a.out, "real-gaugan.png"),
           [[colourise(label), img, colourise(edited)], [d, s, diff]])
    return ok


def ddpm(a, env, tmp, src):
    orig, edited = (os.path.join(src, n) for n in ("original.png", "edited.png"))
    out = os.path.join(tmp, "sdedit.png")
    sh([a.sige, "edit", "-m", "ddpm:" + a.ddpm, "-a", orig, "-b", edited, "-o", out, "--seed", "0"], env)
    o, e, r = (read_png(p)[..., :3] for p in (orig, edited, out))
    painted = np.abs(o.astype(int) - e.astype(int)).max(axis=2) > 0
    change = float(np.abs(r.astype(int) - o.astype(int))[painted].mean())
    ok = check("the painted region changes", change > 10, f"mean change {change:.1f} levels over {100 * painted.mean():.1f} % of the pixels")
    p = psnr(r, o, ~reach_of(painted))
    ok &= check("the rest stays", p >= 30, f"{p:.1f} dB from the original outside the edit's reach")
    figure(os.path.join(a.out, "real-ddpm.png"), [[o, e, r]])
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sige", required=True)
    ap.add_argument("--gaugan", default="")
    ap.add_argument("--ddpm", default="")
    ap.add_argument("--out", default="docs/images")
    ap.add_argument("--threads", default="2")
    a = ap.parse_args()
    checkout = os.environ.get("SIGE_CHECKOUT", "")
    if not os.path.isdir(os.path.join(checkout, "gaugan", "assets")):
        raise SystemExit("SIGE_CHECKOUT must name a checkout of the published SIGE code (lmxyy/sige): "
                         "its gaugan/assets and diffusion/assets hold the real data")
    os.makedirs(a.out, exist_ok=True)
    env = dict(os.environ, SIGE_NUM_THREADS=a.threads, SIGE_DEVICE="cpu")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if a.gaugan:
            ok &= gaugan(a, env, tmp, os.path.join(checkout, "gaugan", "assets"))
        if a.ddpm:
            ok &= ddpm(a, env, tmp, os.path.join(checkout, "diffusion", "assets"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
