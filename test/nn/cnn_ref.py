#!/usr/bin/python3
"""Reference residual CNN for libgtl's parity test (test_cnn_torch.c).

The network is lib/nn/cnn.h's resnet_small written with torch.nn, with the
same parameter names: a CIFAR-style ResNet of torchvision BasicBlocks
(conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU), stem conv3x3-BN-ReLU, stages of
width w * 2^i with stride 2 from stage 1, global average pool.

Weights: torchvision's initialisation (Kaiming-normal fan_out for convs), then
BN weights, biases and running statistics perturbed (seeded) so a test notices
when one is ignored.

Writes one safetensors file (F32, written with numpy) holding:
  every parameter and running statistic under its libgtl name (the state
  before any forward), "input" (B, 3, S, S), "r" (B, F),
  "feat_eval" (B, F): evaluation mode,
  "feat_train" (B, F): training mode (the first `freeze` stages and the stem
      frozen: evaluation-mode BN, no gradient),
  "grad.<name>" for every trainable parameter and "grad.input": gradients of
      sum(feat_train * r),
  "after.<name>" for every running statistic after the training forward;
and __metadata__ "config" = "S,w,stages,blocks,freeze".

Run with Debian's /usr/bin/python3 (torch 1.13). Usage:
    cnn_ref.py --size S --width w --stages n --blocks b --batch B --seed N
               [--freeze k] --out FILE
    cnn_ref.py --seed N --job S,w,stages,blocks,B,freeze,FILE [--job ...]
"""
import argparse
import json
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(cin, cout, 1, stride, 0, bias=False)),
                ("bn", nn.BatchNorm2d(cout)),
            ]))

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        sc = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(h + sc)


class ResNetSmall(nn.Module):
    def __init__(self, width=32, stages=4, blocks=2, stem_stride=1):
        super().__init__()
        self.stem = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(3, width, 3, stem_stride, 1, bias=False)),
            ("bn", nn.BatchNorm2d(width)),
            ("relu", nn.ReLU()),
        ]))
        cin = width
        st = []
        for i in range(stages):
            cout = width << i
            bl = []
            for j in range(blocks):
                bl.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
            st.append(nn.Sequential(*bl))
        self.stages = nn.ModuleList(st)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.stem(x)
        for s in self.stages:
            x = s(x)
        return x.mean(dim=(2, 3))


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


def generate(size, width, stages, blocks, batch, seed, freeze, out, stem_stride=1):
    torch.manual_seed(seed)
    model = ResNetSmall(width, stages, blocks, stem_stride)
    with torch.no_grad():
        for name, t in model.named_parameters():
            if t.dim() == 1:
                t.add_(0.4 * (torch.rand_like(t) - 0.5))
        for name, t in model.named_buffers():
            if name.endswith("running_mean"):
                t.copy_(0.3 * (2 * torch.rand_like(t) - 1))
            elif name.endswith("running_var"):
                t.copy_(0.5 + torch.rand_like(t))
    g = torch.Generator().manual_seed(seed + 1000)
    x = torch.randn(batch, 3, size, size, generator=g)
    f = width << (stages - 1)
    r = torch.randn(batch, f, generator=g)

    state = [(n, t.detach().clone().numpy()) for n, t in model.state_dict().items()
             if not n.endswith("num_batches_tracked")]

    model.eval()
    with torch.no_grad():
        feat_eval = model(x)

    # Training mode; the stem and the first `freeze` stages frozen (eval BN).
    model.train()
    frozen = []
    if freeze >= 1:
        frozen.append(model.stem)
        frozen.extend(model.stages[i] for i in range(freeze))
    for mod in frozen:
        mod.eval()
        for p in mod.parameters():
            p.requires_grad_(False)
    xg = x.clone().requires_grad_(True)
    feat_train = model(xg)
    (feat_train * r).sum().backward()

    tensors = list(state)
    tensors += [("input", x.numpy()), ("r", r.numpy()), ("feat_eval", feat_eval.numpy()),
                ("feat_train", feat_train.detach().numpy()), ("grad.input", xg.grad.numpy())]
    for n, p in model.named_parameters():
        if p.requires_grad:
            tensors.append(("grad." + n, p.grad.numpy()))
    for n, t in model.named_buffers():
        if not n.endswith("num_batches_tracked"):
            tensors.append(("after." + n, t.numpy()))
    cfg = (size, width, stages, blocks, freeze)
    write_safetensors(out, tensors, {"config": ",".join(str(v) for v in cfg)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--stages", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--freeze", type=int, default=0)
    ap.add_argument("--stem-stride", type=int, default=1, help="stride of the stem conv (all jobs)")
    ap.add_argument("--out", help="output file for the single config above")
    ap.add_argument("--job", action="append", default=[],
                    help="S,w,stages,blocks,B,freeze,FILE: one more file (repeatable; one "
                         "torch start-up for all)")
    a = ap.parse_args()

    torch.set_num_threads(1)  # no OpenMP spinning on a shared machine
    if a.out:
        generate(a.size, a.width, a.stages, a.blocks, a.batch, a.seed, a.freeze, a.out,
                 a.stem_stride)
    for job in a.job:
        v = job.split(",", 6)
        size, width, stages, blocks, batch, freeze = (int(t) for t in v[:6])
        generate(size, width, stages, blocks, batch, a.seed, freeze, v[6], a.stem_stride)
    return 0


if __name__ == "__main__":
    sys.exit(main())
