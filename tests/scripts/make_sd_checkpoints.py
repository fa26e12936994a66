#!/usr/bin/env python3
"""Writes Stable Diffusion checkpoints in the layouts users have, from the tiny
reference weights, for tests/unit/weights/test_sd_checkpoint.c.

usage: make_sd_checkpoints.py OUTDIR REFERENCE_DIR BPE_VOCAB_GZ

The UNet and VAE come from sd-img2img-tiny, the text encoder from
clip-text-tiny (all float16 there).  OUTDIR receives
  sd_full.safetensors     UNet + VAE + text encoder in single-file names, F16,
                          with EMA keys (model_ema.*: the UNet negated, so that
                          the two are told apart), schedule buffers, an I64
                          position_ids and optimizer-like leftovers; metadata
                          sige.unet.heads / sige.text-encoder.heads = 2
  sd_full_fp32.safetensors the same in F32 (values exact: widened F16)
  sd_full.ckpt            the same as a torch.save zip ({"state_dict": ...,
                          "global_step": ...}), F32
  sd_full_fp16.ckpt       the same, F16
  diffusers/              a diffusers folder: model_index.json, unet/ (F32
                          safetensors, config.json), vae/ (a torch .bin with
                          Linear attention projections), text_encoder/
                          (model.fp16.safetensors only, config.json),
                          tokenizer/vocab.json + merges.txt (made from
                          openai's vocabulary by the rules of
                          simple_tokenizer.py), scheduler/scheduler_config.json
  diffusers_*/            broken copies for the error tests (see the bottom)
  no_sd.safetensors       a file with no SD keys
The diffusers names are produced here by the forward renaming (single file ->
diffusers), written independently of the C reverse table, from the rules of
diffusers' scripts/convert_original_stable_diffusion_to_diffusers.py.
Exits 3 when torch cannot be imported.
"""
import gzip
import json
import os
import shutil
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    sys.stderr.write("cannot import torch (%s): install python3-torch\n" % e)
    sys.exit(3)

DT = {"F16": np.float16, "F32": np.float32, "I64": np.int64, "I32": np.int32, "F64": np.float64}
NAME = {np.dtype(v): k for k, v in DT.items()}


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=DT[v["dtype"]]).reshape(v["shape"]).copy()
    return out


