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
  fuzz_model_load/   the weights of each model kind the engine builds from one
                     file, tiny, random, with the sige.* metadata: a SPADE
                     generator (tools/peer's module) at ngf 2 (the smallest
                     the engine builds) stored as I8, a GAN-Compression
                     generator with channel counts 1, DDPM and PD UNets at ch
                     4 (DDPM also in the fused and diffusers layouts), CLIP
                     text encoders; up to MAX_MODEL_SEED, fuzz.sh's max_len
                     (the cli test fuzz_model_seeds checks that each builds)
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
MAX_MODEL_SEED = 128 * 1024


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


def f16_dict(sd, metadata):
    """{name: float tensor} -> safetensors bytes, F16."""
    return safetensors({k: ("F16", list(v.shape), raw(v.half())) for k, v in sd.items()}, metadata)


def gancomp_state(label_nc, channels, gen):
    """The tensors core/src/models/gancomp_generator.c reads (instance edges
    included: semantic_nc = label_nc + 1)."""
    sem = label_nc + 1
    sd = {}

    def conv(name, cout, cin, k, bias=True):
        sd[name + ".weight"] = torch.randn(cout, cin, k, k, generator=gen) / (cin * k * k) ** 0.5
        if bias:
            sd[name + ".bias"] = 0.01 * torch.randn(cout, generator=gen)

    ic = 16 * channels[0]
    conv("fc", ic, sem, 3)
    names = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"]
    mult = [16, 16, 16, 8, 4, 2, 1]
    for i, b in enumerate(names):
        channel, hidden, shortcut = mult[i] * channels[i + 1], 2 * channels[i + 1], i >= 3
        fout = channel if shortcut else ic
        conv(b + ".conv_0", channel, ic, 3)
        conv(b + ".conv_1", fout, channel, 3)
        norms = [("norm_0", ic), ("norm_1", channel)] + ([("norm_s", ic)] if shortcut else [])
        if shortcut:
            conv(b + ".conv_s", fout, ic, 1, bias=False)
        for n, nc in norms:
            p = "%s.%s." % (b, n)
            conv(p + "mlp_shared.0", hidden, sem, 3)
            for gb in ("mlp_gamma", "mlp_beta"):
                conv(p + gb + ".conv.0", hidden, 1, 3)
                conv(p + gb + ".conv.2", nc, hidden, 1)
            sd[p + "param_free_norm.running_mean"] = 0.1 * torch.randn(nc, generator=gen)
            sd[p + "param_free_norm.running_var"] = 1 + torch.rand(nc, generator=gen)
        if shortcut:
            ic = channel
    conv("conv_img", 3, ic, 3)
    return sd


