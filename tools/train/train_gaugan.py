#!/usr/bin/python3
"""Trains a small GauGAN (the SPADE generator of tools/peer/spade.py: NVlabs'
architecture and key names, "more" upsampling, 35 Cityscapes labels +
instance edges) on the street scenes of tools/scenes, and exports it for the
engine.

  /usr/bin/python3 tools/train/train_gaugan.py --run-dir /work/train/gaugan --steps 2000 \
      --export data/models/gaugan-street.safetensors

Resumes from RUN_DIR/last.pt (--steps 0 only exports it); each invocation runs --steps more steps,
checkpoints every --save-every steps and at the end, and exports (fp16) at
the end.  Training follows SPADE's recipe scaled to a 2-core CPU: spectral
norm in the generator's residual blocks and in the discriminator, a
two-scale PatchGAN discriminator with hinge loss, feature matching (10), and
an L1 term to the rendered photo (no VGG loss: no pretrained network can be
downloaded here).  The resolution follows --size: 128 (128 x 256) for the
first phase, 256 (256 x 512) after.  Before the export, BatchNorm's running
statistics are recomputed over training batches, so that the engine (which
runs the generator in eval mode, as NVlabs' test script does) sees the
statistics of the final weights.

--smoke: a tiny model (ngf 4, 64 x 128), one step, export to --export as
float32; what the CI test runs.
"""
import argparse
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common
from spade import SPADEGenerator

LABEL_NC = 35


def semantic_input(labels, instances, use_instances):
    """One-hot labels + the edge channel, as core/src/models/semantic_input.c
    builds it: a pixel is an edge when a 4-neighbour has another id.  Without
    instances the class ids serve, as in the plug-in without an instance layer."""
    b, h, w = labels.shape
    onehot = torch.zeros(b, LABEL_NC, h, w)
    onehot.scatter_(1, labels[:, None].long(), 1.0)
    ids = torch.where(use_instances[:, None, None], instances, labels.long())
    e = torch.zeros(b, h, w, dtype=torch.bool)
    e[:, :, 1:] |= ids[:, :, 1:] != ids[:, :, :-1]
    e[:, :, :-1] |= ids[:, :, :-1] != ids[:, :, 1:]
    e[:, 1:, :] |= ids[:, 1:, :] != ids[:, :-1, :]
    e[:, :-1, :] |= ids[:, :-1, :] != ids[:, 1:, :]
    return torch.cat([onehot, e[:, None].float()], 1)


