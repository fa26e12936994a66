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
import random

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
    common.run_arguments(ap, "/work/train/ddpm", 8000)
    ap.add_argument("--ch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--ema", type=float, default=0.9995)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.smoke:
        a.ch, a.size, a.batch, a.steps, a.scenes = 32, "64", 1, 1, 2  # GroupNorm(32): ch >= 32

    def geometry(step):
        """(side, batch) of a step: the phase --size (auto) puts it in."""
        side = common.rows_at(a, step)
        return side, a.batch or (8 if side <= 128 else 2)

    torch.manual_seed(0)
    # attention at 16 x 16 of a 256 x 256 input: the published church model's layout
    model = DDPMUNet(ch=a.ch, resolution=256, attn_res=(16,))
    ema = DDPMUNet(ch=a.ch, resolution=256, attn_res=(16,))
    ema.load_state_dict(model.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    run = common.Run(a, "ch", a.ch, ["mse"])
    if run.state:
        model.load_state_dict(run.state["model"])
        ema.load_state_dict(run.state["ema"])
        opt.load_state_dict(run.state["opt"])
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0).float()
    rng = random.Random(run.step * 104729 + 3)
    gen = torch.Generator().manual_seed(run.step + 17)
    seeds = list(range(a.scenes))

    def save():
        run.checkpoint({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict()})

    for _ in range(a.steps):
        model.train()
        side, bs = geometry(run.step)
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
            k = min(a.ema, (1 + run.step) / (10 + run.step))  # warm-up: early weights do not linger
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(k).add_(pm, alpha=1 - k)
        run.stepped({"mse": loss.item()}, save)
    run.finish(save, f"church DDPM ch {a.ch}")
    if a.export:
        meta = {"sige.model": "ddpm", "sige.image_size": "256",
                "sige.note": f"trained on procedural church pictures (tools/scenes), {run.step} steps"}
        common.export(ema.state_dict(), a.export, meta, fp16=not a.smoke)
        print(f"exported {a.export} at step {run.step}")


if __name__ == "__main__":
    main()
