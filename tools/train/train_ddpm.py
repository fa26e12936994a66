#!/usr/bin/python3
"""Trains a small church DDPM (the UNet of tools/peer/ddpm.py: ermongroup's
architecture and key names, ch_mult (1,1,2,2,4,4), 2 residual blocks,
attention at 16 x 16 for 256 x 256 input) on the church pictures of
tools/scenes, and exports it for the engine.

  /usr/bin/python3 tools/train/train_ddpm.py --run-dir /work/train/ddpm --steps 2000 \
      --export data/models/ddpm-church.safetensors

As the published model: epsilon prediction, the linear beta schedule from
1e-4 to 0.02 over 1000 steps, MSE loss, Adam (2e-4, gradient norm clipped
at 1), an exponential moving average of the weights (0.9995), which is what
gets exported.  --size 128 trains on 128 x 128 downscaled pictures (4x
cheaper per step; every layer is convolutional or attention, so the
weights carry over), --size 256 at the model's size.  Resumes from
RUN_DIR/last.pt; checkpoints every --save-every steps and at the end.

--smoke: the smallest model (ch 32, as GroupNorm has 32 groups), 64 x 64, one step, export as float32; what the
CI test runs.
"""
import argparse
import os
import random

import numpy as np
import torch
import torch.nn.functional as F

import common
from ddpm import DDPMUNet

T = 1000


def pictures(seeds, size, cache_dir, rng):
    out = []
    for s in seeds:
        (img,) = common.scene("churches", s, cache_dir)
        x = torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1.0
        if size != x.shape[1]:
            x = F.avg_pool2d(x[None], x.shape[1] // size)[0]
        if rng.random() < 0.5:
            x = x.flip(-1)
        out.append(x)
    return torch.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default="/work/train/ddpm")
    ap.add_argument("--cache-dir", default="/work/train/scenes")
    ap.add_argument("--steps", type=int, default=1000, help="steps to run now")
    ap.add_argument("--size", default="auto", choices=["auto", "64", "128", "256"],
                    help="picture side; auto: 128 before --full-size-from, 256 from there")
    ap.add_argument("--full-size-from", type=int, default=8000, help="step where auto goes to 256")
    ap.add_argument("--batch", type=int, default=0, help="default 8 at 128, 2 at 256")
    ap.add_argument("--ch", type=int, default=32)
    ap.add_argument("--scenes", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--export", default="")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.smoke:
        a.ch, a.size, a.batch, a.steps, a.scenes = 32, "64", 1, 1, 2  # GroupNorm(32): ch >= 32

    def geometry(step):
        """(side, batch) of a step: the phase --size (auto) puts it in."""
        side = int(a.size) if a.size != "auto" else (128 if step < a.full_size_from else 256)
        return side, a.batch or (8 if side <= 128 else 2)

    torch.manual_seed(0)
    # attention at 16 x 16 of a 256 x 256 input: the published church model's layout
    model = DDPMUNet(ch=a.ch, resolution=256, attn_res=(16,))
    ema = DDPMUNet(ch=a.ch, resolution=256, attn_res=(16,))
    ema.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    ck = None if a.smoke else common.Checkpoint(a.run_dir)
    state = ck.load() if ck else None
    step, wall = 0, 0.0
    if state:
        if state["ch"] != a.ch:
            raise SystemExit(f"{ck.path} has ch {state['ch']}, not {a.ch}")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, wall = state["step"], state["wall_s"]
        print(f"resumed at step {step} ({wall / 3600:.2f} h of training)")
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0).float()
    rng = random.Random(step * 104729 + 3)
    gen = torch.Generator().manual_seed(step + 17)
    seeds = list(range(a.scenes))
    log = None if a.smoke else common.LossLog(a.run_dir, ["mse"])  # --smoke leaves every run directory alone
    if log:
        log.drop_after(step)
    timer = common.Timer(wall)

    def save():
        ck.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                 "step": step, "wall_s": timer.total(), "ch": a.ch})

    for _ in range(a.steps):
        model.train()
        side, bs = geometry(step)
        x0 = pictures(rng.sample(seeds, bs), side, a.cache_dir, rng)
        t = torch.randint(0, T, (bs,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        ab = abar[t][:, None, None, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = F.mse_loss(model(xt, t), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            k = min(a.ema, (1 + step) / (10 + step))  # warm-up: early weights do not linger
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(k).add_(pm, alpha=1 - k)
        step += 1
        if not a.smoke:
            log.add(step, timer.total(), {"mse": loss.item()})
        if step % 10 == 0:
            print(f"step {step} mse {loss.item():.4f}", flush=True)
        if not a.smoke and step % a.save_every == 0:
            save()
    if not a.smoke and a.steps:  # --steps 0: export only, the checkpoint stays as it is
        save()
        common.plot_losses(log.path, os.path.join(a.run_dir, "losses.png"), f"church DDPM ch {a.ch}")
    if a.export:
        meta = {"sige.model": "ddpm", "sige.image_size": "256",
                "sige.note": f"trained on procedural church pictures (tools/scenes), {step} steps"}
        common.export(ema.state_dict(), a.export, meta, fp16=not a.smoke)
        print(f"exported {a.export} at step {step}")


if __name__ == "__main__":
    main()
