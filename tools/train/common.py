"""What the two training scripts share: the scene cache, checkpoints that
survive being killed, the loss log and its plot, and the export to
safetensors.  Training needs Debian's python3-torch (/usr/bin/python3); the
product never does.
"""
import csv
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scenes"))
sys.path.insert(0, os.path.join(HERE, "..", "peer"))

import safetensors_io  # noqa: E402
from churches import render_church  # noqa: E402
from streets import render_street  # noqa: E402

# Seeds 0..HELD_OUT-1 train; seeds from HELD_OUT on are never seen in training.
HELD_OUT = 1_000_000


def scene(kind, seed, cache_dir):
    """A street (labels, instances, photo) or a church picture, from the cache
    when it was made before (making one costs 0.2-0.4 s)."""
    path = os.path.join(cache_dir, f"{kind}_{seed:07d}.npz") if cache_dir else None
    if path and os.path.exists(path):
        try:
            with np.load(path) as z:
                return tuple(z[k] for k in sorted(z.files))
        except (OSError, ValueError, EOFError):
            pass  # a file cut short by a kill: make it again
    if kind == "streets":
        label, inst, photo = render_street(seed)
        out = (label.astype(np.uint8), inst.astype(np.int32), photo)
    else:
        out = (render_church(seed),)
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = path + f".{os.getpid()}.tmp.npz"
        np.savez_compressed(tmp, *out)
        os.replace(tmp, path)
    return out


class Checkpoint:
    """last.pt in the run directory, written to a temporary name and renamed,
    so that a kill at any moment leaves the previous checkpoint whole."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        self.path = os.path.join(run_dir, "last.pt")

    def load(self):
        if not os.path.exists(self.path):
            return None
        return torch.load(self.path, map_location="cpu")

    def save(self, state):
        tmp = self.path + ".tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.path)


class LossLog:
    """Appends one CSV row per logged step: step, wall seconds, named losses."""

    def __init__(self, run_dir, names):
        self.path = os.path.join(run_dir, "losses.csv")
        self.names = names
        if not os.path.exists(self.path):
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(["step", "wall_s"] + names)

    def drop_after(self, step):
        """On resume: rows a killed run logged after its last checkpoint go."""
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        keep = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= step]
        if len(keep) != len(rows):
            tmp = self.path + ".tmp"
            with open(tmp, "w", newline="") as f:
                csv.writer(f).writerows(keep)
            os.replace(tmp, self.path)

    def add(self, step, wall_s, values):
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([step, f"{wall_s:.1f}"] + [f"{values[n]:.5f}" for n in self.names])


def plot_losses(csv_path, png_path, title):
    """The loss curves (smoothed over 50 rows) as a PNG; needs python3-matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("python3-matplotlib is not installed: no loss plot", file=sys.stderr)
        return False
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    head, rows = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    if not rows:
        return False
    data = np.array(rows, dtype=float)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    k = max(1, min(50, len(data) // 10))
    for i, name in enumerate(head[2:], 2):
        smooth = np.convolve(data[:, i], np.ones(k) / k, mode="valid")
        ax.plot(data[k - 1:, 0], smooth, label=name)
    ax.set_xlabel("step")
    ax.set_title(f"{title} (mean of {k} logged steps)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return True


def export(state_dict, path, metadata, fp16=True):
    """Writes a model's float tensors as safetensors (F16 by default), without
    BatchNorm's num_batches_tracked counters, which no checkpoint format of the
    engine reads."""
    tensors = {}
    for name, t in state_dict.items():
        if name.endswith("num_batches_tracked"):
            continue
        a = t.detach().cpu().float().numpy()
        tensors[name] = a.astype(np.float16) if fp16 else a
    safetensors_io.save(path, tensors, metadata)


class Timer:
    def __init__(self, already_s=0.0):
        self.t0 = time.time() - already_s

    def total(self):
        return time.time() - self.t0


def run_arguments(ap, run_dir, full_size_from):
    """The arguments both training scripts take."""
    ap.add_argument("--run-dir", default=run_dir)
    ap.add_argument("--cache-dir", default="/work/train/scenes")
    ap.add_argument("--steps", type=int, default=1000, help="steps to run now")
    ap.add_argument("--size", default="auto", choices=["auto", "64", "128", "256"],
                    help="image rows; auto: 128 before --full-size-from, 256 from there")
    ap.add_argument("--full-size-from", type=int, default=full_size_from, help="step where auto goes to 256")
    ap.add_argument("--batch", type=int, default=0, help="default: the script's for the size")
    ap.add_argument("--scenes", type=int, default=3000, help="training scenes: seeds 0..N-1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--export", default="")
    ap.add_argument("--smoke", action="store_true")


def rows_at(a, step):
    """The image rows of a step: --size, or the phase --size auto puts it in."""
    return int(a.size) if a.size != "auto" else (128 if step < a.full_size_from else 256)


class Run:
    """One invocation of a training run: resumes from the checkpoint (which
    must be of the same model width), logs each step, saves.  --smoke runs
    leave the run directory alone."""

    def __init__(self, a, width_key, width, loss_names):
        self.a, self.width_key, self.width = a, width_key, width
        self.ck = None if a.smoke else Checkpoint(a.run_dir)
        self.state = self.ck.load() if self.ck else None
        self.step, wall = 0, 0.0
        if self.state:
            if self.state[width_key] != width:
                raise SystemExit(f"{self.ck.path} has {width_key} {self.state[width_key]}, not {width}")
            self.step, wall = self.state["step"], self.state["wall_s"]
            print(f"resumed at step {self.step} ({wall / 3600:.2f} h of training)")
        self.log = None if a.smoke else LossLog(a.run_dir, loss_names)
        if self.log:
            self.log.drop_after(self.step)
        self.timer = Timer(wall)

    def stepped(self, values, save):
        """After a step: count it, log it, checkpoint every --save-every steps."""
        self.step += 1
        if self.log:
            self.log.add(self.step, self.timer.total(), values)
        if self.step % 10 == 0:
            print(f"step {self.step} " + " ".join(f"{k} {v:.4f}" for k, v in values.items()), flush=True)
        if self.ck and self.step % self.a.save_every == 0:
            save()

    def checkpoint(self, state):
        self.ck.save({**state, "step": self.step, "wall_s": self.timer.total(), self.width_key: self.width})

    def finish(self, save, title):
        """The last checkpoint and the loss plot (not for --steps 0: export only)."""
        if self.ck and self.a.steps:
            save()
            plot_losses(self.log.path, os.path.join(self.a.run_dir, "losses.png"), title)
