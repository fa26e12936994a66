"""Street scenes in the Cityscapes classes, for training GauGAN: a label map
(Cityscapes ids), an instance map and a rendered photograph of the same
scene, deterministic from a seed.

The scene is ray cast through a pinhole camera 1.5 m above a flat street:
the road, sidewalks and terrain on the ground plane, building facades on
two planes along the street and one across its far end; cars, trees,
poles, signs, traffic lights and people are upright sprites placed in the
street and drawn far to near against the depth buffer.  The photograph
gets per-material textures, sun-lit and shaded facades, building and car
shadows on the ground and haze with distance, so that it reads as a simple
rendered photograph rather than the label colours.
"""
import numpy as np

from raster import fbm, jitter, value_noise

# Cityscapes ids (cityscapesScripts labels.py, the engine's palette)
EGO, GROUND, ROAD, SIDEWALK, PARKING = 1, 6, 7, 8, 9
BUILDING, WALL, FENCE, POLE = 11, 12, 13, 17
LIGHT, SIGN, VEGETATION, TERRAIN, SKY = 19, 20, 21, 22, 23
PERSON, CAR, TRUCK, BUS, BICYCLE = 24, 26, 27, 28, 33
INSTANCE_CLASSES = (PERSON, CAR, TRUCK, BUS, BICYCLE)

FACADES = [(0.72, 0.66, 0.58), (0.62, 0.55, 0.50), (0.80, 0.78, 0.72), (0.55, 0.35, 0.28),
           (0.70, 0.52, 0.38), (0.45, 0.45, 0.47), (0.85, 0.82, 0.70), (0.60, 0.62, 0.66),
           (0.76, 0.60, 0.48), (0.50, 0.42, 0.36)]
CAR_PAINT = [(0.08, 0.08, 0.09), (0.85, 0.86, 0.87), (0.55, 0.56, 0.58), (0.15, 0.20, 0.40),
             (0.55, 0.08, 0.08), (0.30, 0.32, 0.34), (0.90, 0.90, 0.88), (0.12, 0.25, 0.18)]
CLOTHES = [(0.1, 0.1, 0.12), (0.2, 0.25, 0.45), (0.6, 0.15, 0.15), (0.75, 0.72, 0.65),
           (0.3, 0.35, 0.2), (0.45, 0.45, 0.47)]


class Scene:
    """One scene's buffers: labels and instances (int32), photo (float RGB), depth."""

    def __init__(self, h, w):
        self.h, self.w = h, w
        self.label = np.full((h, w), SKY, np.int32)
        self.instance = np.full((h, w), SKY, np.int32)
        self.photo = np.zeros((h, w, 3), np.float32)
        self.depth = np.full((h, w), np.inf, np.float32)
        self.next_instance = {c: 0 for c in INSTANCE_CLASSES}

    def new_instance(self, cls):
        self.next_instance[cls] += 1
        return cls * 1000 + self.next_instance[cls]  # Cityscapes' instance id convention

    def put(self, mask, cls, colour, depth, instance=0, cols=slice(None)):
        """Draws where mask holds and the surface is nearer than what is there;
        mask, colour and depth may cover only the columns cols."""
        lab, ins, dep, pho = self.label[:, cols], self.instance[:, cols], self.depth[:, cols], self.photo[:, cols]
        m = mask & (depth < dep)
        lab[m] = cls
        ins[m] = instance if instance else cls
        dep[m] = depth if np.isscalar(depth) else depth[m]
        pho[m] = colour if np.ndim(colour) == 1 else colour[m]
        return m


def _camera(rng, h, w):
    return dict(yh=h * rng.uniform(0.36, 0.5), xv=w * rng.uniform(0.4, 0.6), f=w * rng.uniform(0.5, 0.75),
                hc=rng.uniform(1.3, 1.7))


