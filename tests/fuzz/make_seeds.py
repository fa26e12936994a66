#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets (tests/fuzz/corpus/).

usage: /usr/bin/python3 make_seeds.py [OUTDIR]     (default: corpus/ next to this script)

The seeds are committed; rerun this only to change them (Debian:
apt-get install python3-torch).  Every seed is a small valid file, so the
fuzzers start from inputs that reach deep into each reader:
  fuzz_safetensors/  safetensors with F32/F16/BF16/I32 (and the other dtypes),
                     a scalar, an empty tensor, __metadata__, an empty table
  fuzz_pickle/       torch.save's data.pkl of small checkpoints (tensors,
                     views, parameters, OrderedDict, fp16/bf16/int64 storages)
                     and plain containers pickled with protocols 2 to 5
  fuzz_torch_zip/    the same checkpoints as torch.save zip files, and one
                     legacy (_use_new_zipfile_serialization=False) file
  fuzz_png/          PNGs in the stored formats (gray 1/4/8/16-bit, gray+alpha,
                     RGB, RGBA, palette, interlaced), made with ImageMagick's convert
  fuzz_model_load/   a SPADE generator's weights (tools/peer's module) at ngf 2
                     (the smallest the engine builds), 3 classes, 32x32, F16,
                     with the sige.* metadata (larger: up to MAX_MODEL_SEED;
                     the smallest DDPM UNet, ch 32 for GroupNorm's 32 groups,
                     is 333 KB)
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

try:
    import torch
except ImportError as e:
    sys.exit("cannot import torch (%s): run with Debian's /usr/bin/python3 (apt-get install python3-torch)" % e)

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_SEED = 10 * 1024
MAX_MODEL_SEED = 256 * 1024


def safetensors(tensors, metadata=None):
    """{name: (dtype string, shape, raw little-endian bytes)} -> file bytes."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def raw(t):
    """A tensor's bytes as stored (bf16 through an int16 view: numpy has no bf16)."""
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.contiguous().numpy().tobytes()


def safetensors_seeds():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, generator=g)
    return {
        "mixed.safetensors": safetensors({
            "conv.weight": ("F32", [2, 3], raw(x)),
            "half": ("F16", [4], raw(torch.tensor([1.0, -2.5, 65504.0, 6e-8], dtype=torch.float16))),
            "bf": ("BF16", [2, 2], raw(torch.tensor([[1.0, -0.5], [3e38, 1e-30]], dtype=torch.bfloat16))),
            "idx": ("I32", [3], raw(torch.tensor([0, -7, 2**31 - 1], dtype=torch.int32))),
            "scalar": ("F32", [], raw(torch.tensor(0.25))),
        }, {"format": "pt"}),
        "ints.safetensors": safetensors({
            "a64": ("I64", [2], raw(torch.tensor([-1, 2**40]))),
            "a16": ("I16", [1, 2], raw(torch.tensor([[-3, 300]], dtype=torch.int16))),
            "a8": ("I8", [2], raw(torch.tensor([-128, 127], dtype=torch.int8))),
            "u8": ("U8", [2], raw(torch.tensor([0, 255], dtype=torch.uint8))),
            "mask": ("BOOL", [3], raw(torch.tensor([True, False, True]))),
            "d": ("F64", [1, 1, 1, 2], raw(torch.tensor([[[[1.5, -1e300]]]], dtype=torch.float64))),
            "empty": ("F32", [0, 3], b""),
        }),
        "metadata_only.safetensors": safetensors({}, {"sige.note": "no tensors"}),
    }


