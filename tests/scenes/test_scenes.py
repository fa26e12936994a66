"""Checks of the training scene generators (tools/scenes): deterministic from
a seed, labels that are Cityscapes ids with consistent instances, scenes laid
out as streets and churches, photographs that are not flat label fills, and
the PNG writer's round trip.  TAP output.
"""
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "scenes"))
import churches  # noqa: E402
import streets  # noqa: E402
from palette import CITYSCAPES, colourise  # noqa: E402
from raster import read_png, write_png  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok), detail))


SEEDS = range(6)
scenes = {s: streets.render_street(s) for s in SEEDS}

a, b = streets.render_street(3), scenes[3]
check("streets: same seed, same scene", all(np.array_equal(x, y) for x, y in zip(a, b)))
check("streets: different seeds differ", not np.array_equal(scenes[0][2], scenes[1][2]))
c = churches.render_church(5)
check("churches: same seed, same picture", np.array_equal(c, churches.render_church(5)))
check("churches: different seeds differ", not np.array_equal(c, churches.render_church(6)))

for s, (label, inst, photo) in scenes.items():
    check(f"streets {s}: shapes and types", label.shape == (256, 512) and inst.shape == (256, 512)
          and photo.shape == (256, 512, 3) and photo.dtype == np.uint8)
    check(f"streets {s}: ids are Cityscapes ids", label.min() >= 0 and label.max() < len(CITYSCAPES),
          f"range {label.min()}..{label.max()}")
    things = np.isin(label, streets.INSTANCE_CLASSES)
    check(f"streets {s}: instance ids name their class",
          np.all(inst[things] // 1000 == label[things]) and np.all(inst[~things] == label[~things]))
    top = label[:10]
    # sky or buildings at the top; road (or the ego bonnet) at the bottom centre
    check(f"streets {s}: sky/buildings/trees on top",
          np.mean(np.isin(top, (streets.SKY, streets.BUILDING, streets.VEGETATION, streets.POLE))) > 0.9)
    bottom = label[-60:-20, 200:312]
    check(f"streets {s}: road below", np.mean(np.isin(bottom, (streets.ROAD, streets.EGO, streets.CAR,
                                                              streets.TRUCK, streets.BUS))) > 0.8)
    check(f"streets {s}: sky, road and buildings present",
          all(np.mean(label == k) > 0.01 for k in (streets.SKY, streets.ROAD, streets.BUILDING)))
    # a photograph, not the label colours: far from them on average, textured within a class
    diff = np.abs(colourise(label).astype(int) - photo.astype(int)).mean()
    check(f"streets {s}: photo is not the label colours", diff > 25, f"mean |photo - colours| {diff:.1f}")
    road = photo[label == streets.ROAD].astype(float)
    check(f"streets {s}: road is textured and grey", road.std(axis=0).mean() > 3 and
          np.ptp(road.mean(axis=0)) < 25, f"std {road.std(axis=0).mean():.1f}")
    sky = photo[label == streets.SKY].astype(float).mean(axis=0)
    check(f"streets {s}: sky is bright and bluish", sky.mean() > 120 and sky[2] >= sky[0], str(sky))

for s in SEEDS:
    img = churches.render_church(s).astype(float)
    check(f"churches {s}: shape", img.shape == (256, 256, 3))
    top = img[:20].reshape(-1, 3).mean(axis=0)
    check(f"churches {s}: sky on top", top[2] >= top[0] and top.mean() > 100, str(top))
    low = img[-40:].reshape(-1, 3)
    greenish = np.mean((low[:, 1] > low[:, 0]) & (low[:, 1] > low[:, 2] * 0.9))
    check(f"churches {s}: lawn below", greenish > 0.4, f"{greenish:.2f}")
    mid = img[60:200, 20:236]
    check(f"churches {s}: a building in the middle (not sky or grass only)",
          np.mean(np.abs(mid[..., 0] - mid[..., 1]) < 40) > 0.1 and mid.std() > 20)

with tempfile.TemporaryDirectory() as d:
    label, inst, photo = scenes[0]
    for name, arr in (("rgb", photo), ("grey", label.astype(np.uint8)), ("grey16", inst.astype(np.uint16))):
        p = os.path.join(d, name + ".png")
        write_png(p, arr)
        back = read_png(p)
        check(f"png round trip: {name}", np.array_equal(back.reshape(arr.shape), arr))

print(f"1..{len(results)}")
for i, (name, ok, detail) in enumerate(results, 1):
    print(f"{'ok' if ok else 'not ok'} {i} - {name}" + (f" # {detail}" if detail and not ok else ""))
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
