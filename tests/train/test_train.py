"""Smoke test of the training tools (tools/train), TAP output:
  test_train.py SIGE_BINARY
One training step of each model on tiny inputs; the exported GauGAN is
rendered by the engine and by PyTorch from the same label map and must
agree; the exported DDPM has exactly the keys and shapes of the UNet the
engine reads (tools/peer/peer.py checks that UNet's forward against the
engine); a run killed after a checkpoint resumes where it was.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
sys.path.insert(0, os.path.join(ROOT, "tools", "scenes"))
sys.path.insert(0, os.path.join(ROOT, "tools", "peer"))
import safetensors_io  # noqa: E402
from ddpm import DDPMUNet  # noqa: E402
from palette import colourise  # noqa: E402
from raster import read_png, write_png  # noqa: E402
from spade import SPADEGenerator  # noqa: E402
from streets import render_street  # noqa: E402
from train_gaugan import semantic_input  # noqa: E402

sige = sys.argv[1]
results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok), detail))


def run(args):
    p = subprocess.run([sys.executable] + args, capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


with tempfile.TemporaryDirectory() as d:
    cache = os.path.join(d, "scenes")
    g_path, d_path = os.path.join(d, "g.safetensors"), os.path.join(d, "d.safetensors")
    untouched = os.path.join(d, "smoke-run")
    rc, out = run([os.path.join(ROOT, "tools/train/train_gaugan.py"), "--smoke", "--cache-dir", cache,
                   "--run-dir", untouched, "--export", g_path])
    check("gaugan: one training step and the export", rc == 0 and os.path.exists(g_path), out[-400:])

    # the engine's render of a small street against PyTorch's, from the exported file
    label, _, _ = render_street(123, 64, 128)
    lab_png = os.path.join(d, "labels.png")
    write_png(lab_png, colourise(label))
    out_png = os.path.join(d, "render.png")
    env = dict(os.environ, SIGE_NUM_THREADS="2", SIGE_DEVICE="cpu")
    p = subprocess.run([sige, "render", "--model", g_path, "--labels", lab_png, "--out", out_png],
                       capture_output=True, text=True, timeout=300, env=env)
    check("gaugan: the engine renders the exported model", p.returncode == 0, p.stderr[-400:])
    if p.returncode == 0:
        g = SPADEGenerator(ngf=4, crop_size=128, num_upsampling_layers=6).eval()
        g.load_state_dict({k: torch.from_numpy(v) for k, v in safetensors_io.load(g_path).items()},
                          strict=False)
        # ids 0-4 share black in the Cityscapes colours: the engine reads them as 0
        lab = torch.from_numpy(np.where(label <= 4, 0, label).astype(np.int64))[None]
        with torch.no_grad():
            y = g(semantic_input(lab, lab, torch.tensor([False])))[0]
        want = torch.clamp((y + 1) * 127.5, 0, 255).round().permute(1, 2, 0).numpy()
        got = read_png(out_png)[..., :3].astype(float)
        diff = np.abs(got - want).max()
        # float32 on both sides with different summation orders: a value near a
        # rounding boundary may land one level apart; a wrong layer is tens of levels
        check("gaugan: engine and PyTorch agree within 2 levels", diff <= 2, f"max diff {diff}")
        missing = set(g.state_dict()) - set(safetensors_io.load(g_path))
        check("gaugan: the export has every parameter and running statistic",
              missing <= {k for k in g.state_dict() if k.endswith("num_batches_tracked")}, str(missing))

    rc, out = run([os.path.join(ROOT, "tools/train/train_ddpm.py"), "--smoke", "--cache-dir", cache,
                   "--run-dir", untouched, "--export", d_path])
    # a smoke run next to a real training run must leave its checkpoint and log alone
    check("smoke runs leave the run directory alone", not os.path.exists(untouched))
    check("ddpm: one training step and the export", rc == 0 and os.path.exists(d_path), out[-400:])
    if rc == 0:
        want = {k: tuple(v.shape) for k, v in DDPMUNet(ch=32).state_dict().items()}
        got = {k: tuple(v.shape) for k, v in safetensors_io.load(d_path).items()}
        check("ddpm: the export has the UNet's keys and shapes", got == want,
              str(set(want) ^ set(got))[:300])
        p = subprocess.run([sige, "info", d_path], capture_output=True, text=True, timeout=60)
        check("ddpm: the engine reads the export as the church UNet",
              p.returncode == 0 and "ddpm-unet" in p.stdout and "ch_mult" in p.stdout, p.stdout[-300:])

    # resume: two invocations of one step each continue one run
    run_dir = os.path.join(d, "run")
    tiny = [os.path.join(ROOT, "tools/train/train_gaugan.py"), "--run-dir", run_dir, "--cache-dir", cache,
            "--ngf", "4", "--ndf", "4", "--size", "64", "--batch", "1", "--scenes", "2", "--steps", "1"]
    rc1, _ = run(tiny)
    rc2, out2 = run(tiny)
    state = torch.load(os.path.join(run_dir, "last.pt")) if rc1 == 0 and rc2 == 0 else {}
    check("gaugan: a second invocation resumes from the checkpoint",
          "resumed at step 1" in out2 and state.get("step") == 2, out2[-300:])
    with open(os.path.join(run_dir, "losses.csv")) as f:
        rows = f.read().splitlines()
    check("gaugan: the loss log has one row per step", len(rows) == 3, str(rows))
    # a run killed after its checkpoint logged steps that the next one redoes
    with open(os.path.join(run_dir, "losses.csv"), "a") as f:
        f.write("3,1.0,0,0,0,0,0\n")
    rc3, _ = run(tiny)
    with open(os.path.join(run_dir, "losses.csv")) as f:
        steps = [r.split(",")[0] for r in f.read().splitlines()[1:]]
    check("gaugan: rows logged after the last checkpoint are dropped on resume", rc3 == 0 and steps == ["1", "2", "3"], str(steps))

print(f"1..{len(results)}")
for i, (name, ok, detail) in enumerate(results, 1):
    print(f"{'ok' if ok else 'not ok'} {i} - {name}" + (f" # {detail!r}" if detail and not ok else ""))
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