def checkpoints():
    """Small objects as torch.save would meet them in the wild."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 4, generator=g)
    plain = {"weight": w, "bias": torch.zeros(3)}
    od = collections.OrderedDict(
        [("module.conv.weight", torch.nn.Parameter(torch.randn(2, 1, 2, 2, generator=g))),
         ("module.norm.running_mean", torch.ones(2, dtype=torch.float16))])
    od._metadata = collections.OrderedDict([("", {"version": 1})])
    base = torch.arange(12, dtype=torch.float32)
    nested = {
        "model": {"t": w.t(), "off": base[2:6], "bf": w.to(torch.bfloat16),
                  "steps": torch.tensor([5, 6], dtype=torch.int64), "s": torch.tensor(3.0)},
        "ema": od,
        "step": 3,
        "lr": 1e-4,
        "name": "tiny",
    }
    # the loader takes "ema" first, so the views get a checkpoint of their own
    return {"plain": plain, "nested": nested, "views": nested["model"]}


def torch_zip(obj):
    b = io.BytesIO()
    torch.save(obj, b)
    return b.getvalue()


def pickle_seeds(zips):
    seeds = {}
    for stem, data in zips.items():
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            (pkl,) = [n for n in z.namelist() if n.endswith("/data.pkl")]
            seeds[stem + "_data.pkl"] = z.read(pkl)
    # the opcodes of plain containers, in every protocol the reader accepts
    plain = {"i": [0, -1, 255, 65535, 2**31, -2**63, 2**70], "f": 1.5, "s": "é",
             "b": b"\x00\xff", "t": (None, True, False), "t1": (1,), "t2": (1, 2), "e": (),
             "nested": [[{"k": [1]}]], 7: "int key"}
    for proto in (2, 3, 4, 5):
        seeds["plain_p%d.pkl" % proto] = pickle.dumps(plain, protocol=proto)
    return seeds


def png_seeds():
    """Small PNGs in each stored format libpng hands the readers."""
    import subprocess
    import tempfile
    fmts = {
        "gray8.png": ["-colorspace", "gray", "-depth", "8", "PNG:"],
        "gray16.png": ["-colorspace", "gray", "-depth", "16", "PNG:"],
        "gray4.png": ["-colorspace", "gray", "-depth", "4", "PNG:"],
        "gray1.png": ["-colorspace", "gray", "-depth", "1", "PNG:"],
        "rgb.png": ["-depth", "8", "PNG24:"], "rgba.png": ["-depth", "8", "PNG32:"],
        "palette.png": ["-colors", "8", "PNG8:"], "interlaced.png": ["-interlace", "PNG", "PNG24:"],
        "graya.png": ["-alpha", "set", "-colorspace", "gray", "PNG:"],
    }
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, args in fmts.items():
            dst = os.path.join(d, name)
            *opts, prefix = args
            subprocess.run(["convert", "-size", "16x8", "plasma:fractal", "-seed", "1"] + opts + [prefix + dst],
                           check=True)
            with open(dst, "rb") as f:
                out[name] = f.read()
    return out


def model_seeds():
    """The smallest weights of each model kind the engine recognises."""
    sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "peer"))
    from spade import SPADEGenerator

    def f16(module, metadata):
        sd = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
        return safetensors({k: ("F16", list(v.shape), raw(v.half())) for k, v in sd.items()}, metadata)

    torch.manual_seed(0)
    return {
        # ngf 2: the engine refuses ngf 1 (before any weight is read), so
        # a seed at ngf 1 never reached parameter loading; 3 classes, 32x32
        # output (latent 1x1, 5 upsampling layers) keep it small
        "spade_ngf2.safetensors": f16(
            SPADEGenerator(ngf=2, label_nc=3, crop_size=32, aspect_ratio=1.0,
                           num_upsampling_layers=5),
            {"sige.model": "spade-generator", "sige.crop_size": "32",
             "sige.aspect_ratio": "1", "sige.num_upsampling_layers": "5"}),
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    ck = checkpoints()
    zips = {stem: torch_zip(obj) for stem, obj in ck.items()}
    legacy = io.BytesIO()
    torch.save(ck["nested"], legacy, _use_new_zipfile_serialization=False)
    corpora = {
        "fuzz_safetensors": safetensors_seeds(),
        "fuzz_pickle": pickle_seeds(zips),
        "fuzz_torch_zip": {**{stem + ".pth": d for stem, d in zips.items()},
                           "nested_legacy.pth": legacy.getvalue()},
        "fuzz_png": png_seeds(),
        "fuzz_model_load": model_seeds(),
    }
    for target, seeds in corpora.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            limit = MAX_MODEL_SEED if target == "fuzz_model_load" else MAX_SEED
            if len(data) > limit:
                sys.exit("%s/%s is %d bytes (keep seeds under %d)" % (target, name, len(data), limit))
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            print("%s/%s: %d bytes" % (target, name, len(data)))


if __name__ == "__main__":
    main()