def write_st(path, tensors, meta=None):
    head, off, blobs = {}, 0, []
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        b = a.tobytes()
        head[k] = {"dtype": NAME[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    if meta:
        head["__metadata__"] = meta
    h = json.dumps(head).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def torch_save(path, tensors):
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, path)


# ---- single file -> diffusers (forward renaming) -------------------------

RES = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
       "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}


def res_name(rest):
    for a, b in RES.items():
        if rest.startswith(a + "."):
            return b + rest[len(a):]
    raise KeyError(rest)


def unet_to_diffusers(sd):
    P = "model.diffusion_model."
    keys = [k[len(P):] for k in sd if k.startswith(P)]
    op = min(int(k.split(".")[1]) for k in keys if k.startswith("input_blocks.") and ".op." in k)
    R = op - 1  # res blocks per level
    out = {}
    for k in keys:
        v = sd[P + k]
        p = k.split(".")
        if k.startswith("time_embed."):
            n = "time_embedding.linear_%d.%s" % (1 if p[1] == "0" else 2, p[2])
        elif k.startswith("input_blocks.0.0."):
            n = "conv_in." + p[-1]
        elif k.startswith("out.0."):
            n = "conv_norm_out." + p[-1]
        elif k.startswith("out.2."):
            n = "conv_out." + p[-1]
        elif p[0] == "input_blocks":
            b, l = divmod(int(p[1]) - 1, R + 1)
            rest = ".".join(p[3:])
            if p[3] == "op":
                n = "down_blocks.%d.downsamplers.0.conv.%s" % (b, p[-1])
            elif p[2] == "0":
                n = "down_blocks.%d.resnets.%d.%s" % (b, l, res_name(rest))
            else:
                n = "down_blocks.%d.attentions.%d.%s" % (b, l, rest)
        elif p[0] == "middle_block":
            rest = ".".join(p[2:])
            if p[1] == "1":
                n = "mid_block.attentions.0." + rest
            else:
                n = "mid_block.resnets.%d.%s" % (int(p[1]) // 2, res_name(rest))
        elif p[0] == "output_blocks":
            b, l = divmod(int(p[1]), R + 1)
            rest = ".".join(p[3:])
            if p[3] == "conv":
                n = "up_blocks.%d.upsamplers.0.conv.%s" % (b, p[-1])
            elif p[2] == "0":
                n = "up_blocks.%d.resnets.%d.%s" % (b, l, res_name(rest))
            else:
                n = "up_blocks.%d.attentions.%d.%s" % (b, l, rest)
        else:
            raise KeyError(k)
        out[n] = v
    return out


def vae_to_diffusers(sd):
    P = "first_stage_model."
    keys = [k[len(P):] for k in sd if k.startswith(P)]
    L = 1 + max(int(k.split(".")[2]) for k in keys if k.startswith("encoder.down."))
    out = {}
    for k in keys:
        v = sd[P + k]
        p = k.split(".")
        half = p[0]
        if p[0] in ("quant_conv", "post_quant_conv") or p[1] in ("conv_in", "conv_out"):
            n = k
        elif p[1] == "norm_out":
            n = half + ".conv_norm_out." + p[-1]
        elif p[1] in ("down", "up"):
            i = int(p[2])
            blocks = "down_blocks" if p[1] == "down" else "up_blocks"
            d = i if p[1] == "down" else L - 1 - i
            if p[3] == "block":
                rest = ".".join(p[5:]).replace("nin_shortcut", "conv_shortcut")
                n = "%s.%s.%d.resnets.%s.%s" % (half, blocks, d, p[4], rest)
            else:  # downsample.conv / upsample.conv
                n = "%s.%s.%d.%ssamplers.0.conv.%s" % (half, blocks, d, p[1], p[-1])
        elif p[1] == "mid":
            if p[2].startswith("block_"):
                rest = ".".join(p[3:]).replace("nin_shortcut", "conv_shortcut")
                n = "%s.mid_block.resnets.%d.%s" % (half, int(p[2][6:]) - 1, rest)
            else:
                part = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v",
                        "proj_out": "to_out.0"}[p[3]]
                n = "%s.mid_block.attentions.0.%s.%s" % (half, part, p[-1])
                if part != "group_norm" and v.ndim == 4:
                    v = v[:, :, 0, 0]  # diffusers keeps Linear layers
        else:
            raise KeyError(k)
        out[n] = v
    return out


def clip_to_diffusers(sd):
    P = "cond_stage_model.transformer."
    out = {k[len(P):]: v for k, v in sd.items() if k.startswith(P)}
    out["text_model.embeddings.position_ids"] = np.arange(77, dtype=np.int64).reshape(1, 77)
    return out


# ---- tokenizer files from openai's vocabulary -----------------------------

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def tokenizer_files(bpe_gz, outdir):
    merges = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = merges[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(outdir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({v: i for i, v in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(outdir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")


def main():
    out, ref, bpe = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    sd = read_st(os.path.join(ref, "sd-img2img-tiny", "weights.safetensors"))
    sd.update(read_st(os.path.join(ref, "clip-text-tiny", "weights.safetensors")))
    full = dict(sd)
    for k, v in sd.items():
        if k.startswith("model.diffusion_model."):
            full["model_ema." + k[len("model."):].replace(".", "")] = -v
    full["model_ema.decay"] = np.array(0.9999, dtype=np.float32)
    full["model_ema.num_updates"] = np.array(470000, dtype=np.int64)
    betas = (np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2)
    full["betas"] = betas.astype(np.float32)
    full["alphas_cumprod"] = np.cumprod(1 - betas).astype(np.float32)
    full["cond_stage_model.transformer.text_model.embeddings.position_ids"] = \
        np.arange(77, dtype=np.int64).reshape(1, 77)
    full["lvlb_weights"] = np.ones(1000, dtype=np.float32)
    meta = {"sige.unet.heads": "2", "sige.text-encoder.heads": "2",
            "sige.unet.latent_h": "16", "sige.unet.latent_w": "16"}
    write_st(os.path.join(out, "sd_full.safetensors"), full, meta)
    f32 = {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in full.items()}
    write_st(os.path.join(out, "sd_full_fp32.safetensors"), f32, meta)
    torch.save({"state_dict": {k: torch.from_numpy(np.array(v)) for k, v in f32.items()},
                "global_step": 470000}, os.path.join(out, "sd_full.ckpt"))
    torch.save({"state_dict": {k: torch.from_numpy(np.array(v)) for k, v in full.items()},
                "global_step": 470000}, os.path.join(out, "sd_full_fp16.ckpt"))

    d = os.path.join(out, "diffusers")
    for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    with open(os.path.join(d, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.21.0",
                   "unet": ["diffusers", "UNet2DConditionModel"],
                   "vae": ["diffusers", "AutoencoderKL"],
                   "text_encoder": ["transformers", "CLIPTextModel"],
                   "tokenizer": ["transformers", "CLIPTokenizer"],
                   "scheduler": ["diffusers", "PNDMScheduler"]}, f)
    unet = {k: v.astype(np.float32) for k, v in unet_to_diffusers(sd).items()}
    write_st(os.path.join(d, "unet", "diffusion_pytorch_model.safetensors"), unet)
    with open(os.path.join(d, "unet", "config.json"), "w") as f:
        json.dump({"_class_name": "UNet2DConditionModel", "attention_head_dim": 2,
                   "cross_attention_dim": 32, "sample_size": 16, "layers_per_block": 1}, f)
    torch_save(os.path.join(d, "vae", "diffusion_pytorch_model.bin"), vae_to_diffusers(sd))
    with open(os.path.join(d, "vae", "config.json"), "w") as f:
        json.dump({"_class_name": "AutoencoderKL", "latent_channels": 4}, f)
    write_st(os.path.join(d, "text_encoder", "model.fp16.safetensors"), clip_to_diffusers(sd))
    with open(os.path.join(d, "text_encoder", "config.json"), "w") as f:
        json.dump({"architectures": ["CLIPTextModel"], "num_attention_heads": 2,
                   "hidden_size": 32}, f)
    tokenizer_files(bpe, os.path.join(d, "tokenizer"))
    with open(os.path.join(d, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump({"_class_name": "PNDMScheduler", "beta_end": 0.012,
                   "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                   "num_train_timesteps": 1000, "prediction_type": "epsilon",
                   "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
                   "trained_betas": None}, f)

    # broken copies
    def copy(name):
        p = os.path.join(out, name)
        shutil.copytree(d, p)
        return p
    shutil.rmtree(os.path.join(copy("diffusers_no_vae"), "vae"))
    p = copy("diffusers_cosine")
    with open(os.path.join(p, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump({"beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 1000}, f)
    p = copy("diffusers_vpred")
    with open(os.path.join(p, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump({"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                   "prediction_type": "v_prediction"}, f)
    p = copy("diffusers_xl")
    with open(os.path.join(p, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionXLPipeline"}, f)
    p = copy("diffusers_badshape")
    bad = dict(unet)
    bad["down_blocks.0.resnets.0.conv1.weight"] = np.zeros((32, 16, 3, 3), dtype=np.float32)
    write_st(os.path.join(p, "unet", "diffusion_pytorch_model.safetensors"), bad)
    p = copy("diffusers_unknown_key")
    bad = dict(unet)
    bad["add_embedding.linear_1.weight"] = np.zeros((4, 4), dtype=np.float32)
    write_st(os.path.join(p, "unet", "diffusion_pytorch_model.safetensors"), bad)
    write_st(os.path.join(out, "no_sd.safetensors"), {"fc.weight": np.zeros((2, 2), np.float32)})

    # parts saved alone, as people share them: a VAE without the prefix
    # (vae-ft-mse-840000-ema-pruned.ckpt style), a UNet without it, the
    # text encoder in the older single-file names (no "text_model."), a
    # diffusers VAE with the older attention names, an EMA-only file
    torch.save({"state_dict": {k[len("first_stage_model."):]: torch.from_numpy(np.array(v))
                               for k, v in sd.items() if k.startswith("first_stage_model.")}},
               os.path.join(out, "vae_alone.ckpt"))
    write_st(os.path.join(out, "unet_alone.safetensors"),
             {k[len("model.diffusion_model."):]: v for k, v in sd.items()
              if k.startswith("model.diffusion_model.")})
    T = "cond_stage_model.transformer."
    write_st(os.path.join(out, "clip_old_names.safetensors"),
             {T + k[len(T + "text_model."):]: v for k, v in sd.items() if k.startswith(T)})
    old = {}
    for k, v in vae_to_diffusers(sd).items():
        for a, b in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"),
                     ("to_out.0", "proj_attn")):
            k = k.replace("attentions.0." + a + ".", "attentions.0." + b + ".")
        old[k] = v
    p = copy("diffusers_oldvae")
    os.unlink(os.path.join(p, "vae", "diffusion_pytorch_model.bin"))
    write_st(os.path.join(p, "vae", "diffusion_pytorch_model.fp16.safetensors"), old)
    write_st(os.path.join(out, "ema_only.safetensors"),
             {k: v for k, v in full.items() if k.startswith("model_ema.")})


if __name__ == "__main__":
    main()
