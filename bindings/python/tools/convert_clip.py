#!/usr/bin/python3
"""Convert an OpenAI CLIP or OpenCLIP vision tower to a file libgtl loads.

Reads a PyTorch checkpoint of a CLIP ViT image encoder and writes its vision
tower as safetensors under OpenAI CLIP's parameter names behind "visual."
(``visual.conv1.weight``, ``visual.transformer.resblocks.0.attn.in_proj_weight``,
..., ``visual.proj``), which ``gtl_backbone_load()`` (and ``gtl.Backbone.load``)
read directly. Accepted inputs:

* OpenAI CLIP releases (``ViT-B-16.pt``): TorchScript archives, loaded with
  ``torch.jit.load``; their fp16 weights are widened to fp32;
* plain state dicts saved with ``torch.save`` (OpenAI names, as
  ``clip.load(..., jit=False)`` gives them, or OpenCLIP ``visual.*`` names),
  optionally wrapped in ``{"state_dict": ...}`` and/or prefixed with
  ``module.`` as OpenCLIP's training checkpoints are;
* a bare visual state dict (``conv1.weight`` at the top level).

Hugging Face ``CLIPVisionModelWithProjection`` safetensors need no conversion:
libgtl reads them as they are.

The vision tower must be CLIP's plain ViT: names outside the list in
docs/backbone.md (the ResNet towers of RN50 & co., OpenCLIP's layer scale
``ls_1``/``ls_2``, attentional pooling) are refused rather than dropped.

The head count is not stored in the weights: it is 16 for widths 1280, 1408
and 1664 (OpenCLIP's ViT-H/14, g/14, bigG/14) and width / 64 otherwise (every
other released CLIP ViT), unless --heads says otherwise. The MLP
activation is QuickGELU for OpenAI's models and OpenCLIP's "-quickgelu"
ones; pass --act gelu for OpenCLIP models trained with nn.GELU (e.g. the
LAION ViT-B-32). Both are written to the file's metadata ("heads",
"hidden_act"), where libgtl reads them.

Runs with Debian's /usr/bin/python3 and python3-torch; no network, no pip.

Usage:
    convert_clip.py INPUT.pt OUTPUT.safetensors [--heads N] [--act quick_gelu|gelu]
                    [--dtype f32|f16]
"""
import argparse
import json
import os
import re
import struct
import sys

import numpy as np
import torch

# The vision tower's parameter names (after "visual."), as regular expressions.
KNOWN = [
    r"conv1\.weight", r"class_embedding", r"positional_embedding", r"ln_pre\.(weight|bias)",
    r"transformer\.resblocks\.\d+\.(ln_1|ln_2)\.(weight|bias)",
    r"transformer\.resblocks\.\d+\.attn\.in_proj_(weight|bias)",
    r"transformer\.resblocks\.\d+\.attn\.out_proj\.(weight|bias)",
    r"transformer\.resblocks\.\d+\.mlp\.(c_fc|c_proj)\.(weight|bias)",
    r"ln_post\.(weight|bias)", r"proj",
]
KNOWN_RE = re.compile("^(" + "|".join(KNOWN) + ")$")

# Widths of OpenCLIP's ViT-H/14, ViT-g/14 and ViT-bigG/14, whose 16 heads are
# 80, 88 and 104 wide; every other released CLIP ViT has 64-wide heads.
OPENCLIP_16_HEADS = {1280, 1408, 1664}


class ConvertError(Exception):
    pass


def load_state_dict(path):
    """The checkpoint's tensors as {name: tensor}, from TorchScript or torch.save."""
    try:
        return dict(torch.jit.load(path, map_location="cpu").state_dict())
    except (RuntimeError, ValueError):
        pass
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: not a state dict or TorchScript archive "
                           f"(found {type(obj).__name__})")
    out = {}
    for k, v in obj.items():
        if not torch.is_tensor(v):
            continue
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def visual_tower(sd, path):
    """{CLIP vision name: tensor}: the "visual." entries, or a bare tower."""
    if any(k.startswith("visual.") for k in sd):
        vis = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    elif "conv1.weight" in sd:
        vis = dict(sd)
    else:
        raise ConvertError(f"{path}: no vision tower (no visual.* or conv1.weight entries)")
    if "conv1.weight" not in vis:
        raise ConvertError(f"{path}: the vision tower has no conv1.weight: only ViT towers are "
                           f"supported (not the ResNet ones)")
    unknown = sorted(k for k in vis if not KNOWN_RE.match(k))
    if unknown:
        raise ConvertError(f"{path}: unsupported vision tower entries (not CLIP's plain ViT): "
                           + ", ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else ""))
    return vis


def check_shapes(vis, heads):
    """Consistency of the tower's shapes; returns (width, layers, heads)."""
    w = vis["conv1.weight"].shape[0]
    layers = 0
    while f"transformer.resblocks.{layers}.ln_1.weight" in vis:
        layers += 1
    for name in ["class_embedding", "positional_embedding", "ln_pre.weight", "ln_pre.bias",
                 "ln_post.weight", "ln_post.bias", "proj"]:
        if name not in vis:
            raise ConvertError(f"missing {name}")
    if vis["proj"].dim() != 2 or vis["proj"].shape[0] != w:
        raise ConvertError(f"proj has shape {tuple(vis['proj'].shape)}, expected ({w}, D)")
    if heads is None:
        if w in OPENCLIP_16_HEADS:
            heads = 16
        elif w % 64:
            raise ConvertError(f"width {w} is not a multiple of 64: pass --heads")
        else:
            heads = w // 64
    if heads < 1 or w % heads:
        raise ConvertError(f"{heads} heads do not divide the width {w}")
    return w, layers, heads


def write_safetensors(path, tensors, metadata, dtype):
    """tensors: [(name, tensor)], written in order as F32 or F16, atomically."""
    np_dtype, st_dtype = ("<f2", "F16") if dtype == "f16" else ("<f4", "F32")
    header = {"__metadata__": metadata}
    arrays = []
    off = 0
    for name, t in tensors:
        a = np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy(), dtype=np_dtype)
        header[name] = {"dtype": st_dtype, "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        arrays.append(a)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in arrays:
            f.write(a.tobytes())
    os.replace(tmp, path)


def convert(src, dst, heads=None, act="quick_gelu", dtype="f32"):
    vis = visual_tower(load_state_dict(src), src)
    w, layers, heads = check_shapes(vis, heads)
    meta = {"format": "libgtl-clip-visual", "heads": str(heads), "hidden_act": act,
            "source": os.path.basename(src)}
    tensors = [("visual." + k, vis[k]) for k in sorted(vis)]
    write_safetensors(dst, tensors, meta, dtype)
    return w, layers, heads


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", help="OpenAI CLIP .pt (TorchScript or state dict) or OpenCLIP "
                    "checkpoint")
    ap.add_argument("output", help="the .safetensors file to write")
    ap.add_argument("--heads", type=int, default=None, help="attention heads (default width/64; 16 for widths 1280, 1408, 1664)")
    ap.add_argument("--act", choices=["quick_gelu", "gelu"], default="quick_gelu",
                    help="MLP activation (default quick_gelu, OpenAI's)")
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32",
                    help="stored precision (libgtl computes in f32 either way)")
    args = ap.parse_args(argv)
    try:
        w, layers, heads = convert(args.input, args.output, args.heads, args.act, args.dtype)
    except (ConvertError, OSError, RuntimeError) as e:
        print(f"convert_clip: {e}", file=sys.stderr)
        return 1
    print(f"convert_clip: {args.output}: ViT width {w}, {layers} layers, {heads} heads, "
          f"{args.act}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