def batch(seeds, size, cache_dir, instance_prob, rng):
    labels, insts, photos = [], [], []
    for s in seeds:
        label, inst, photo = common.scene("streets", s, cache_dir)
        lab, ins = torch.from_numpy(label.astype(np.int64)), torch.from_numpy(inst.astype(np.int64))
        if rng.random() < 0.5:
            # ids 0-4 (unlabeled, ego vehicle, ...) are all black in the Cityscapes
            # colours, which read back as 0: learn both spellings of the bonnet
            lab = torch.where(lab <= 4, 0, lab)
        ph = torch.from_numpy(photo).permute(2, 0, 1).float() / 127.5 - 1.0
        if size != lab.shape[0]:
            f = lab.shape[0] // size
            lab, ins = lab[f // 2::f, f // 2::f], ins[f // 2::f, f // 2::f]
            ph = F.avg_pool2d(ph[None], f)[0]
        if rng.random() < 0.5:  # mirror: streets look the same either way
            lab, ins, ph = lab.flip(-1), ins.flip(-1), ph.flip(-1)
        labels.append(lab)
        insts.append(ins)
        photos.append(ph)
    use = torch.tensor([rng.random() < instance_prob for _ in seeds])
    return semantic_input(torch.stack(labels), torch.stack(insts), use), torch.stack(photos)


class PatchD(nn.Module):
    """pix2pixHD's n_layers=4 PatchGAN with spectral norm and instance norm;
    returns every layer's features (feature matching uses all but the last)."""

    def __init__(self, in_ch, ndf):
        super().__init__()
        sn = nn.utils.spectral_norm
        chans = [in_ch, ndf, ndf * 2, ndf * 4, ndf * 8]
        layers = [nn.Sequential(sn(nn.Conv2d(chans[0], chans[1], 4, 2, 2)), nn.LeakyReLU(0.2))]
        for i in range(1, 4):
            stride = 2 if i < 3 else 1
            layers.append(nn.Sequential(sn(nn.Conv2d(chans[i], chans[i + 1], 4, stride, 2)),
                                        nn.InstanceNorm2d(chans[i + 1]), nn.LeakyReLU(0.2)))
        layers.append(nn.Conv2d(chans[4], 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleD(nn.Module):
    def __init__(self, in_ch, ndf, scales=2):
        super().__init__()
        self.ds = nn.ModuleList(PatchD(in_ch, ndf) for _ in range(scales))

    def forward(self, x):
        outs = []
        for i, d in enumerate(self.ds):
            if i:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            outs.append(d(x))
        return outs


def with_spectral_norm(g):
    for name, m in g.named_modules():
        if name.count(".") == 0 and hasattr(m, "conv_0"):
            for conv in ("conv_0", "conv_1", "conv_s"):
                if hasattr(m, conv):
                    nn.utils.spectral_norm(getattr(m, conv))
    return g


def plain_generator(g, ngf):
    """A copy with spectral norm folded into the weights (NVlabs key names)."""
    plain = with_spectral_norm(SPADEGenerator(ngf=ngf, label_nc=LABEL_NC, contain_instance=True,
                                              num_upsampling_layers=6))
    plain.load_state_dict(g.state_dict())
    for m in plain.modules():
        if isinstance(m, nn.Conv2d) and hasattr(m, "weight_orig"):
            nn.utils.remove_spectral_norm(m)
    plain.sh, plain.sw = g.sh, g.sw
    return plain


def set_size(g, h, w):
    g.sh, g.sw = h // 2 ** g.nul, w // 2 ** g.nul


def recalibrate_bn(g, seeds, size, cache_dir, rng, batches=24):
    """Running statistics as the cumulative mean over training batches with the
    final weights (momentum None), for eval mode."""
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    g.train()
    with torch.no_grad():
        for _ in range(batches):
            seg, _ = batch(rng.sample(seeds, 2), size, cache_dir, 0.3, rng)
            g(seg)
    g.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.run_arguments(ap, "/work/train/gaugan", 4000)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--ndf", type=int, default=32)
    ap.add_argument("--l1", type=float, default=5.0)
    ap.add_argument("--fm", type=float, default=10.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.smoke:
        a.ngf, a.ndf, a.size, a.batch, a.steps, a.scenes, a.save_every = 4, 4, "64", 1, 1, 2, 1

    def geometry(step):
        """(rows, columns, batch) of a step: the phase --size (auto) puts it in."""
        rows = common.rows_at(a, step)
        return rows, 2 * rows, a.batch or (4 if rows <= 128 else 2)

    torch.manual_seed(0)
    g = with_spectral_norm(SPADEGenerator(ngf=a.ngf, label_nc=LABEL_NC, contain_instance=True,
                                          num_upsampling_layers=6))  # set_size() sets the geometry
    d = MultiscaleD(LABEL_NC + 1 + 3, a.ndf)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=4e-4, betas=(0.0, 0.9))
    run = common.Run(a, "ngf", a.ngf, ["d_real", "d_fake", "g_adv", "g_fm", "g_l1"])
    if run.state:
        g.load_state_dict(run.state["g"])
        d.load_state_dict(run.state["d"])
        opt_g.load_state_dict(run.state["opt_g"])
        opt_d.load_state_dict(run.state["opt_d"])
    rng = random.Random(run.step * 7919 + 1)
    seeds = list(range(a.scenes))

    def save():
        run.checkpoint({"g": g.state_dict(), "d": d.state_dict(), "opt_g": opt_g.state_dict(),
                        "opt_d": opt_d.state_dict()})

    for _ in range(a.steps):
        g.train()
        h, w, bs = geometry(run.step)
        set_size(g, h, w)
        seg, real = batch(rng.sample(seeds, bs), h, a.cache_dir, 0.3, rng)
        fake = g(seg)
        # discriminator: hinge
        opt_d.zero_grad(set_to_none=True)
        outs_r = d(torch.cat([seg, real], 1))
        outs_f = d(torch.cat([seg, fake.detach()], 1))
        d_real = sum(F.relu(1 - o[-1]).mean() for o in outs_r)
        d_fake = sum(F.relu(1 + o[-1]).mean() for o in outs_f)
        (d_real + d_fake).backward()
        opt_d.step()
        # generator: hinge + feature matching + L1
        opt_g.zero_grad(set_to_none=True)
        outs_f = d(torch.cat([seg, fake], 1))
        g_adv = -sum(o[-1].mean() for o in outs_f)
        g_fm = sum(F.l1_loss(ff, fr.detach()) for of, orr in zip(outs_f, outs_r)
                   for ff, fr in zip(of[:-1], orr[:-1])) / len(outs_f)
        g_l1 = F.l1_loss(fake, real)
        (g_adv + a.fm * g_fm + a.l1 * g_l1).backward()
        opt_g.step()
        run.stepped(dict(d_real=d_real.item(), d_fake=d_fake.item(), g_adv=g_adv.item(),
                         g_fm=g_fm.item(), g_l1=g_l1.item()), save)
    run.finish(save, f"GauGAN ngf {a.ngf}")
    if a.export:
        step = run.step
        h, w, _ = geometry(step)
        set_size(g, h, w)
        plain = plain_generator(g, a.ngf)
        recalibrate_bn(plain, seeds, h, a.cache_dir, rng, 2 if a.smoke else 24)
        meta = {"sige.model": "spade-generator", "sige.crop_size": str(w if a.smoke else 512), "sige.aspect_ratio": "2",
                "sige.note": f"trained on procedural street scenes (tools/scenes), {step} steps"}
        common.export(plain.state_dict(), a.export, meta, fp16=not a.smoke)
        print(f"exported {a.export} at step {step}")


if __name__ == "__main__":
    main()