def render_street(seed, h=256, w=512):
    """Returns (label int32 HxW, instance int32 HxW, photo uint8 HxWx3)."""
    rng = np.random.default_rng(seed)
    s = Scene(h, w)
    cam = _camera(rng, h, w)
    yh, xv, f, hc = cam["yh"], cam["xv"], cam["f"], cam["hc"]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy += 0.5
    xx += 0.5

    # light: sun side (+1 right facades lit), strength, tint; haze colour
    sun = rng.choice([-1.0, 1.0])
    overcast = rng.random() < 0.3
    sun_k = 0.15 if overcast else rng.uniform(0.3, 0.5)
    tint = np.array([1.0 + rng.uniform(-0.04, 0.08), 1.0, 1.0 + rng.uniform(-0.08, 0.04)], np.float32)
    brightness = rng.uniform(0.8, 1.1)

    # street cross-section (metres; X < 0 left of the camera)
    road_l, road_r = rng.uniform(3.0, 8.0), rng.uniform(2.0, 5.0)
    side_l, side_r = rng.uniform(1.5, 4.5), rng.uniform(1.5, 4.5)
    terr_l = rng.uniform(0.0, 4.0) if rng.random() < 0.4 else 0.0
    terr_r = rng.uniform(0.0, 4.0) if rng.random() < 0.4 else 0.0
    xbl, xbr = -(road_l + side_l + terr_l), road_r + side_r + terr_r
    z_end = rng.uniform(120.0, 400.0)

    # --- sky
    sky_top = jitter(rng, (0.35, 0.55, 0.85) if not overcast else (0.7, 0.72, 0.76), 0.08)
    sky_hor = jitter(rng, (0.78, 0.85, 0.92) if not overcast else (0.85, 0.85, 0.86), 0.05)
    t = np.clip(yy / max(yh, 1.0), 0, 1)[..., None]
    sky = sky_top * (1 - t) + sky_hor * t
    clouds = fbm(rng, h, w, rng.uniform(40, 120), 5)
    cover = rng.uniform(0.35, 0.7) if not overcast else 0.2
    c = np.clip((clouds - cover) * 3.0, 0, 1)[..., None]
    sky = sky * (1 - c) + np.array([0.95, 0.95, 0.96], np.float32) * (0.85 + 0.15 * clouds[..., None]) * c
    s.photo[:] = sky
    haze = sky_hor

    # --- ground plane
    below = yy > yh + 0.25
    zg = np.where(below, f * hc / np.maximum(yy - yh, 1e-3), np.inf).astype(np.float32)
    zg_f = np.where(below, zg, 0)
    xg = np.where(below, (xx - xv) * zg_f / f, 0.0)
    ground_tex = fbm(rng, h, w, 6, 3)
    road_c = jitter(rng, (0.36, 0.36, 0.38), 0.1)
    road = below & (xg > -road_l) & (xg < road_r)
    s.put(road, ROAD, road_c * (0.9 + 0.2 * ground_tex)[..., None], zg)
    lanes = rng.integers(1, 3)
    for k in range(1, lanes + 1):  # dashed white lines between lanes
        xl = -road_l + k * (road_l + road_r) / (lanes + 1)
        dash = (np.mod(zg_f + seed % 7, 9.0) < 3.0)
        mark = road & (np.abs(xg - xl) < 0.07) & dash
        s.photo[mark] = np.array([0.85, 0.85, 0.82], np.float32) * (0.9 + 0.1 * ground_tex[mark])[:, None]
    if rng.random() < 0.5:
        for xe in (-road_l + 0.3, road_r - 0.3):
            mark = road & (np.abs(xg - xe) < 0.06)
            s.photo[mark] = (0.8, 0.8, 0.78)
    side_c = jitter(rng, (0.62, 0.6, 0.58), 0.1)
    xg_f = np.where(below, xg, 0.0)
    tiles = ((np.mod(xg_f, 0.6) < 0.04) | (np.mod(zg_f, 0.6) < 0.04))
    for lo, hi in ((xbl + terr_l, -road_l), (road_r, xbr - terr_r)):
        m = below & (xg >= lo) & (xg < hi)
        col = side_c * (0.92 + 0.12 * ground_tex - 0.08 * tiles)[..., None]
        s.put(m, SIDEWALK, col, zg)
        curb = m & (np.minimum(np.abs(xg - lo), np.abs(xg - hi)) < 0.18)
        s.photo[curb] *= 1.12
    grass_c = jitter(rng, (0.33, 0.45, 0.2), 0.1)
    grass_tex = fbm(rng, h, w, 3, 3)
    for lo, hi in ((xbl, xbl + terr_l), (xbr - terr_r, xbr)):
        m = below & (xg >= lo) & (xg < hi)
        s.put(m, TERRAIN, grass_c * (0.75 + 0.5 * grass_tex)[..., None], zg)
    beyond = below & ((xg < xbl) | (xg > xbr)) & ~np.isfinite(s.depth)
    s.put(beyond, GROUND, (0.4, 0.38, 0.35), zg)

    # --- facades: segments along the street on both sides, one across the far end
    def segments(side):
        out, z = [], rng.uniform(0.0, 6.0)
        while z < z_end:
            length = rng.uniform(8.0, 30.0)
            kind = rng.choice(["building", "building", "building", "gap"])
            out.append(dict(z0=z, z1=min(z + length, z_end), kind=kind, height=rng.uniform(7.0, 28.0),
                            colour=jitter(rng, FACADES[rng.integers(len(FACADES))], 0.08),
                            floor=rng.uniform(2.8, 3.6), spacing=rng.uniform(2.0, 3.5),
                            win=rng.uniform(0.35, 0.6), brick=rng.random() < 0.3,
                            wall=rng.choice([WALL, FENCE, VEGETATION]), wall_h=rng.uniform(0.8, 2.5),
                            trees_h=rng.uniform(4.0, 12.0)))
            z += length
        return out

    facade_tex = fbm(rng, h, w, 10, 4)
    fine_tex = value_noise(rng, h, w, 1.5)
    foliage = fbm(rng, h, w, 5, 4)
    shadow_depth = {}
    for side, xb in ((-1.0, xbl), (1.0, xbr)):
        lit = (1.0 + sun_k) if side == sun else (1.0 - sun_k * 1.3)
        segs = segments(side)
        shadow_depth[side] = segs
        for sg in segs:
            # the columns this segment covers: x = xv + f*xb/z is monotonic in z
            xa, xb_ = xv + f * xb / max(sg["z0"], 0.05), xv + f * xb / sg["z1"]
            c0 = int(np.clip(np.floor(min(xa, xb_)), 0, w))
            c1 = int(np.clip(np.ceil(max(xa, xb_)) + 1, 0, w))
            if c1 <= c0:
                continue
            cols = slice(c0, c1)
            Y, X = yy[:, cols], xx[:, cols]
            dx = X - xv
            ok = (dx * side) > 0.5
            zf = np.where(ok, f * xb / np.where(ok, dx, 1.0), np.inf).astype(np.float32)
            yf = hc - (Y - yh) * np.where(ok, zf, 0.0) / f
            inz = ok & (zf >= sg["z0"]) & (zf < sg["z1"]) & (yf >= 0)
            ft, fi, fo = facade_tex[:, cols, None], fine_tex[:, cols, None], foliage[:, cols, None]
            if sg["kind"] == "building":
                m = inz & (yf < sg["height"])
                zl = np.where(ok, zf - sg["z0"], 0.0)
                ly = np.mod(yf, sg["floor"]) / sg["floor"]
                lz = np.mod(zl, sg["spacing"]) / sg["spacing"]
                win = (yf > 3.5) & (ly > 0.3) & (ly < 0.8) & (np.abs(lz - 0.5) < sg["win"] / 2)
                shop = (yf > 0.3) & (yf < 2.8) & (np.abs(lz - 0.5) < 0.38)
                col = sg["colour"] * (0.85 + 0.3 * ft)
                if sg["brick"]:
                    mortar = (np.mod(yf, 0.25) < 0.03) | (np.mod(zl + 0.12 * (np.mod(yf, 0.5) < 0.25), 0.25) < 0.025)
                    col = col * (1.0 - 0.15 * mortar[..., None] + 0.1 * (fi - 0.5))
                cornice = (np.mod(yf, sg["floor"]) < 0.18) & (yf > 3.0)
                col = col * (1.0 - 0.12 * cornice[..., None])
                glass = np.array([0.18, 0.22, 0.28], np.float32) + 0.35 * sky_hor * (1.0 - ly[..., None])
                col = np.where((win | shop)[..., None], glass, col)
                roof = m & (yf > sg["height"] - 0.4)
                col = np.where(roof[..., None], col * 0.7, col)
                s.put(m, BUILDING, col * lit, zf, cols=cols)
            else:
                wall = inz & (yf < sg["wall_h"])
                if sg["wall"] == VEGETATION:
                    col = np.array([0.2, 0.35, 0.12], np.float32) * (0.6 + 0.8 * fo)
                else:
                    base = (0.55, 0.52, 0.5) if sg["wall"] == WALL else (0.45, 0.38, 0.3)
                    col = np.array(base, np.float32) * (0.85 + 0.3 * ft)
                    if sg["wall"] == FENCE:
                        col = col * (1.0 - 0.3 * (np.mod(np.where(ok, zf, 0.0), 0.3) < 0.1)[..., None])
                s.put(wall, sg["wall"], col * lit, zf, cols=cols)
                crown = sg["trees_h"] * (0.7 + 0.6 * foliage[:, cols])
                trees = inz & (yf >= sg["wall_h"]) & (yf < crown)
                col = np.array([0.22, 0.36, 0.13], np.float32) * (0.55 + 0.9 * fo)
                s.put(trees, VEGETATION, col * lit, zf + 4.0, cols=cols)
    # the far end of the street
    zfar = np.full((h, w), z_end, np.float32)
    yfar = hc - (yy - yh) * z_end / f
    xfar = (xx - xv) * z_end / f
    far_h = rng.uniform(8.0, 30.0)
    far = (yfar >= 0) & (yfar < far_h * (0.85 + 0.3 * value_noise(rng, h, w, 40))) & (xfar > xbl - 50) & (xfar < xbr + 50)
    col = jitter(rng, FACADES[rng.integers(len(FACADES))], 0.08) * (0.85 + 0.3 * facade_tex[..., None])
    s.put(far, BUILDING, col, zfar)

    # building shadows on the ground: the side away from the sun shades a band of the street
    shade_side = -sun
    segs = shadow_depth[shade_side]
    xb = xbl if shade_side < 0 else xbr
    if not overcast:
        ground = np.isin(s.label, (ROAD, SIDEWALK, TERRAIN, GROUND)) & below
        reach = np.zeros((h, w), np.float32)
        for sg in segs:
            if sg["kind"] == "building":
                inz = ground & (zg >= sg["z0"]) & (zg < sg["z1"])
                reach[inz] = sg["height"] * rng.uniform(0.2, 0.6)
        inside = (xg - xb) * shade_side
        shadowed = ground & (inside > -reach) & (reach > 0)
        s.photo[shadowed] *= 0.55

    # --- sprites, far to near
    sprites = []
    for _ in range(rng.integers(2, 12)):
        lane_x = rng.uniform(-road_l + 1.0, road_r - 1.0)
        sprites.append(("car", lane_x, rng.uniform(5.0, 90.0)))
    for _ in range(rng.integers(0, 6)):  # parked along the curbs
        sprites.append(("car", rng.choice([-road_l + 1.0, road_r - 1.0]), rng.uniform(6.0, 70.0)))
    for _ in range(rng.integers(0, 8)):
        sx = rng.choice([-1, 1])
        x0 = rng.uniform(-road_l - side_l + 0.4, -road_l - 0.3) if sx < 0 else rng.uniform(road_r + 0.3, road_r + side_r - 0.4)
        sprites.append(("person", x0, rng.uniform(4.0, 60.0)))
    for _ in range(rng.integers(1, 8)):
        sx = rng.choice([-1, 1])
        sprites.append(("tree", (-road_l - side_l * 0.6) if sx < 0 else (road_r + side_r * 0.6), rng.uniform(5.0, 90.0)))
    for _ in range(rng.integers(1, 7)):
        sx = rng.choice([-1, 1])
        sprites.append(("pole", (-road_l - 0.5) if sx < 0 else (road_r + 0.5), rng.uniform(5.0, 80.0)))
    sprites.sort(key=lambda p: -p[2])
    for kind, x0, z in sprites:
        px = xv + f * x0 / z
        py = yh + f * hc / z  # where the sprite stands
        k = f / z  # pixels per metre
        if px < -5 * k or px > w + 5 * k:
            continue
        if kind == "car":
            _car(s, rng, yy, xx, px, py, k, z, sun)
        elif kind == "person":
            _person(s, rng, yy, xx, px, py, k, z)
        elif kind == "tree":
            _tree(s, rng, yy, xx, px, py, k, z, foliage, sun)
        else:
            _pole(s, rng, yy, xx, px, py, k, z)

    # the ego vehicle's bonnet, as in most Cityscapes frames
    if rng.random() < 0.6:
        top = h * rng.uniform(0.86, 0.94)
        bulge = h * rng.uniform(0.02, 0.05)
        edge = top + bulge * ((xx - w / 2) / (w / 2)) ** 2
        m = yy > edge
        col = np.array([0.05, 0.05, 0.06], np.float32) + 0.25 * sky_hor * np.clip(1 - (yy - edge) / 20, 0, 1)[..., None]
        s.put(m, EGO, col, np.float32(0.5))

    # haze with distance, light, sensor noise
    fog = (1.0 - np.exp(-np.minimum(s.depth, 1e4) / rng.uniform(300, 900)))[..., None]
    fog = np.where(np.isfinite(s.depth)[..., None], fog, 0.0)
    photo = s.photo * (1 - fog) + haze * fog
    photo = photo * tint * brightness
    photo += rng.normal(0, 0.012, photo.shape).astype(np.float32)
    photo = (np.clip(photo, 0, 1) * 255 + 0.5).astype(np.uint8)
    return s.label, s.instance, photo


