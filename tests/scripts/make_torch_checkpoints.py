#!/usr/bin/env python3
"""Writes the PyTorch checkpoints that tests/unit/torchload reads.

usage: make_torch_checkpoints.py OUTDIR [REFERENCE_DIR]

OUTDIR receives
  good_zip.pth, good_legacy.pth   nested {"model", "ema", "step"} checkpoints
                                  (fp32, fp16, bf16, int64, scalars, views with
                                  offsets and transposed strides, "module."
                                  prefixes, an OrderedDict with _metadata)
  expected.safetensors            the "ema" tensors as the loader must return
                                  them: float32, contiguous, prefix removed
  evil_system.pth, evil_eval.pth, evil_legacy.pth
                                  pickles that would run a command when
                                  unpickled by Python (os.system / eval)
  bomb_entry.pth                  a 4-float storage whose zip entry deflates to 300 MB
  bomb_total.pth                  a 300 MB storage of zeros, deflated (about 300 KB)
  ddpm_original.pth, ddpm_original_legacy.pth, ddpm_diffusers.pth
                                  (with REFERENCE_DIR) the tiny DDPM reference
                                  weights in the ermongroup/ddim and diffusers
                                  UNet2DModel layouts
  ddpm_fused.pth, spade_fused.pth (with REFERENCE_DIR) the tiny DDPM and GauGAN
                                  reference weights fused as SIGE's FusedUNet
                                  (temb.dense.2, attention qkv) and
                                  FusedSPADEGenerator (per-block mlp_shared,
                                  per-norm mlp_gamma_beta) hold them
Exits 3 when torch cannot be imported (Debian: apt-get install python3-torch).
"""
import collections
import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # the C test turns this into a message naming the package
    sys.stderr.write("cannot import torch (%s): install python3-torch\n" % e)
    sys.exit(3)

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def write_safetensors(path, tensors):
    """Minimal writer: float32 only, sorted names."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().to(torch.float32).contiguous().numpy().astype("<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=np.dtype(ST_DTYPES[e["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.reshape(e["shape"]).copy())
    return out


def good_checkpoint():
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(6, 10, generator=g)
    ema = collections.OrderedDict()
    ema["module.conv.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    ema["module.conv.bias"] = torch.nn.Parameter(torch.randn(4, generator=g))
    ema["module.half"] = (torch.randn(5, 7, generator=g) * 3).half()
    ema["module.bf16"] = torch.randn(3, 4, generator=g).bfloat16()
    ema["module.steps"] = torch.arange(-3, 9, dtype=torch.int64).reshape(3, 4)
    ema["module.scalar"] = torch.tensor(2.5)
    ema["module.count"] = torch.tensor(7, dtype=torch.int64)
    ema["module.transposed"] = base.t()               # strides (1, 10)
    ema["module.slice"] = base[2:5, 3:8]              # offset 23, strides (10, 1)
    ema["module.strided"] = base[::2, ::3]            # strides (20, 3)
    ema["module.shared"] = base                       # same storage as the three views
    ema["module.half_view"] = ema["module.half"][1:4].t()
    ema["module.big4d"] = torch.randn(2, 3, 4, 5, generator=g).permute(0, 2, 3, 1)
    ema["module.empty"] = torch.zeros(0, 3)
    ema._metadata = collections.OrderedDict({"": {"version": 1}})
    model = collections.OrderedDict((k, torch.zeros_like(v)) for k, v in ema.items())
    ckpt = {"model": model, "ema": ema, "step": 1000, "lr": 1e-4, "name": "test",
            "flags": [True, False, None], "shape": (1, 2), "blob": b"\x00\x01",
            "dtype": torch.float16}
    expected = {k[len("module."):]: v.float() if v.dim() else v.float().reshape(1)
                for k, v in ema.items()}
    return ckpt, expected


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def canonical_to_diffusers(name, levels):
    parts = name.split(".")
    res = {"norm1": "norm1", "conv1": "conv1", "temb_proj": "time_emb_proj", "norm2": "norm2",
           "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
    att_old = {"norm": "group_norm", "q": "query", "k": "key", "v": "value", "proj_out": "proj_attn"}
    att_new = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
    p = parts[-1]
    if parts[0] in ("conv_in", "conv_out"):
        return name
    if parts[0] == "norm_out":
        return "conv_norm_out." + p
    if parts[0] == "temb":
        return "time_embedding.linear_%d.%s" % (int(parts[2]) + 1, p)
    if parts[0] == "mid":
        if parts[1].startswith("block_"):
            return "mid_block.resnets.%d.%s.%s" % (int(parts[1][6:]) - 1, res[parts[2]], p)
        return "mid_block.attentions.0.%s.%s" % (att_old[parts[2]], p)
    i = int(parts[1])
    blk = "down_blocks.%d" % i if parts[0] == "down" else "up_blocks.%d" % (levels - 1 - i)
    if parts[2] == "block":
        return "%s.resnets.%s.%s.%s" % (blk, parts[3], res[parts[4]], p)
    if parts[2] == "attn":  # both spellings of diffusers' attention names
        att = att_old if parts[0] == "down" else att_new
        return "%s.attentions.%s.%s.%s" % (blk, parts[3], att[parts[4]], p)
    if parts[2] in ("downsample", "upsample"):
        return "%s.%ssamplers.0.conv.%s" % (blk, parts[2][:-6], p)
    raise KeyError(name)


def fuse_ddpm(ref):
    """lmxyy/sige diffusion/models/ddpm_arch/fused_unet.py: every resnet block's
    temb_proj concatenated in forward order into temb.dense.2, q|k|v into qkv."""
    levels = 1 + max(int(k.split(".")[1]) for k in ref if k.startswith("down."))

    def blocks(level, i):
        j = 0
        while "%s.%d.block.%d.conv1.weight" % (level, i, j) in ref:
            yield "%s.%d.block.%d" % (level, i, j)
            j += 1

    order = [b for i in range(levels) for b in blocks("down", i)]
    order += ["mid.block_1", "mid.block_2"]
    order += [b for i in reversed(range(levels)) for b in blocks("up", i)]
    fused = collections.OrderedDict()
    for k, v in ref.items():
        if ".temb_proj." in k:
            continue
        parts = k.rsplit(".", 2)
        if parts[1] in ("q", "k", "v"):
            if parts[1] == "q":
                fused[parts[0] + ".qkv." + parts[2]] = torch.cat(
                    [ref["%s.%s.%s" % (parts[0], c, parts[2])] for c in "qkv"], 0)
            continue
        fused[k] = v
    for p in ("weight", "bias"):
        fused["temb.dense.2." + p] = torch.cat([ref["%s.temb_proj.%s" % (b, p)] for b in order], 0)
    return fused


def fuse_spade(ref):
    """lmxyy/sige gaugan/models/spade_generators/fused_spade_generator.py: per
    block one mlp_shared over norm_0|norm_1|norm_s, per norm mlp_gamma_beta =
    mlp_gamma|mlp_beta (the spectral-norm tensors are kept as they are)."""
    fused = collections.OrderedDict()
    for k, v in ref.items():
        parts = k.split(".")
        if len(parts) == 5 and parts[2] == "mlp_shared":
            if parts[1] == "norm_0":
                norms = ["norm_0", "norm_1"] + (["norm_s"] if "%s.norm_s.%s" % (
                    parts[0], ".".join(parts[2:])) in ref else [])
                fused["%s.mlp_shared.0.%s" % (parts[0], parts[4])] = torch.cat(
                    [ref["%s.%s.mlp_shared.0.%s" % (parts[0], n, parts[4])] for n in norms], 0)
            continue
        if len(parts) == 4 and parts[2] in ("mlp_gamma", "mlp_beta"):
            if parts[2] == "mlp_gamma":
                pre = "%s.%s." % (parts[0], parts[1])
                fused[pre + "mlp_gamma_beta." + parts[3]] = torch.cat(
                    [ref[pre + "mlp_gamma." + parts[3]], ref[pre + "mlp_beta." + parts[3]]], 0)
            continue
        fused[k] = v
    return fused


def deflated(src, dst, replace=None):
    """src's zip entries written again with deflate; replace: {entry suffix: bytes}."""
    import zipfile
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            for suffix, new in (replace or {}).items():
                if info.filename.endswith(suffix):
                    data = new
            zout.writestr(info.filename, data)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    ckpt, expected = good_checkpoint()
    torch.save(ckpt, os.path.join(out, "good_zip.pth"))
    torch.save(ckpt, os.path.join(out, "good_legacy.pth"), _use_new_zipfile_serialization=False)
    write_safetensors(os.path.join(out, "expected.safetensors"), expected)

    # deflate bombs: an entry far larger than its storage, and a storage that
    # is honest about its 300 MB but comes from a file a thousand times smaller
    small = os.path.join(out, "small_stored.pth")
    torch.save({"w": torch.zeros(4)}, small)
    deflated(small, os.path.join(out, "bomb_entry.pth"), {"/data/0": bytes(300 << 20)})
    big = os.path.join(out, "big_stored.pth")
    torch.save({"w": torch.zeros(75 << 20 >> 2 << 2)}, big)
    deflated(big, os.path.join(out, "bomb_total.pth"))
    os.remove(small)
    os.remove(big)

    side = os.path.join(out, "pwned")
    evil = {"state_dict": {"w": torch.ones(2)}, "x": Evil(os.system, "echo pwned > " + side)}
    torch.save(evil, os.path.join(out, "evil_system.pth"))
    torch.save(evil, os.path.join(out, "evil_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"w": Evil(eval, "open(%r, 'w').write('pwned')" % side)},
               os.path.join(out, "evil_eval.pth"))

    if len(sys.argv) > 2:
        ref = read_safetensors(os.path.join(sys.argv[2], "ddpm-church-tiny", "weights.safetensors"))
        noise = collections.OrderedDict((k, v * 0.5) for k, v in ref.items())
        torch.save({"model": noise, "ema": ref}, os.path.join(out, "ddpm_original.pth"))
        torch.save({"state_dict": collections.OrderedDict(("module." + k, v) for k, v in ref.items())},
                   os.path.join(out, "ddpm_original_legacy.pth"),
                   _use_new_zipfile_serialization=False)
        levels = 1 + max(int(k.split(".")[1]) for k in ref if k.startswith("down."))
        diff = collections.OrderedDict()
        for k, v in ref.items():
            name = canonical_to_diffusers(k, levels)
            if ".attentions." in name and name.endswith("weight") and v.dim() == 4:
                v = v.reshape(v.shape[0], v.shape[1])  # Linear layers in diffusers
            diff[name] = v
        torch.save(diff, os.path.join(out, "ddpm_diffusers.pth"))
        torch.save(fuse_ddpm(ref), os.path.join(out, "ddpm_fused.pth"))
        spade = read_safetensors(os.path.join(sys.argv[2], "gaugan-cityscapes-tiny",
                                              "weights.safetensors"))
        torch.save(fuse_spade(spade), os.path.join(out, "spade_fused.pth"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
