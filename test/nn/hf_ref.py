#!/usr/bin/python3
"""Reference CLIP vision tower in Hugging Face's layout, for test_backbone_hf.

transformers is not installed (and there is no network), so the modules are
written here after the public layout of transformers' models/clip/
modeling_clip.py: CLIPVisionEmbeddings (class_embedding, patch_embedding
Conv2d without bias, position_embedding nn.Embedding), CLIPAttention
(separate q/k/v/out projections, q scaled by head_dim^-0.5, bmm attention),
CLIPMLP (fc1, activation, fc2), CLIPEncoderLayer (layer_norm1, self_attn,
layer_norm2, mlp; pre-norm residuals), CLIPEncoder (layers),
CLIPVisionTransformer (embeddings, pre_layrnorm - HF's spelling -, encoder,
post_layernorm on the CLS token) and CLIPVisionModelWithProjection
(vision_model + visual_projection, a bias-free nn.Linear). Its state_dict
therefore has exactly HF's tensor names.

Weights are random (seeded); LayerNorms and biases are perturbed so that a
loader ignoring one of them fails. For each --case, writes into
--dir/<preset>_<act>/:
  hf.safetensors       HF names (plus an I64 "vision_model.embeddings.position_ids",
                       as older transformers versions saved it); metadata
                       num_attention_heads / hidden_act with the flag "meta"
  openai.pt            the same weights as an OpenAI-named CLIP state dict
                       (visual.* plus a few text-tower entries the converter
                       must ignore), converted by convert_clip.py into
  openai.safetensors
  openai_jit.safetensors  (flag "jit") the same through a traced TorchScript
                       archive, as OpenAI's releases are, and
  openclip.safetensors   through an OpenCLIP training checkpoint
                       ({"state_dict": {"module.visual.*": ...}})
  ref.safetensors      "input" (B, 3, S, S) and "feature" (B, W + D) =
                       [post_layernorm(CLS) ; visual_projection(...)]

The converter runs in this process, or with the flag "cli" as a command.
One process for all cases: importing torch costs seconds.

Usage: hf_ref.py --dir DIR --converter PATH --case PRESET:ACT:BATCH[:FLAGS] ...
       PRESET small|B16, ACT quick_gelu|gelu, FLAGS a comma list of meta, jit, cli
"""
import argparse
import contextlib
import importlib.util
import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
from torch import nn

PRESETS = {
    # image, patch, width, layers, heads, mlp_ratio, projection_dim
    "B16": (224, 16, 768, 12, 12, 4, 512),
    "small": (32, 8, 64, 3, 4, 4, 32),
}


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class CLIPVisionEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_dim = c["hidden_size"]
        self.class_embedding = nn.Parameter(torch.randn(self.embed_dim))
        self.patch_embedding = nn.Conv2d(3, self.embed_dim, kernel_size=c["patch_size"],
                                         stride=c["patch_size"], bias=False)
        self.num_patches = (c["image_size"] // c["patch_size"]) ** 2
        self.num_positions = self.num_patches + 1
        self.position_embedding = nn.Embedding(self.num_positions, self.embed_dim)
        self.register_buffer("position_ids", torch.arange(self.num_positions).expand((1, -1)),
                             persistent=False)

    def forward(self, pixel_values):
        batch_size = pixel_values.shape[0]
        patch_embeds = self.patch_embedding(pixel_values)  # shape = [*, width, grid, grid]
        patch_embeds = patch_embeds.flatten(2).transpose(1, 2)
        class_embeds = self.class_embedding.expand(batch_size, 1, -1)
        embeddings = torch.cat([class_embeds, patch_embeds], dim=1)
        return embeddings + self.position_embedding(self.position_ids)


class CLIPAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_dim = c["hidden_size"]
        self.num_heads = c["num_attention_heads"]
        self.head_dim = self.embed_dim // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def _shape(self, tensor, seq_len, bsz):
        return tensor.view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, hidden_states):
        bsz, tgt_len, embed_dim = hidden_states.size()
        query_states = self.q_proj(hidden_states) * self.scale
        key_states = self._shape(self.k_proj(hidden_states), -1, bsz)
        value_states = self._shape(self.v_proj(hidden_states), -1, bsz)
        proj_shape = (bsz * self.num_heads, -1, self.head_dim)
        query_states = self._shape(query_states, tgt_len, bsz).view(*proj_shape)
        key_states = key_states.view(*proj_shape)
        value_states = value_states.view(*proj_shape)
        attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))
        attn_weights = nn.functional.softmax(attn_weights, dim=-1)
        attn_output = torch.bmm(attn_weights, value_states)
        attn_output = attn_output.view(bsz, self.num_heads, tgt_len, self.head_dim)
        attn_output = attn_output.transpose(1, 2).reshape(bsz, tgt_len, embed_dim)
        return self.out_proj(attn_output)


class CLIPMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.activation_fn = QuickGELU() if c["hidden_act"] == "quick_gelu" else nn.GELU()
        self.fc1 = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.fc2 = nn.Linear(c["intermediate_size"], c["hidden_size"])

    def forward(self, hidden_states):
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_dim = c["hidden_size"]
        self.self_attn = CLIPAttention(c)
        self.layer_norm1 = nn.LayerNorm(self.embed_dim, eps=c["layer_norm_eps"])
        self.mlp = CLIPMLP(c)
        self.layer_norm2 = nn.LayerNorm(self.embed_dim, eps=c["layer_norm_eps"])

    def forward(self, hidden_states):
        residual = hidden_states
        hidden_states = self.self_attn(self.layer_norm1(hidden_states))
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.mlp(self.layer_norm2(hidden_states))
        return residual + hidden_states


class CLIPEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, hidden_states):
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states


class CLIPVisionTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        embed_dim = c["hidden_size"]
        self.embeddings = CLIPVisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(embed_dim, eps=c["layer_norm_eps"])
        self.encoder = CLIPEncoder(c)
        self.post_layernorm = nn.LayerNorm(embed_dim, eps=c["layer_norm_eps"])

    def forward(self, pixel_values):
        hidden_states = self.pre_layrnorm(self.embeddings(pixel_values))
        last_hidden_state = self.encoder(hidden_states)
        return self.post_layernorm(last_hidden_state[:, 0, :])


class CLIPVisionModelWithProjection(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.vision_model = CLIPVisionTransformer(c)
        self.visual_projection = nn.Linear(c["hidden_size"], c["projection_dim"], bias=False)

    def forward(self, pixel_values):
        """libgtl's feature: [pooled ; image_embeds]."""
        pooled = self.vision_model(pixel_values)
        return torch.cat([pooled, self.visual_projection(pooled)], dim=1)


def build(preset, act, seed):
    s, p, w, layers, heads, r, d = PRESETS[preset]
    c = {"image_size": s, "patch_size": p, "hidden_size": w, "num_hidden_layers": layers,
         "num_attention_heads": heads, "intermediate_size": r * w, "projection_dim": d,
         "hidden_act": act, "layer_norm_eps": 1e-5}
    torch.manual_seed(seed)
    model = CLIPVisionModelWithProjection(c)
    with torch.no_grad():
        # CLIP-like scales for the embeddings, then perturbed norms and biases.
        model.vision_model.embeddings.class_embedding.normal_(0, w ** -0.5)
        model.vision_model.embeddings.position_embedding.weight.normal_(0, w ** -0.5)
        for name, t in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                t.add_(0.2 * (torch.rand_like(t) - 0.5))
    return model.eval(), c


def openai_state_dict(model, c):
    """The HF weights under OpenAI CLIP's names (visual.*), plus text-tower
    entries a converter must leave out."""
    vm = model.vision_model
    sd = {
        "visual.conv1.weight": vm.embeddings.patch_embedding.weight,
        "visual.class_embedding": vm.embeddings.class_embedding,
        "visual.positional_embedding": vm.embeddings.position_embedding.weight,
        "visual.ln_pre.weight": vm.pre_layrnorm.weight,
        "visual.ln_pre.bias": vm.pre_layrnorm.bias,
        "visual.ln_post.weight": vm.post_layernorm.weight,
        "visual.ln_post.bias": vm.post_layernorm.bias,
        "visual.proj": model.visual_projection.weight.t(),
    }
    for i, layer in enumerate(vm.encoder.layers):
        b = f"visual.transformer.resblocks.{i}."
        a = layer.self_attn
        sd[b + "ln_1.weight"] = layer.layer_norm1.weight
        sd[b + "ln_1.bias"] = layer.layer_norm1.bias
        sd[b + "attn.in_proj_weight"] = torch.cat([a.q_proj.weight, a.k_proj.weight,
                                                   a.v_proj.weight])
        sd[b + "attn.in_proj_bias"] = torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])
        sd[b + "attn.out_proj.weight"] = a.out_proj.weight
        sd[b + "attn.out_proj.bias"] = a.out_proj.bias
        sd[b + "ln_2.weight"] = layer.layer_norm2.weight
        sd[b + "ln_2.bias"] = layer.layer_norm2.bias
        sd[b + "mlp.c_fc.weight"] = layer.mlp.fc1.weight
        sd[b + "mlp.c_fc.bias"] = layer.mlp.fc1.bias
        sd[b + "mlp.c_proj.weight"] = layer.mlp.fc2.weight
        sd[b + "mlp.c_proj.bias"] = layer.mlp.fc2.bias
    # OpenAI's text tower uses unprefixed names that collide with the visual ones.
    sd["positional_embedding"] = torch.zeros(7, 16)
    sd["transformer.resblocks.0.ln_1.weight"] = torch.ones(16)
    sd["logit_scale"] = torch.tensor(4.6)
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