def unet_state(ch, ch_mult, nrb, attn_res, image_size, pd, gen, in_ch=3, out_ch=3):
    """The tensors of the ermongroup UNet layout (core/src/models/
    ermongroup_unet.c): DDPM (temb added, q/k/v, conv resampling) or PD
    (temb scale and shift, fused qkv, resampling residual blocks)."""
    sd = {}
    temb_ch = 4 * ch
    tmult = 2 if pd else 1

    def conv(name, cout, cin, k):
        sd[name + ".weight"] = torch.randn(cout, cin, k, k, generator=gen) / (cin * k * k) ** 0.5
        sd[name + ".bias"] = 0.01 * torch.randn(cout, generator=gen)

    def linear(name, cout, cin):
        sd[name + ".weight"] = torch.randn(cout, cin, generator=gen) / cin ** 0.5
        sd[name + ".bias"] = 0.01 * torch.randn(cout, generator=gen)

    def norm(name, c):
        sd[name + ".weight"] = 1 + 0.1 * torch.randn(c, generator=gen)
        sd[name + ".bias"] = 0.1 * torch.randn(c, generator=gen)

    def resblock(p, cin, cout):
        norm(p + ".norm1", cin)
        conv(p + ".conv1", cout, cin, 3)
        linear(p + ".temb_proj", tmult * cout, temb_ch)
        norm(p + ".norm2", cout)
        conv(p + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(p + ".nin_shortcut", cout, cin, 1)

    def attn(p, c):
        norm(p + ".norm", c)
        if pd:
            conv(p + ".qkv", 3 * c, c, 1)
        else:
            for n in "qkv":
                conv(p + "." + n, c, c, 1)
        conv(p + ".proj_out", c, c, 1)

    def resample(d, i, c):
        name = "%s.%d.%s" % (d, i, "downsample" if d == "down" else "upsample")
        if pd:
            resblock(name, c, c)
        else:
            conv(name + ".conv", c, c, 3)

    linear("temb.dense.0", temb_ch, ch)
    linear("temb.dense.1", temb_ch, temb_ch)
    conv("conv_in", ch, in_ch, 3)
    L, res, block_in, skip = len(ch_mult), image_size, ch, [ch]
    for i in range(L):
        out = ch * ch_mult[i]
        for j in range(nrb):
            resblock("down.%d.block.%d" % (i, j), block_in, out)
            block_in = out
            if res in attn_res:
                attn("down.%d.attn.%d" % (i, j), out)
            skip.append(out)
        if i != L - 1:
            resample("down", i, block_in)
            res //= 2
            skip.append(block_in)
    resblock("mid.block_1", block_in, block_in)
    attn("mid.attn_1", block_in)
    resblock("mid.block_2", block_in, block_in)
    for i in reversed(range(L)):
        out = ch * ch_mult[i]
        for j in range(nrb + 1):
            resblock("up.%d.block.%d" % (i, j), block_in + skip.pop(), out)
            block_in = out
            if res in attn_res:
                attn("up.%d.attn.%d" % (i, j), out)
        if i != 0:
            resample("up", i, block_in)
            res *= 2
    norm("norm_out", block_in)
    conv("conv_out", out_ch, block_in, 3)
    return sd


def clip_state(prefix, vocab, ctx, width, mlp, layers, gen):
    """The tensors core/src/models/clip_text.c reads."""
    sd = {prefix + "embeddings.token_embedding.weight": torch.randn(vocab, width, generator=gen),
          prefix + "embeddings.position_embedding.weight": torch.randn(ctx, width, generator=gen)}

    def linear(name, cout, cin):
        sd[name + ".weight"] = torch.randn(cout, cin, generator=gen) / cin ** 0.5
        sd[name + ".bias"] = 0.01 * torch.randn(cout, generator=gen)

    def norm(name):
        sd[name + ".weight"] = 1 + 0.1 * torch.randn(width, generator=gen)
        sd[name + ".bias"] = 0.1 * torch.randn(width, generator=gen)

    for i in range(layers):
        e = "%sencoder.layers.%d." % (prefix, i)
        for n in ("k_proj", "v_proj", "q_proj", "out_proj"):
            linear(e + "self_attn." + n, width, width)
        norm(e + "layer_norm1")
        linear(e + "mlp.fc1", mlp, width)
        linear(e + "mlp.fc2", width, mlp)
        norm(e + "layer_norm2")
    norm(prefix + "final_layer_norm")
    return sd


def fuse_ddpm(sd, ch_mult, nrb):
    """The SIGE fused DDPM layout (core/src/weights/layouts.c, split_ddpm_fused):
    every resnet block's temb_proj stacked into temb.dense.2 (down levels,
    mid, up levels from the deepest), each attention's q, k, v into qkv."""
    sd = dict(sd)
    blocks = ["down.%d.block.%d" % (i, j) for i in range(len(ch_mult)) for j in range(nrb)]
    blocks += ["mid.block_1", "mid.block_2"]
    blocks += ["up.%d.block.%d" % (i, j) for i in reversed(range(len(ch_mult))) for j in range(nrb + 1)]
    for p in ("weight", "bias"):
        sd["temb.dense.2." + p] = torch.cat([sd.pop("%s.temb_proj.%s" % (b, p)) for b in blocks])
        for k in [k for k in sd if k.endswith(".q." + p)]:
            a = k[:-len(".q." + p)]
            sd["%s.qkv.%s" % (a, p)] = torch.cat([sd.pop("%s.%s.%s" % (a, n, p)) for n in "qkv"])
    return sd


def diffusers_ddpm(sd, levels):
    """The same UNet under diffusers' UNet2DModel names (the renaming of
    core/src/weights/layouts.c, rename_diffusers, backwards): attention
    projections as Linear weights, old names (query, proj_attn) in the middle
    block and new ones (to_q, to_out.0) in the levels."""
    out = {}
    res_part = {"temb_proj": "time_emb_proj", "nin_shortcut": "conv_shortcut"}
    old = {"norm": "group_norm", "q": "query", "k": "key", "v": "value", "proj_out": "proj_attn"}
    new = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
    for k, v in sd.items():
        parts = k.split(".")
        name = None
        if parts[0] in ("conv_in", "conv_out"):
            name = k
        elif parts[0] == "norm_out":
            name = "conv_norm_out." + parts[1]
        elif parts[0] == "temb":
            name = "time_embedding.linear_%d.%s" % (int(parts[2]) + 1, parts[3])
        elif parts[0] == "mid":
            if parts[1].startswith("block_"):
                name = "mid_block.resnets.%d.%s.%s" % (int(parts[1][6:]) - 1,
                                                      res_part.get(parts[2], parts[2]), parts[3])
            else:
                name = "mid_block.attentions.0.%s.%s" % (old[parts[2]], parts[3])
        else:
            d, i = parts[0], int(parts[1])
            lvl = "%s_blocks.%d" % (d, i if d == "down" else levels - 1 - i)
            if parts[2] == "block":
                name = "%s.resnets.%s.%s.%s" % (lvl, parts[3], res_part.get(parts[4], parts[4]), parts[5])
            elif parts[2] == "attn":
                name = "%s.attentions.%s.%s.%s" % (lvl, parts[3], new[parts[4]], parts[5])
            else:
                name = "%s.%ssamplers.0.conv.%s" % (lvl, d, parts[4])
        if ".attentions." in name and "group_norm" not in name and v.dim() == 4:
            v = v[:, :, 0, 0]
        out[name] = v
    return out


def model_seeds():
    """The smallest weights of each model kind the engine recognises."""
    sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "peer"))
    from spade import SPADEGenerator

    def i8(module, metadata):
        """Weights rounded to multiples of 1/16 stored as I8 (x16): the
        engine converts integer tensors like any other, and one byte per
        weight halves the file, which sets the cost of every input bred
        from it."""
        sd = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
        q = {k: (v * 16).round().clamp(-127, 127).to(torch.int8) for k, v in sd.items()}
        q = {k: (v.abs() if k.endswith("running_var") else v) for k, v in q.items()}
        return safetensors({k: ("I8", list(v.shape), raw(v)) for k, v in q.items()}, metadata)

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    return {
        # GAN Compression's sub-mobile SPADE generator with every channel
        # count 1 (fc 16 wide, hidden 2): the same SPADE blocks with
        # separable norms in a few KB
        "gancomp_c1.safetensors": f16_dict(gancomp_state(label_nc=2, channels=[1] * 8, gen=g),
            {"sige.model": "sub-mobile-spade-generator", "sige.crop_size": "32",
             "sige.config_str": "1_1_1_1_1_1_1_1",
             "sige.aspect_ratio": "1", "sige.num_upsampling_layers": "5"}),
        # DDPM and PD UNets at ch 4, two levels of 8x8 and 4x4, attention at
        # 4x4: every block kind (resnet with and without nin_shortcut,
        # attention, conv or resblock resampling) of each layout.  They load
        # (GroupNorm's 32 groups are checked when the model runs, not when
        # it is built) but cannot run: the fuzzer only builds them.
        "ddpm_ch4.safetensors": f16_dict(unet_state(ch=4, ch_mult=(1, 2), nrb=1, attn_res=(4,),
                                                    image_size=8, pd=False, gen=g),
                                         {"sige.image_size": "8"}),
        # the other key layouts of the same UNet: SIGE's fused one and
        # diffusers' UNet2DModel names
        "ddpm_ch4_fused.safetensors": f16_dict(
            fuse_ddpm(unet_state(ch=4, ch_mult=(1, 2), nrb=1, attn_res=(4,), image_size=8,
                                 pd=False, gen=g), (1, 2), 1), {"sige.image_size": "8"}),
        "ddpm_ch4_diffusers.safetensors": f16_dict(
            diffusers_ddpm(unet_state(ch=4, ch_mult=(1, 2), nrb=1, attn_res=(4,), image_size=8,
                                      pd=False, gen=g), 2), {"sige.image_size": "8"}),
        # a CLIP text encoder of one layer, width 8, 2 heads (metadata: the
        # head count is not in the shapes), under both key prefixes
        "clip_w8.safetensors": f16_dict(clip_state("text_model.", vocab=16, ctx=4, width=8,
                                                   mlp=16, layers=1, gen=g), {"sige.heads": "2"}),
        "clip_w8_sd.safetensors": f16_dict(
            clip_state("cond_stage_model.transformer.text_model.", vocab=16, ctx=4, width=8,
                       mlp=16, layers=2, gen=g), {"sige.heads": "2"}),
        "pd_ch4.safetensors": f16_dict(unet_state(ch=4, ch_mult=(1, 2), nrb=1, attn_res=(4,),
                                                  image_size=8, pd=True, gen=g),
                                       {"sige.image_size": "8", "sige.head_dim": "4"}),
        # ngf 2: the engine refuses ngf 1 (before any weight is read), so
        # a seed at ngf 1 never reached parameter loading; 3 classes, 32x32
        # output (latent 1x1, 5 upsampling layers) keep it small; I8: 109
        # KiB where F16 took 203
        "spade_ngf2_i8.safetensors": i8(
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
