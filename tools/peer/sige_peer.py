#!/usr/bin/python3
"""Our dense and sparse passes vs the published SIGE implementation (lmxyy/sige).

    SIGE_CHECKOUT=/path/to/lmxyy-sige /usr/bin/python3 tools/peer/sige_peer.py \
        --model gaugan|ddpm --edit-ratio 0.012 --threads 2 --runs 3 --rounds 3

Benchmark set-up only: nothing here is used to build or run the product, and
the published code is never copied into this repository.  SIGE_CHECKOUT (or
--checkout) names a checkout of https://github.com/lmxyy/sige whose CPU
extension was built in place (`python3 setup.py build_ext --inplace`, which
needs Debian's libtorch-dev and pybind11-dev next to python3-torch);
tools/peer/run_peer_table.sh builds it when it is missing.

One case:
 1. `sige bench --save-weights --save-io --save-mask` (one untimed run)
    writes our seeded random weights, the original and edited inputs, our
    dense output for the original, our sparse output for the edited input,
    and the stroke mask.
 2. Their SIGE-converted models (gaugan/ SIGEFusedSPADEGenerator with the
    published block sizes 6/4 and 5 sparse levels; diffusion/
    SIGEFusedUNet with diffusion/configs/church_ddpm256-sige.yml) and their
    dense fused models get OUR weights (KEY MAPPING below: their fused
    layers are concatenations of ours).  Their difference mask is computed by
    their own sige.utils from the same two inputs, with the published
    parameters (GauGAN eps 1e-3, dilation 1, pyramid dilation 2; DDPM eps
    0.01, dilation 5), which are ours too: the script checks that the
    undilated difference holds the stroke mask `--save-mask` wrote (DDPM:
    equals it; GauGAN: the stroke plus the instance edges along it).
 3. Rounds: `sige bench` (ours, dense and sparse) and a child process of
    this script (theirs: dense fused forward, then full pass on the
    original, masks, sparse passes on the edited input) alternate, in
    alternating order, each with the same --threads/--runs/--warmup; the
    figures are the medians over rounds of each run's median.  Peak RSS is
    getrusage's ru_maxrss of each process (ours reported by sige bench,
    theirs by the child), both holding one model's weights, the dense pass,
    the caches and the sparse pass.
 4. MACs: ours from sige bench; theirs counted by this script in one extra
    untimed pass of each (conv2d, linear and batched matrix products through
    a TorchFunctionMode, out elements x in-channels/groups x kernel area:
    the direct-convolution definition both sides use); their own counter
    (torchprofile) is not in Debian.

Agreement (printed, and the exit status): max |ours - theirs| <= 1e-3 x the
output range, for the dense output of the original input and the sparse
output of the edited one.  Both are float32 with different summation orders
(our im2col/Winograd GEMMs vs oneDNN on gathered blocks), BatchNorm /
GroupNorm folded into affines on both sides; across ~30-70 layers that is
1e-6..1e-4 of the range, while a wrong mask, block offset or missing
shortcut changes whole blocks by 1e-2 or more.

Prints one JSON line per case (kind "sige_peer").
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402

TOLERANCE = 1e-3  # of the output range, see above

# ---- key mapping: our weight names -> their fused SIGE models ---------------
# GauGAN: our SPADE generator keeps the NVlabs layout (spade.py): one
# mlp_shared per SPADE and separate mlp_gamma / mlp_beta.  Theirs runs one
# mlp_shared per residual block for its 2 or 3 SPADEs (outputs in the order
# norm_0, norm_1, norm_s) and one mlp_gamma_beta per SPADE (gamma, then beta).
# DDPM: our UNet keeps the ermongroup layout (ddpm.py): q, k, v convs and one
# temb_proj per residual block.  Theirs concatenates q, k, v into qkv and all
# temb_proj into temb.dense.2, in the order its forward walks the blocks.
GAUGAN_BLOCKS = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"]
DDPM_CH_MULT, DDPM_RES_BLOCKS = (1, 1, 2, 2, 4, 4), 2


def ddpm_block_order():
    """Residual blocks in the order their forward consumes temb.dense.2."""
    L = len(DDPM_CH_MULT)
    order = [f"down.{i}.block.{j}" for i in range(L) for j in range(DDPM_RES_BLOCKS)]
    order += ["mid.block_1", "mid.block_2"]
    order += [f"up.{i}.block.{j}" for i in reversed(range(L)) for j in range(DDPM_RES_BLOCKS + 1)]
    return order


def mapping(model, names):
    """[(their key, [our keys concatenated along dim 0])] for our weight names."""
    names = set(names)
    out, used = [], set()

    def cat(theirs, ours):
        out.append((theirs, ours))
        used.update(ours)

    if model == "gaugan":
        for b in GAUGAN_BLOCKS:
            norms = [n for n in ("norm_0", "norm_1", "norm_s") if f"{b}.{n}.mlp_shared.0.weight" in names]
            for p in ("weight", "bias"):
                cat(f"{b}.mlp_shared.0.{p}", [f"{b}.{n}.mlp_shared.0.{p}" for n in norms])
                for n in norms:
                    cat(f"{b}.{n}.mlp_gamma_beta.{p}", [f"{b}.{n}.mlp_gamma.{p}", f"{b}.{n}.mlp_beta.{p}"])
    else:
        blocks = ddpm_block_order()
        for p in ("weight", "bias"):
            cat(f"temb.dense.2.{p}", [f"{b}.temb_proj.{p}" for b in blocks])
        for n in sorted(names):
            if n.endswith(".q.weight") or n.endswith(".q.bias"):
                pre, p = n[: -len(".q.weight") if n.endswith("weight") else -len(".q.bias")], n.split(".")[-1]
                cat(f"{pre}.qkv.{p}", [f"{pre}.{x}.{p}" for x in ("q", "k", "v")])
    for n in sorted(names - used):  # everything else keeps its name
        cat(n, [n])
    missing = sorted(used - names)
    return out, missing


def their_state(model, ours):
    import torch
    pairs, missing = mapping(model, ours.keys())
    if missing:
        sys.exit(f"sige_peer: our weights lack {missing[:5]} (the mapping expects them)")
    return {t: torch.from_numpy(np.concatenate([ours[k] for k in ks], 0)) for t, ks in pairs}


def load_strict(net, state):
    missing, unexpected = net.load_state_dict(state, strict=False)
    # BatchNorm's num_batches_tracked is a training counter, not in our files
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"sige_peer: {type(net).__name__}: weight names differ: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    return net.eval()


# ---- their models -------------------------------------------------------------

def checkout_path(arg):
    path = arg or os.environ.get("SIGE_CHECKOUT")
    if not path or not os.path.isfile(os.path.join(path, "sige", "nn", "__init__.py")):
        return None
    return os.path.abspath(path)


def their_models(model, checkout, small=False):
    """(dense fused model, SIGE model, their config) with their code on sys.path.
    small: the same layers at a quarter of the size (GauGAN 64 x 128, DDPM
    64 x 64; the weights do not depend on it), for a quick numeric check."""
    sys.path.insert(0, checkout)  # their `sige` package
    if model == "gaugan":
        sys.path.insert(0, os.path.join(checkout, "gaugan"))  # their `models` package
        from models.spade_generators.fused_spade_generator import FusedSPADEGenerator
        from models.spade_generators.sige_fused_spade_generator import SIGEFusedSPADEGenerator
        # gaugan/test.py's defaults for Cityscapes, BatchNorm instead of its
        # synchronized variant (the same running statistics, one process)
        opt = types.SimpleNamespace(
            ngf=64, input_nc=35, semantic_nc=36, no_instance=False, crop_size=128 if small else 512,
            aspect_ratio=2.0,
            num_upsampling_layers="more", norm_G="spadebatch3x3", main_block_size=6,
            shortcut_block_size=4, num_sparse_layers=5, mask_dilate_radius=1,
            downsample_dilate_radius=2)
        return (lambda: FusedSPADEGenerator(opt)), (lambda: SIGEFusedSPADEGenerator(opt)), opt
    import yaml
    if "torchprofile" not in sys.modules:
        # their fused_unet.py imports torchprofile (PyPI, not in Debian) for
        # its profile mode only; MACs are counted here (count_macs)
        stub = types.ModuleType("torchprofile")
        stub.profile_macs = lambda *a, **k: (_ for _ in ()).throw(NotImplementedError("torchprofile"))
        sys.modules["torchprofile"] = stub
    sys.path.insert(0, os.path.join(checkout, "diffusion"))
    from models.ddpm_arch.fused_unet import FusedUNet
    from models.ddpm_arch.sige_fused_unet import SIGEFusedUNet

    def ns(d):
        return types.SimpleNamespace(**{k: ns(v) if isinstance(v, dict) else v for k, v in d.items()})
    with open(os.path.join(checkout, "diffusion", "configs", "church_ddpm256-sige.yml")) as f:
        config = ns(yaml.safe_load(f))
    if small:  # attention stays at the same level (16 of 256 -> 4 of 64)
        config.data.image_size = 64
        config.model.attn_resolutions = [r // 4 for r in config.model.attn_resolutions]
    return (lambda: FusedUNet(None, config)), (lambda: SIGEFusedUNet(None, config)), config


def their_masks(model, net, cfg, x0, x1):
    from sige.utils import compute_difference_mask, dilate_mask, downsample_mask
    if model == "gaugan":
        diff = compute_difference_mask(x0[0], x1[0], eps=1e-3)
        dil = dilate_mask(diff, cfg.mask_dilate_radius)
        masks = downsample_mask(dil, (net.sh, net.sw), dilation=cfg.downsample_dilate_radius)
    else:
        diff = compute_difference_mask(x0, x1, eps=cfg.sampling.eps)
        dil = dilate_mask(diff, cfg.sampling.mask_dilate_radius)
        masks = downsample_mask(dil, cfg.data.image_size // (2 ** (len(cfg.model.ch_mult) - 1)))
    return diff, dil, masks


def count_macs(fn):
    """Direct-convolution MACs of conv2d / linear / matrix products in fn()."""
    import torch
    from torch.overrides import TorchFunctionMode
    total = [0]

    class Count(TorchFunctionMode):
        def __torch_function__(self, func, types_, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = getattr(func, "__name__", "")
            if name == "conv2d":
                w = args[1]
                total[0] += out.numel() * w.shape[1] * w.shape[2] * w.shape[3]
            elif name == "linear":
                total[0] += out.numel() * args[1].shape[1]
            elif name in ("bmm", "matmul", "mm"):
                total[0] += out.numel() * args[0].shape[-1]
            return out
    with torch.inference_mode(), Count():
        fn()
    return total[0]


def timed(fn, runs, warmup):
    ms = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        y = fn()
        if i >= warmup:
            ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms), y


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def theirs(args):
    """Child process: their dense and sparse timings (and checks) on our files."""
    import torch
    torch.set_num_threads(args.threads)
    checkout = checkout_path(args.checkout)
    dense_ctor, sige_ctor, cfg = their_models(args.model, checkout)
    try:
        import sige.cpu  # noqa: F401  (their extension; without it the sparse mode has no runtime)
    except ImportError as e:
        sys.exit(f"sige_peer: their CPU extension is not built in {checkout} ({e}): "
                 f"cd {checkout} && python3 setup.py build_ext --inplace")
    io = safetensors_io.load(os.path.join(args.dir, "io.safetensors"))
    x0, x1 = torch.from_numpy(io["input"]), torch.from_numpy(io["edited"])
    t = torch.from_numpy(io["timestep"])
    state = their_state(args.model, safetensors_io.load(os.path.join(args.dir, "w.safetensors")))
    call = (lambda net, x: net(x)) if args.model == "gaugan" else (lambda net, x: net(x, t))
    rec = {}
    with torch.inference_mode():
        dense = load_strict(dense_ctor(), state)
        rec["theirs_dense_ms"], y_dense = timed(lambda: call(dense, x0), args.runs, args.warmup)
        rec["theirs_rss_dense_mb"] = maxrss_mb()
        if args.check:
            y_dense = y_dense.numpy().copy()
            rec["theirs_dense_macs"] = count_macs(lambda: call(dense, x0))
        dense = None  # frees their dense model before the SIGE one is built
        net = load_strict(sige_ctor(), state)
        del state
        net.set_mode("full")  # their snapshot: caches every scattered output
        call(net, x0)
        diff, dil, masks = their_masks(args.model, net, cfg, x0, x1)
        net.set_masks(masks)
        net.set_mode("sparse")
        rec["theirs_sparse_ms"], y_sparse = timed(lambda: call(net, x1), args.runs, args.warmup)
        rec["theirs_peak_rss_mb"] = maxrss_mb()
        if args.check:
            rec["theirs_sparse_macs"] = count_macs(lambda: call(net, x1))
            rec["theirs_dilated_ratio"] = float(dil.float().mean())
            rec.update(compare("dense", y_dense, io["output"]))
            y_published = y_sparse.numpy().copy()
            if attn_cache_fix(net):  # DDPM: see attn_cache_fix; the timed passes ran as published
                rec.update({f"published_{k}": v for k, v in
                            compare("sparse", y_published, io["output_sparse"]).items()})
                y_sparse = call(net, x1)
            rec.update(compare("sparse", y_sparse.numpy(), io["output_sparse"]))
            # where the sparse pass recomputed (our sparse output moved away from
            # our dense output of the original): the max above may lie outside
            changed = np.any(io["output_sparse"] != io["output"], axis=1)[:, None]
            changed = np.broadcast_to(changed, io["output"].shape)
            rec["sparse_changed_pixels"] = int(changed[:, 0].sum())
            rec["sparse_max_abs_diff_changed"] = float(
                np.max(np.abs(y_sparse.numpy() - io["output_sparse"])[changed], initial=0.0))
            rec.update(mask_check(args.model, diff.numpy(), os.path.join(args.dir, "mask.png")))
    print(json.dumps(rec))


def attn_cache_fix(net):
    """Their SIGEFusedAttnBlock keeps its GroupNorm scale/shift of the full
    pass as a tensor (`self.scales, self.shifts = scale, shift`) but reads
    `self.scales[cache_id]` in sparse mode: element 0, so in the sparse pass
    every channel of the attention blocks below the sparse resolution (16 x 16
    and 8 x 8 in DDPM) gets channel 0's scale and shift.  Their residual
    blocks key the same caches by cache id.  This keys the attention caches
    the same way (no change to the work done) so that the outputs can be
    compared; the sparse output as published is reported beside it.
    Returns whether anything was changed."""
    import torch
    changed = False
    for m in net.modules():
        if type(m).__name__ == "SIGEFusedAttnBlock" and torch.is_tensor(m.scales):
            m.scales, m.shifts = {m.cache_id: m.scales}, {m.cache_id: m.shifts}
            changed = True
    return changed


def compare(what, theirs_y, ours_y):
    diff = float(np.max(np.abs(theirs_y - ours_y)))
    span = float(theirs_y.max() - theirs_y.min())
    return {f"{what}_max_abs_diff": diff, f"{what}_output_range": span,
            f"{what}_agree": diff <= TOLERANCE * span}


def mask_check(model, diff, png):
    from PIL import Image
    stroke = np.asarray(Image.open(png).convert("L")) > 127
    rec = {"stroke_pixels": int(stroke.sum()), "difference_pixels": int(diff.sum())}
    if model == "ddpm":  # every channel of a stroke pixel was redrawn: the difference is the stroke
        rec["mask_agree"] = bool(np.array_equal(stroke, diff))
    else:  # the stroke, and the instance edges it moves (one pixel either side of its outline)
        from sige.utils import dilate_mask
        rec["mask_agree"] = bool(np.all(diff[stroke]) and np.all(dilate_mask(stroke, 1)[diff]))
    return rec


# ---- driver ---------------------------------------------------------------------

def run_json(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"sige_peer: {' '.join(cmd)} exited with {p.returncode}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def case(args, checkout):
    bench = [args.sige, "bench", "--model", args.model, "--edit-ratio", str(args.edit_ratio),
             "--threads", str(args.threads), "--seed", str(args.seed), "--json"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))  # their extension's OpenMP loops too
    child = [sys.executable, os.path.abspath(__file__), "--theirs", "--model", args.model,
             "--threads", str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup),
             "--checkout", checkout]
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sige-peer-") as tmp:
        prep = run_json(bench + ["--runs", "1", "--warmup", "0",
                                 "--save-weights", os.path.join(tmp, "w.safetensors"),
                                 "--save-io", os.path.join(tmp, "io.safetensors"),
                                 "--save-mask", os.path.join(tmp, "mask.png")])
        ours_runs, their_runs, checks = [], [], None
        for r in range(args.rounds):
            for side in (("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")):
                if side == "ours":
                    ours_runs.append(run_json(bench + ["--runs", str(args.runs), "--warmup", str(args.warmup)]))
                else:
                    rec = run_json(child + ["--dir", tmp] + (["--check"] if checks is None else []), env=env)
                    if checks is None:  # the checks' extra passes are not in this round's figures
                        checks = rec
                        rec = run_json(child + ["--dir", tmp], env=env)
                    their_runs.append(rec)
    med = lambda rs, k: statistics.median(x[k] for x in rs)  # noqa: E731
    out = {
        "kind": "sige_peer", "model": args.model, "edit_ratio_requested": args.edit_ratio,
        "edit_ratio_stroke": prep["edit_ratio_stroke"], "edit_ratio_dilated": prep["edit_ratio"],
        "theirs_dilated_ratio": checks["theirs_dilated_ratio"],
        "threads": args.threads, "runs": args.runs, "warmup": args.warmup, "rounds": args.rounds,
        "ours_dense_ms": med(ours_runs, "dense_ms"), "ours_sparse_ms": med(ours_runs, "sparse_ms"),
        "theirs_dense_ms": med(their_runs, "theirs_dense_ms"),
        "theirs_sparse_ms": med(their_runs, "theirs_sparse_ms"),
        "ours_dense_gmacs": prep["dense_gmacs"], "ours_sparse_gmacs": prep["sparse_gmacs"],
        "theirs_dense_gmacs": checks["theirs_dense_macs"] / 1e9,
        "theirs_sparse_gmacs": checks["theirs_sparse_macs"] / 1e9,
        # what our Winograd kernels actually multiply (MACs stay direct-convolution ones)
        "ours_dense_gmults": prep.get("dense_gmults"), "ours_sparse_gmults": prep.get("sparse_gmults"),
        "ours_rss_dense_mb": med(ours_runs, "peak_rss_dense_mb"),
        "ours_peak_rss_mb": med(ours_runs, "peak_rss_mb"),
        "theirs_rss_dense_mb": med(their_runs, "theirs_rss_dense_mb"),
        "theirs_peak_rss_mb": med(their_runs, "theirs_peak_rss_mb"),
        "ours_dense_ms_rounds": [x["dense_ms"] for x in ours_runs],
        "ours_sparse_ms_rounds": [x["sparse_ms"] for x in ours_runs],
        "theirs_dense_ms_rounds": [x["theirs_dense_ms"] for x in their_runs],
        "theirs_sparse_ms_rounds": [x["theirs_sparse_ms"] for x in their_runs],
        "tolerance_of_range": TOLERANCE,
        "load_start": load_start, "load_end": os.getloadavg()[0],
        "cpu": prep.get("cpu"), "checkout": checkout,
    }
    for k in ("published_sparse_max_abs_diff", "published_sparse_agree"):
        if k in checks:
            out[k] = checks[k]
    for k in ("dense_max_abs_diff", "dense_output_range", "dense_agree", "sparse_max_abs_diff",
              "sparse_output_range", "sparse_agree", "sparse_changed_pixels", "sparse_max_abs_diff_changed",
              "stroke_pixels", "difference_pixels", "mask_agree"):
        out[k] = checks[k]
    out["agree"] = bool(out["dense_agree"] and out["sparse_agree"] and out["mask_agree"])
    print(json.dumps(out), flush=True)
    return 0 if out["agree"] else 1


def check_names(args, checkout):
    """CI check: the mapping loads our saved weights strictly into both of their models."""
    import torch  # noqa: F401
    ours = safetensors_io.load(args.check_names)
    pairs, missing = mapping(args.model, ours.keys())
    consumed = [k for _, ks in pairs for k in ks]
    problems = []
    if missing:
        problems.append(f"our weights lack {missing[:5]}")
    if len(consumed) != len(set(consumed)) or set(consumed) != set(ours):
        problems.append("the mapping does not use each of our tensors exactly once")
    if not problems:
        dense_ctor, sige_ctor, _ = their_models(args.model, checkout, small=True)
        state = their_state(args.model, ours)
        theirs_dense = load_strict(dense_ctor(), state)  # exits naming the keys that differ
        load_strict(sige_ctor(), state)
        problems += numeric_check(args.model, theirs_dense, ours)
    for p in problems:
        print(f"sige_peer: {args.model}: {p}", file=sys.stderr)
    if problems:
        print(f"{args.model}: mapping check FAILED")
        return 1
    print(f"{args.model}: {len(ours)} of our tensors -> {len(pairs)} of theirs, loaded strictly "
          f"into their dense and SIGE models; small dense forward agrees")
    return 0


def numeric_check(model, theirs_dense, ours):
    """Their dense fused model with mapped weights vs our plain PyTorch model
    (spade.py / ddpm.py, which peer.py checks against the engine) at the small
    size: a concatenation in the wrong order loads strictly but differs here
    by the size of the output.  Tolerance as for the full-size checks."""
    import torch
    from ddpm import DDPMUNet
    from spade import SPADEGenerator
    torch.manual_seed(0)
    if model == "gaugan":
        plain = SPADEGenerator(crop_size=128)
        lab = torch.randint(0, 35, (1, 64, 128))
        x = torch.cat([torch.nn.functional.one_hot(lab, 35).permute(0, 3, 1, 2).float(),
                       torch.zeros(1, 1, 64, 128)], 1)
        args = (x,)
    else:
        plain = DDPMUNet(resolution=64, attn_res=(4,))
        args = (torch.rand(1, 3, 64, 64) * 2 - 1, torch.tensor([500.0]))
    load_strict(plain, {k: torch.from_numpy(v) for k, v in ours.items()})
    with torch.inference_mode():
        a, b = theirs_dense(*args).numpy(), plain(*args).numpy()
    rec = compare("small", a, b)
    print(f"{model}: small dense forward, max |theirs - ours (plain PyTorch)| = "
          f"{rec['small_max_abs_diff']:.2e} of range {rec['small_output_range']:.3g}")
    return [] if rec["small_agree"] else ["their dense forward with the mapped weights differs"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["gaugan", "ddpm"], required=True)
    ap.add_argument("--edit-ratio", type=float, default=0.012)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per process (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved ours/theirs processes (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sige", default=os.environ.get("SIGE", os.path.join(ROOT, "build", "tools", "sige")))
    ap.add_argument("--checkout", default=None, help="lmxyy/sige checkout (default: $SIGE_CHECKOUT)")
    ap.add_argument("--check-names", metavar="WEIGHTS", default=None,
                    help="only check the key mapping against these saved weights (sige bench --save-weights)")
    ap.add_argument("--theirs", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    checkout = checkout_path(args.checkout)
    if checkout is None:
        sys.exit("sige_peer: set SIGE_CHECKOUT (or --checkout) to a checkout of lmxyy/sige")
    if args.theirs:
        return theirs(args)
    if args.check_names:
        return check_names(args, checkout)
    return case(args, checkout)


if __name__ == "__main__":
    sys.exit(main())
