"""Church pictures (256 x 256 by default) for training the DDPM, deterministic
from a seed: sky with clouds, distant trees, a lawn with a path, a church or
chapel (gable front and nave side in a two-face view, roof, a tower with a
spire or a pyramid roof, arched windows, a rose window, a door) in one of
several materials, trees and bushes, the sun lighting one face and casting
the church's shadow on the grass.
"""
import numpy as np

from raster import ellipse, fbm, jitter, rect, triangle, value_noise

WALLS = [((0.62, 0.6, 0.56), "stone"), ((0.78, 0.7, 0.56), "stone"), ((0.9, 0.88, 0.84), "plaster"),
         ((0.6, 0.3, 0.22), "brick"), ((0.5, 0.48, 0.46), "stone"), ((0.86, 0.8, 0.66), "plaster")]
ROOFS = [(0.25, 0.27, 0.32), (0.55, 0.25, 0.18), (0.35, 0.55, 0.45), (0.3, 0.3, 0.3), (0.45, 0.2, 0.15)]


def _arch(yy, xx, x0, x1, y_top, y_bot):
    """An arched opening: a rectangle with a semicircle on top."""
    r = (x1 - x0) / 2
    return rect(yy, xx, y_top + r, x0, y_bot, x1) | ellipse(yy, xx, y_top + r, (x0 + x1) / 2, r, r) & (yy <= y_top + r)


def _wall_texture(rng, h, w, kind, tex, fine, yy, xx):
    if kind == "brick":
        row = np.floor(yy / 3.0)
        mortar = (np.mod(yy, 3.0) < 0.8) | (np.mod(xx + 3.0 * np.mod(row, 2), 6.0) < 0.8)
        return 0.88 + 0.2 * tex - 0.18 * mortar + 0.08 * (fine - 0.5)
    if kind == "stone":
        row = np.floor(yy / 5.0)
        joints = (np.mod(yy, 5.0) < 0.7) | (np.mod(xx + 4.0 * np.mod(row, 2), 9.0) < 0.7)
        return 0.85 + 0.25 * tex - 0.12 * joints + 0.12 * (fine - 0.5)
    return 0.93 + 0.12 * tex + 0.04 * (fine - 0.5)