def _car(s, rng, yy, xx, px, py, k, z, sun):
    big = rng.random() < 0.1
    cls = rng.choice([TRUCK, BUS]) if big else CAR
    width = (2.4 if big else rng.uniform(1.6, 1.9)) * k
    height = (rng.uniform(2.6, 3.4) if big else rng.uniform(1.35, 1.6)) * k
    inst = s.new_instance(cls)
    paint = jitter(rng, CAR_PAINT[rng.integers(len(CAR_PAINT))], 0.05)
    # shadow on the ground first (label stays the ground's)
    sh = ((yy - py) / (0.25 * k + 0.5)) ** 2 + ((xx - px - sun * 0.3 * k) / (width * 0.65)) ** 2 <= 1.0
    sh &= np.isin(s.label, (ROAD, SIDEWALK, PARKING)) & (s.depth > z)
    s.photo[sh] *= 0.45
    x0, x1 = px - width / 2, px + width / 2
    body = (yy < py - 0.12 * k) & (yy >= py - 0.55 * height) & (xx >= x0) & (xx < x1)
    cabin_w = width * (0.98 if big else 0.8)
    cabin = (yy < py - 0.55 * height) & (yy >= py - height) & (np.abs(xx - px) < cabin_w / 2 - (py - 0.55 * height - yy) * 0.25)
    wheels = (yy >= py - 0.35 * k) & (yy < py) & ((np.abs(xx - (x0 + 0.2 * width)) < 0.12 * width) | (np.abs(xx - (x1 - 0.2 * width)) < 0.12 * width))
    m = body | cabin | wheels
    gy = np.clip((py - yy) / max(height, 1.0), 0, 1)[..., None]
    col = paint * (0.75 + 0.4 * gy)
    glass = np.array([0.12, 0.14, 0.17], np.float32) + 0.25 * gy
    window = cabin & (yy > py - height + 0.08 * height) & (np.abs(xx - px) < cabin_w / 2 - 0.1 * width)
    col = np.where(window[..., None], glass, col)
    lights = body & (yy < py - 0.35 * height) & (yy > py - 0.5 * height) & ((xx < x0 + 0.15 * width) | (xx > x1 - 0.15 * width))
    col = np.where(lights[..., None], np.array([0.7, 0.1, 0.08], np.float32), col)
    plate = body & (np.abs(xx - px) < 0.15 * width) & (np.abs(yy - (py - 0.27 * height)) < 0.035 * height + 0.5)
    col = np.where(plate[..., None], np.array([0.85, 0.85, 0.8], np.float32), col)
    col = np.where(wheels[..., None], np.array([0.04, 0.04, 0.04], np.float32), col)
    s.put(m, cls, col, np.float32(z), inst)