class Wrapper(nn.Module):
    """CLIP's top level: the image tower as the attribute "visual"."""

    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    def forward(self, x):
        return self.visual(x)


def write_safetensors(path, tensors, metadata):
    """tensors: [(name, array)] written in order; dtype from the array (f32 or i64)."""
    header = {"__metadata__": metadata} if metadata else {}
    arrays = []
    off = 0
    for name, arr in tensors:
        if arr.dtype == np.int64:
            a, dt = np.ascontiguousarray(arr, dtype="<i8"), "I64"
        else:
            a, dt = np.ascontiguousarray(arr, dtype="<f4"), "F32"
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        arrays.append(a)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for a in arrays:
            f.write(a.tobytes())


def run_case(spec, top, converter):
    """spec "preset:act:batch[:flag,...]", flags meta (heads and act as
    metadata), jit (TorchScript and OpenCLIP inputs too), cli (the converter
    in its own process); files go to top/<preset>_<act>/."""
    parts = spec.split(":")
    preset, act, batch = parts[0], parts[1], int(parts[2])
    flags = set(parts[3].split(",")) if len(parts) > 3 and parts[3] else set()
    out = os.path.join(top, f"{preset}_{act}")
    os.makedirs(out, exist_ok=True)
    seed = 7
    model, c = build(preset, act, seed)
    g = torch.Generator().manual_seed(seed + 1000)
    x = torch.randn(batch, 3, c["image_size"], c["image_size"], generator=g)
    with torch.no_grad():
        feat = model(x)

    meta = {"format": "pt", "num_attention_heads": str(c["num_attention_heads"]),
            "hidden_act": act} if "meta" in flags else None
    tensors = [(k, v.detach().numpy()) for k, v in model.state_dict().items()]
    n = model.vision_model.embeddings.num_positions
    tensors.append(("vision_model.embeddings.position_ids",
                    np.arange(n, dtype=np.int64).reshape(1, n)))
    write_safetensors(os.path.join(out, "hf.safetensors"), tensors, meta)
    write_safetensors(os.path.join(out, "ref.safetensors"),
                      [("input", x.numpy()), ("feature", feat.numpy())], None)

    sd = openai_state_dict(model, c)
    opts = ["--heads", str(c["num_attention_heads"]), "--act", act]
    spec_ = importlib.util.spec_from_file_location("convert_clip", converter)
    convert_clip = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(convert_clip)

    def conv(src, dst):
        if "cli" in flags:
            subprocess.run([sys.executable, converter, src, dst] + opts, check=True,
                           stdout=subprocess.DEVNULL)
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                if convert_clip.main([src, dst] + opts) != 0:
                    raise SystemExit(f"convert_clip failed on {src}")
        os.unlink(src)

    src = os.path.join(out, "openai.pt")
    torch.save(sd, src)
    conv(src, os.path.join(out, "openai.safetensors"))
    if "jit" in flags:
        # OpenAI's releases are traced TorchScript models: trace OpenAI CLIP's
        # own VisionTransformer (vit_ref.py, the same names) holding these
        # weights, under a "visual" attribute as in CLIP.
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import vit_ref
        a = vit_ref.QuickGELU if act == "quick_gelu" else nn.GELU
        visual = vit_ref.VisionTransformer(c["image_size"], c["patch_size"], c["hidden_size"],
                                           c["num_hidden_layers"], c["num_attention_heads"],
                                           c["projection_dim"],
                                           c["intermediate_size"] // c["hidden_size"], a)
        wrap = Wrapper(visual)
        wrap.load_state_dict({k: v for k, v in sd.items() if k.startswith("visual.")})
        traced = torch.jit.trace(wrap.eval(), x)
        src = os.path.join(out, "openai_jit.pt")
        traced.save(src)
        conv(src, os.path.join(out, "openai_jit.safetensors"))
        # An OpenCLIP training checkpoint: {"state_dict": {"module.visual...": ...}}.
        src = os.path.join(out, "openclip.pt")
        torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()}}, src)
        conv(src, os.path.join(out, "openclip.safetensors"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--converter", required=True)
    ap.add_argument("--case", action="append", required=True,
                    help="preset:act:batch[:meta,jit,cli]")
    args = ap.parse_args()
    torch.set_num_threads(2)
    for spec in args.case:
        run_case(spec, args.dir, args.converter)
    return 0


if __name__ == "__main__":
    sys.exit(main())