def render_church(seed, h=256, w=256):
    """Returns the picture, uint8 H x W x 3."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    overcast = rng.random() < 0.25
    sun = rng.choice([-1.0, 1.0])  # which side the light comes from
    k_light = 0.12 if overcast else rng.uniform(0.25, 0.45)

    ground_y = h * rng.uniform(0.62, 0.78)
    sky_top = jitter(rng, (0.3, 0.5, 0.85) if not overcast else (0.66, 0.68, 0.72), 0.08)
    sky_hor = jitter(rng, (0.75, 0.83, 0.93) if not overcast else (0.82, 0.82, 0.84), 0.05)
    t = np.clip(yy / ground_y, 0, 1)[..., None]
    img = sky_top * (1 - t) + sky_hor * t
    clouds = fbm(rng, h, w, rng.uniform(30, 90), 5)
    c = np.clip((clouds - rng.uniform(0.4, 0.7)) * 3.0, 0, 1)[..., None]
    img = img * (1 - c) + np.array([0.96, 0.96, 0.97], np.float32) * (0.8 + 0.2 * clouds[..., None]) * c

    # distant tree line and the lawn
    tex = fbm(rng, h, w, 8, 4)
    fine = value_noise(rng, h, w, 1.2)
    leaves = fbm(rng, h, w, 4, 4)
    line = ground_y - h * rng.uniform(0.02, 0.1) * (0.4 + value_noise(rng, 1, w, 20)[0] * 1.2)
    far = yy >= line[None, :]
    img[far] = (jitter(rng, (0.25, 0.35, 0.2), 0.1) * (0.6 + 0.6 * leaves[far, None]) * 0.85 + sky_hor * 0.15)
    lawn = yy >= ground_y
    grass = jitter(rng, (0.33, 0.48, 0.2), 0.12)
    depth_shade = np.clip((yy - ground_y) / (h - ground_y + 1), 0, 1)
    img[lawn] = grass * (0.75 + 0.35 * fine[lawn, None] + 0.2 * tex[lawn, None]) * (1.05 - 0.25 * depth_shade[lawn, None])

    # the church: a gable front and the nave's side face
    cx = w * rng.uniform(0.3, 0.7)
    fw = w * rng.uniform(0.16, 0.32)  # front width
    wall_h = fw * rng.uniform(0.6, 1.0)
    gable_h = fw * rng.uniform(0.35, 0.6)
    side_dir = rng.choice([-1.0, 1.0])
    side_len = w * rng.uniform(0.15, 0.35)
    rise = rng.uniform(0.0, 0.12)  # perspective: the far end of the side face is higher at its base
    base = ground_y + h * rng.uniform(0.02, 0.1)
    wall_col, kind = WALLS[rng.integers(len(WALLS))]
    wall_col = jitter(rng, wall_col, 0.06)
    roof_col = jitter(rng, ROOFS[rng.integers(len(ROOFS))], 0.06)
    wt = _wall_texture(rng, h, w, kind, tex, fine, yy, xx)[..., None]
    fl, fr = cx - fw / 2, cx + fw / 2
    front_lit = 1.0 + (k_light if sun == -side_dir else -k_light)
    side_lit = 1.0 + (k_light if sun == side_dir else -k_light * 1.4)

    # cast shadow on the lawn, away from the sun
    if not overcast:
        sl = rng.uniform(0.3, 0.8) * wall_h
        x_lo = min(fl, fl + side_dir * side_len) if side_dir < 0 else fl
        x_hi = max(fr, fr + side_dir * side_len) if side_dir > 0 else fr
        shift = -sun * sl
        shadow = lawn & (yy >= base - 3) & (yy <= base + h * 0.05)
        shadow &= (xx >= min(x_lo, x_lo + shift)) & (xx <= max(x_hi, x_hi + shift))
        img[shadow] *= 0.6

    # side face (parallelogram), then its roof
    sx0 = fr if side_dir > 0 else fl
    sx1 = sx0 + side_dir * side_len
    tfrac = np.clip((xx - sx0) / (sx1 - sx0), 0, 1)
    side_base = base - rise * side_len * tfrac
    side_top = base - wall_h - (rise * side_len + 0.02 * h) * tfrac * 0.5
    in_side = (xx - sx0) * side_dir >= 0
    in_side &= (xx - sx1) * side_dir < 0
    side = in_side & (yy < side_base) & (yy >= side_top)
    img[side] = (wall_col * wt[side] * side_lit)
    roof_top = base - wall_h - gable_h - (rise * side_len) * tfrac * 0.5
    roof = in_side & (yy < side_top) & (yy >= roof_top)
    rows = np.mod(yy - roof_top, 4.0) < 0.8
    img[roof] = roof_col * (0.9 + 0.15 * tex[roof, None] - 0.12 * rows[roof, None]) * (0.9 + 0.15 * sun * side_dir)
    # tall arched windows along the side face
    n_win = rng.integers(2, 6)
    for i in range(n_win):
        wx = sx0 + side_dir * side_len * (i + 0.7) / (n_win + 0.4)
        ww = side_len / (n_win + 1) * 0.45
        top = base - wall_h * 0.8 - rise * side_len * ((wx - sx0) / (sx1 - sx0)) * 0.8
        m = _arch(yy, xx, wx - ww / 2, wx + ww / 2, top, top + wall_h * 0.55) & side
        img[m] = jitter(rng, (0.18, 0.2, 0.27), 0.05) * (0.8 + 0.4 * fine[m, None])

    # the front with its gable
    front = rect(yy, xx, base - wall_h, fl, base, fr)
    gable = triangle(yy, xx, (base - wall_h, fl - 2), (base - wall_h, fr + 2), (base - wall_h - gable_h, cx))
    img[front | gable] = wall_col * wt[front | gable] * front_lit
    eave = gable & ~triangle(yy, xx, (base - wall_h + 1, fl + 3), (base - wall_h + 1, fr - 3), (base - wall_h - gable_h + 3, cx))
    img[eave] = roof_col * 0.8
    door_w = fw * rng.uniform(0.16, 0.26)
    door = _arch(yy, xx, cx - door_w / 2, cx + door_w / 2, base - wall_h * rng.uniform(0.35, 0.5), base)
    img[door] = jitter(rng, (0.3, 0.18, 0.1), 0.1) * (0.7 + 0.5 * fine[door, None])
    if rng.random() < 0.6:
        r = fw * rng.uniform(0.1, 0.16)
        rose = ellipse(yy, xx, base - wall_h - gable_h * 0.05, cx, r, r)
        img[rose] = jitter(rng, (0.2, 0.22, 0.32), 0.08) * (0.8 + 0.4 * fine[rose, None])
        img[rose & ~ellipse(yy, xx, base - wall_h - gable_h * 0.05, cx, r * 0.8, r * 0.8)] = wall_col * 0.7
    else:
        for dx in (-0.3, 0.3):
            m = _arch(yy, xx, cx + dx * fw - fw * 0.06, cx + dx * fw + fw * 0.06, base - wall_h * 0.85, base - wall_h * 0.45)
            img[m] = (0.18, 0.2, 0.27)

    # a tower: over the front, or beside it
    if rng.random() < 0.8:
        tw = fw * rng.uniform(0.35, 0.55)
        tx = cx if rng.random() < 0.6 else (fl if side_dir > 0 else fr) - side_dir * 0
        tb = base - (wall_h + gable_h * 0.6 if tx == cx else 0)
        th = h * rng.uniform(0.12, 0.3)
        tower = rect(yy, xx, tb - th, tx - tw / 2, tb, tx + tw / 2)
        img[tower] = wall_col * wt[tower] * front_lit * 1.02
        lit_side = (xx - tx) * sun > tw * 0.25
        img[tower & ~lit_side & ((xx - tx) * sun < -tw * 0.2)] *= 0.85
        louver = _arch(yy, xx, tx - tw * 0.18, tx + tw * 0.18, tb - th * 0.85, tb - th * 0.55)
        img[louver] = (0.12, 0.12, 0.13)
        if rng.random() < 0.5:
            r = tw * 0.22
            clock = ellipse(yy, xx, tb - th * 0.35, tx, r, r)
            img[clock] = (0.9, 0.88, 0.8)
            hand = clock & (np.abs(xx - tx) < 0.8) & (yy < tb - th * 0.35)
            img[hand] = (0.1, 0.1, 0.1)
        sp_h = th * rng.uniform(0.6, 1.8) if rng.random() < 0.7 else tw * 0.5
        spire = triangle(yy, xx, (tb - th, tx - tw / 2 - 1), (tb - th, tx + tw / 2 + 1), (tb - th - sp_h, tx))
        shade = np.where((xx - tx) * sun > 0, 1.08, 0.82)
        img[spire] = roof_col * (0.9 + 0.15 * tex[spire, None]) * shade[spire, None]
        cross = (np.abs(xx - tx) < 0.8) & (yy < tb - th - sp_h) & (yy > tb - th - sp_h - 6)
        cross |= (np.abs(yy - (tb - th - sp_h - 4)) < 0.8) & (np.abs(xx - tx) < 2.5)
        img[cross] = (0.2, 0.2, 0.2)

    # a path to the door
    pw_far, pw_near = door_w * 1.1, door_w * rng.uniform(2.0, 4.0)
    pt = np.clip((yy - base) / max(h - base, 1), 0, 1)
    half = pw_far / 2 + (pw_near - pw_far) / 2 * pt
    path = (yy >= base) & (np.abs(xx - cx - (pt * rng.uniform(-20, 20))) < half)
    img[path] = jitter(rng, (0.66, 0.6, 0.5), 0.08) * (0.8 + 0.3 * fine[path, None] + 0.1 * tex[path, None])

    # trees and bushes, some in front of the church
    for _ in range(rng.integers(0, 5)):
        tx = rng.choice([rng.uniform(0, fl), rng.uniform(fr, w)]) if rng.random() < 0.8 else rng.uniform(0, w)
        ty = ground_y + rng.uniform(0, h - ground_y) * 0.6
        r = h * rng.uniform(0.06, 0.16)
        trunk = rect(yy, xx, ty - r * 0.6, tx - r * 0.07, ty, tx + r * 0.07)
        img[trunk] = (0.28, 0.2, 0.13)
        crown = ((yy - (ty - r * 1.3)) / r) ** 2 + ((xx - tx) / (r * 0.9)) ** 2 <= 0.8 + 0.4 * leaves
        light = np.clip(0.6 + 0.3 * (ty - r * 1.3 - yy) / r + 0.3 * sun * (xx - tx) / r, 0.35, 1.3)
        col = jitter(rng, (0.2, 0.34, 0.12), 0.12)
        img[crown] = col * (0.5 + 0.9 * leaves[crown, None]) * light[crown, None]
    for _ in range(rng.integers(0, 4)):
        bx, by = rng.uniform(0, w), base + rng.uniform(-2, 10)
        r = h * rng.uniform(0.02, 0.05)
        bush = ellipse(yy, xx, by - r * 0.5, bx, r * 0.7, r * 1.4) & (yy < by + 2)
        bush &= (0.85 + 0.3 * leaves) > ((yy - (by - r * 0.5)) / (r * 0.7)) ** 2 + ((xx - bx) / (r * 1.4)) ** 2
        img[bush] = jitter(rng, (0.22, 0.36, 0.14), 0.1) * (0.5 + 0.8 * leaves[bush, None])

    img = img * np.array([1.0 + rng.uniform(-0.03, 0.07), 1.0, 1.0 + rng.uniform(-0.07, 0.03)], np.float32)
    img = img * rng.uniform(0.85, 1.1) + rng.normal(0, 0.01, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
