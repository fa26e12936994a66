#!/usr/bin/python3
"""Dense forward of our models vs the same architecture in plain PyTorch.

    /usr/bin/python3 tools/peer/peer.py --model gaugan|ddpm --threads T --runs N

Runs `sige bench --dense-only --json` with --save-weights/--save-io (seeded
random weights, our input and our dense output for it), loads exactly those
weights into the PyTorch model of tools/peer/{spade,ddpm}.py (strict key
match), times its dense forward with the same thread count (median of N after
warm-up, like sige bench), compares its output with ours and prints one JSON
line.  ratio = ours_ms / torch_ms (below 1: we are faster).

Agreement: max |ours - torch| must be <= 1e-3 x (max - min of torch's
output).  Both are float32 with different summation orders (im2col+sgemm vs
oneDNN), GroupNorm / BatchNorm folded into affines on our side, and the
error of ~30-70 conv layers accumulates to about 1e-6..1e-4 of the output
range; a real difference (a wrong padding, upsampling, a missing bias or
shortcut) is 1e-2 or more.  Not needed to build or run the product.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from ddpm import DDPMUNet  # noqa: E402
from spade import SPADEGenerator  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOLERANCE = 1e-3  # of the output range, see above


def run_sige(args, weights, io):
    cmd = [args.sige, "bench", "--model", args.model, "--threads", str(args.threads),
           "--runs", str(args.runs), "--warmup", str(args.warmup), "--seed", str(args.seed),
           "--dense-only", "--json", "--save-weights", weights, "--save-io", io]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def load_model(model, weights):
    net = SPADEGenerator() if model == "gaugan" else DDPMUNet()
    state = {k: torch.from_numpy(v) for k, v in safetensors_io.load(weights).items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    # BatchNorm's num_batches_tracked is a training counter, not in our files
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"peer: weight names differ: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["gaugan", "ddpm"], required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sige", default=os.environ.get(
        "SIGE", os.path.join(ROOT, "build-peer", "tools", "sige")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="sige-peer-") as tmp:
        weights, io_path = os.path.join(tmp, "w.safetensors"), os.path.join(tmp, "io.safetensors")
        ours = run_sige(args, weights, io_path)
        net = load_model(args.model, weights)
        io = safetensors_io.load(io_path)
    x = torch.from_numpy(io["input"])
    t = torch.from_numpy(io["timestep"])
    forward = (lambda: net(x)) if args.model == "gaugan" else (lambda: net(x, t))

    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.runs):
            t0 = time.perf_counter()
            y = forward()
            if i >= args.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    y = y.numpy()
    diff = float(np.max(np.abs(y - io["output"])))
    span = float(y.max() - y.min())
    torch_ms = statistics.median(times)
    print(json.dumps({
        "kind": "peer", "model": args.model, "threads": args.threads, "runs": args.runs,
        "warmup": args.warmup, "ours_ms": ours["dense_ms"], "torch_ms": torch_ms,
        "ratio": ours["dense_ms"] / torch_ms, "max_abs_diff": diff, "output_range": span,
        "tolerance": TOLERANCE * span, "agree": diff <= TOLERANCE * span,
        "torch": torch.__version__, "cpu": ours.get("cpu")}))
    return 0 if diff <= TOLERANCE * span else 1


if __name__ == "__main__":
    sys.exit(main())