def _person(s, rng, yy, xx, px, py, k, z):
    tall = rng.uniform(1.55, 1.9) * k
    inst = s.new_instance(PERSON)
    head = ((yy - (py - tall + 0.11 * k)) ** 2 + (xx - px) ** 2) <= (0.11 * k + 0.4) ** 2
    torso = (yy >= py - tall + 0.22 * k) & (yy < py - 0.45 * tall) & (np.abs(xx - px) < 0.22 * k + 0.5)
    legs = (yy >= py - 0.45 * tall) & (yy < py) & (np.abs(np.abs(xx - px) - 0.09 * k) < 0.07 * k + 0.4)
    col = np.zeros(s.photo.shape, np.float32)
    col[:] = jitter(rng, CLOTHES[rng.integers(len(CLOTHES))], 0.1)
    col[head] = jitter(rng, (0.75, 0.58, 0.45), 0.15)
    col[legs] = jitter(rng, (0.12, 0.12, 0.18), 0.1)
    s.put(head | torso | legs, PERSON, col, np.float32(z), inst)


def _tree(s, rng, yy, xx, px, py, k, z, foliage, sun):
    trunk_h = rng.uniform(1.8, 3.0) * k
    r = rng.uniform(1.4, 3.2) * k
    trunk = (yy >= py - trunk_h - 0.3 * r) & (yy < py) & (np.abs(xx - px) < 0.15 * k + 0.5)
    cy = py - trunk_h - r * 0.8
    d = ((yy - cy) / r) ** 2 + ((xx - px) / (r * 1.1)) ** 2
    crown = d <= 0.75 + 0.5 * foliage
    col = np.zeros(s.photo.shape, np.float32)
    light = np.clip(0.55 + 0.35 * (cy - yy) / r + 0.25 * sun * (xx - px) / r, 0.3, 1.3)[..., None]
    col[:] = jitter(rng, (0.2, 0.36, 0.1), 0.12) * (0.55 + 0.9 * foliage[..., None]) * light
    col[trunk & ~crown] = (0.25, 0.18, 0.12)
    s.put(trunk | crown, VEGETATION, col, np.float32(z))


