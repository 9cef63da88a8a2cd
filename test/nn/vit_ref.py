#!/usr/bin/python3
"""Reference ViT for libgtl's parity tests: OpenAI CLIP's VisionTransformer.

The classes follow the structure of CLIP's public model code (clip/model.py:
LayerNorm, QuickGELU, ResidualAttentionBlock with nn.MultiheadAttention,
Transformer, VisionTransformer), so the parameter names are CLIP's. Weights are
random (seeded): PyTorch's default initialisation, CLIP's W^-1/2 normals for
the embeddings and proj, then every LayerNorm and bias perturbed so a test
notices when one is ignored.

Writes one safetensors file (F32; written here with numpy, no safetensors
package needed) holding every parameter under its CLIP name, "input"
(B, 3, S, S) and "feature" (B, W + D) = [ln_post(CLS) ; ln_post(CLS) @ proj],
with __metadata__ "config" = "S,P,W,layers,heads,R,D,act" (act 3 = QuickGELU,
2 = GELU, libgtl's gtl__act values).

Run with Debian's /usr/bin/python3 (torch 1.13). Usage:
    vit_ref.py --preset small|tiny|B16|B32 --batch B --seed N --out FILE [--act quick_gelu|gelu]
"""
import argparse
import json
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

PRESETS = {
    # image, patch, width, layers, heads, mlp_ratio, out_dim
    "B16": (224, 16, 768, 12, 12, 4, 512),
    "B32": (224, 32, 768, 12, 12, 4, 512),
    "small": (32, 8, 64, 3, 4, 4, 32),
    "tiny": (8, 4, 8, 2, 2, 4, 6),
}


class LayerNorm(nn.LayerNorm):
    """Subclass torch's LayerNorm to handle fp16 (as CLIP does)."""

    def forward(self, x):
        orig_type = x.dtype
        ret = super().forward(x.type(torch.float32))
        return ret.type(orig_type)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, mlp_ratio=4, act=QuickGELU, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d_model, d_model * mlp_ratio)),
            ("gelu", act()),
            ("c_proj", nn.Linear(d_model * mlp_ratio, d_model)),
        ]))
        self.ln_2 = LayerNorm(d_model)
        self.attn_mask = attn_mask

    def attention(self, x):
        return self.attn(x, x, x, need_weights=False, attn_mask=self.attn_mask)[0]

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, mlp_ratio=4, act=QuickGELU):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(
            *[ResidualAttentionBlock(width, heads, mlp_ratio, act) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim,
                 mlp_ratio=4, act=QuickGELU):
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=width, kernel_size=patch_size,
                               stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, mlp_ratio, act)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def features(self, x):
        """[ln_post(CLS) ; ln_post(CLS) @ proj], libgtl's backbone feature."""
        x = self.conv1(x)  # shape = [*, width, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1)  # shape = [*, width, grid ** 2]
        x = x.permute(0, 2, 1)  # shape = [*, grid ** 2, width]
        x = torch.cat([self.class_embedding.to(x.dtype) + torch.zeros(
            x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device), x], dim=1)
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x)
        x = x.permute(1, 0, 2)  # LND -> NLD
        cls = self.ln_post(x[:, 0, :])
        return torch.cat([cls, cls @ self.proj], dim=1)

    def forward(self, x):
        return self.features(x)[:, self.proj.shape[0]:]


def build(preset, act_name="quick_gelu", seed=0):
    s, p, w, layers, heads, r, d = PRESETS[preset]
    act = QuickGELU if act_name == "quick_gelu" else nn.GELU
    torch.manual_seed(seed)
    model = VisionTransformer(s, p, w, layers, heads, d, r, act)
    with torch.no_grad():
        for name, t in model.named_parameters():
            if "ln_" in name or name.endswith("bias"):
                t.add_(0.2 * (torch.rand_like(t) - 0.5))
    model.eval()
    cfg = (s, p, w, layers, heads, r, d, 3 if act_name == "quick_gelu" else 2)
    return model, cfg


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, array); written as F32 in list order."""
    header = {"__metadata__": metadata}
    arrays = []
    off = 0
    for name, arr in tensors:
        a = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        arrays.append(a)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for a in arrays:
            f.write(a.tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--act", default="quick_gelu", choices=["quick_gelu", "gelu"])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    torch.set_num_threads(2)
    model, cfg = build(args.preset, args.act, args.seed)
    g = torch.Generator().manual_seed(args.seed + 1000)
    x = torch.randn(args.batch, 3, cfg[0], cfg[0], generator=g)
    with torch.no_grad():
        feat = model.features(x)
    tensors = [(name, t.detach().numpy()) for name, t in model.state_dict().items()]
    tensors.append(("input", x.numpy()))
    tensors.append(("feature", feat.numpy()))
    write_safetensors(args.out, tensors, {"config": ",".join(str(v) for v in cfg)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