def _pole(s, rng, yy, xx, px, py, k, z):
    tall = rng.uniform(4.0, 8.0) * k
    pole = (yy >= py - tall) & (yy < py) & (np.abs(xx - px) < 0.07 * k + 0.5)
    s.put(pole, POLE, np.array([0.4, 0.4, 0.42], np.float32), np.float32(z))
    what = rng.random()
    top = py - tall
    if what < 0.4:  # traffic sign
        size = rng.uniform(0.5, 0.8) * k
        cy = top + size * 0.8
        if rng.random() < 0.5:
            m = ((yy - cy) ** 2 + (xx - px) ** 2) <= (size / 2) ** 2
            col = (0.8, 0.1, 0.1) if rng.random() < 0.5 else (0.1, 0.25, 0.7)
        else:
            m = (np.abs(yy - cy) < size / 2) & (np.abs(xx - px) < size / 2)
            col = (0.1, 0.4, 0.7) if rng.random() < 0.5 else (0.9, 0.75, 0.1)
        ring = np.array(col, np.float32)
        c = np.zeros(s.photo.shape, np.float32)
        c[:] = ring
        inner = ((yy - cy) ** 2 + (xx - px) ** 2) <= (size / 3.2) ** 2
        c[inner] = (0.9, 0.9, 0.9)
        s.put(m, SIGN, c, np.float32(z - 0.05))
    elif what < 0.7:  # traffic light
        bw, bh = 0.35 * k + 1, 1.0 * k + 2
        box = (yy >= top) & (yy < top + bh) & (np.abs(xx - px) < bw / 2)
        c = np.zeros(s.photo.shape, np.float32)
        c[:] = (0.12, 0.12, 0.12)
        on = rng.integers(3)
        for i, lamp in enumerate([(0.9, 0.15, 0.1), (0.95, 0.7, 0.1), (0.2, 0.85, 0.3)]):
            ly = top + bh * (i + 0.5) / 3
            m = ((yy - ly) ** 2 + (xx - px) ** 2) <= (bw * 0.33) ** 2
            c[m] = lamp if i == on else np.array(lamp, np.float32) * 0.25
        s.put(box, LIGHT, c, np.float32(z - 0.05))
    else:  # a street lamp's arm stays pole
        arm = (np.abs(yy - top) < 0.06 * k + 0.5) & (xx > px - 1.2 * k) & (xx < px + 1.2 * k)
        s.put(arm, POLE, np.array([0.4, 0.4, 0.42], np.float32), np.float32(z))
