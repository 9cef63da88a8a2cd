#!/usr/bin/python3
"""Writes test/data/preprocess_ref.h: reference outputs of CLIP's image transform.

CLIP (openai/CLIP, clip.py `_transform`) preprocesses with torchvision on PIL images:
    Compose([Resize(n_px, interpolation=BICUBIC), CenterCrop(n_px),
             _convert_image_to_rgb, ToTensor(), Normalize(mean, std)])
This script builds a few deterministic images with the same integer generator as
test/io/test_image.c (gradients, a checkerboard for hard edges, and splitmix64
noise), runs that transform, and records for each case:
  - crc32 of the uint8 image after Resize + CenterCrop (HWC, RGB): the C resampler
    must give these exact bytes;
  - per-channel sum and sum of squares of the normalised (3, S, S) tensor;
  - 128 values of the tensor at seeded positions.
Float cases use PIL mode "F" per channel (Resize + CenterCrop), then
(x - mean) / std in float32, which is what gtl__image_preprocess_f32 implements.

Run with Debian's interpreter (python3-torch, python3-torchvision, python3-pil):
    /usr/bin/python3 test/io/gen_preprocess_ref.py
"""
import os
import zlib

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
N_SAMPLES = 128
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)

# name, h, w, channels, seed, kind ("u8" or "f32"), size, mean, std
CASES = [
    ("portrait_53x37", 53, 37, 3, 1, "u8", 224, CLIP_MEAN, CLIP_STD),
    ("landscape_200x300", 200, 300, 3, 2, "u8", 224, CLIP_MEAN, CLIP_STD),
    ("square_224", 224, 224, 3, 3, "u8", 224, CLIP_MEAN, CLIP_STD),
    ("up_64", 64, 64, 3, 4, "u8", 224, CLIP_MEAN, CLIP_STD),
    ("down_479x640", 479, 640, 3, 5, "u8", 224, CLIP_MEAN, CLIP_STD),  # crop 37.5 -> 38
    ("down_333x501", 333, 501, 3, 6, "u8", 224, CLIP_MEAN, CLIP_STD),  # crop 56.5 -> 56
    ("gray_400x300", 400, 300, 1, 7, "u8", 224, CLIP_MEAN, CLIP_STD),
    ("rgba_90x120", 90, 120, 4, 8, "u8", 224, CLIP_MEAN, CLIP_STD),
    ("tiny_2x3", 2, 3, 3, 9, "u8", 224, CLIP_MEAN, CLIP_STD),
    ("thin_10x400", 10, 400, 3, 10, "u8", 224, CLIP_MEAN, CLIP_STD),
    ("custom_333x501_s96", 333, 501, 3, 11, "u8", 96, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0)),
    ("float_150x97", 150, 97, 3, 12, "f32", 224, CLIP_MEAN, CLIP_STD),
    ("float_300x410", 300, 410, 3, 13, "f32", 224, CLIP_MEAN, CLIP_STD),
]


def splitmix64(z):
    z = (z + np.uint64(0x9E3779B97F4A7C15)) & M64
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & M64
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & M64
    return z ^ (z >> np.uint64(31))


def gen_u8(h, w, c, seed):
    """(h, w, c) uint8; must match gen_image() in test_image.c."""
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    y = y.astype(np.int64)
    x = x.astype(np.int64)
    ch = ch.astype(np.int64)
    base = np.where(ch == 0, x * 256 // w,
                    np.where(ch == 1, y * 256 // h, (x + y) * 128 // (w + h)))
    base = np.where(ch == 3, 40 + (x * 200) // w, base)  # alpha ramp, from 40 to 239
    base = base + np.where(((x // 7) + (y // 5)) % 2 == 1, 60, 0) * (ch != 3)
    idx = ((y * w + x) * c + ch).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = splitmix64((np.uint64(seed) * np.uint64(1000003) + idx) & M64)
    noise = (z % np.uint64(61)).astype(np.int64) - 30
    noise = np.where(ch == 3, noise // 4, noise)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def over_white(rgba):
    """RGBA uint8 to RGB on white, the integer rule of gtl__image_over_white."""
    v = rgba[..., :3].astype(np.uint32)
    a = rgba[..., 3:4].astype(np.uint32)
    return ((v * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def clip_u8(arr, size, mean, std):
    if arr.shape[2] == 4:
        img = Image.fromarray(over_white(arr), "RGB")
    elif arr.shape[2] == 1:
        img = Image.fromarray(arr[:, :, 0], "L")
    else:
        img = Image.fromarray(arr, "RGB")
    resize_crop = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
                             T.CenterCrop(size), lambda im: im.convert("RGB")])
    small = resize_crop(img)
    crc = zlib.crc32(np.asarray(small, dtype=np.uint8).tobytes())
    t = T.Normalize(mean, std)(T.ToTensor()(small))
    return t, crc


def clip_f32(arr_u8, size, mean, std):
    f = arr_u8.astype(np.float32) / np.float32(255.0)
    planes = []
    for ch in range(3):
        im = Image.fromarray(np.ascontiguousarray(f[:, :, ch]), "F")
        im = TF.resize(im, size, interpolation=T.InterpolationMode.BICUBIC)
        im = TF.center_crop(im, size)
        planes.append(np.asarray(im, dtype=np.float32))
    t = torch.from_numpy(np.stack(planes))
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (t - m) / s, 0


def cfloat(v):
    """A C float literal that round-trips a float32 value."""
    t = f"{float(v):.9g}"
    if "." not in t and "e" not in t and "n" not in t:
        t += ".0"
    return t + "f"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_path = os.path.join(here, "..", "data", "preprocess_ref.h")
    lines = [
        "/* Generated by test/io/gen_preprocess_ref.py from PIL + torchvision; do not edit.",
        f" * torch {torch.__version__}, PIL {Image.__version__}. */",
        "#ifndef GTL_TEST_PREPROCESS_REF_H",
        "#define GTL_TEST_PREPROCESS_REF_H",
        "#include <stdint.h>",
        "",
        "typedef struct prep_ref {",
        "    const char *name;",
        "    int h, w, c;",
        "    uint64_t seed;",
        "    int is_float;",
        "    int size;",
        "    float mean[3], std[3];",
        "    uint32_t crc;          /* crc32 of the uint8 resize+crop, HWC RGB; 0 for float */",
        "    double sum[3], sumsq[3]; /* per channel, over the (3, S, S) tensor */",
        "    int n_samples;",
        "    const int32_t *idx;    /* flat index into (3, S, S) */",
        "    const float *val;",
        "} prep_ref;",
        "",
    ]
    entries = []
    for ci, (name, h, w, c, seed, kind, size, mean, std) in enumerate(CASES):
        arr = gen_u8(h, w, c, seed)
        if kind == "u8":
            t, crc = clip_u8(arr, size, mean, std)
        else:
            t, crc = clip_f32(arr, size, mean, std)
        t = t.numpy().astype(np.float32)
        assert t.shape == (3, size, size), t.shape
        flat = t.reshape(-1)
        rng = np.random.default_rng(1000 + ci)
        idx = np.sort(rng.choice(flat.size, N_SAMPLES, replace=False)).astype(np.int32)
        sums = [float(np.sum(t[k], dtype=np.float64)) for k in range(3)]
        sumsq = [float(np.sum(t[k].astype(np.float64) ** 2)) for k in range(3)]
        lines.append(f"static const int32_t ref_idx_{ci}[{N_SAMPLES}] = {{")
        for i in range(0, N_SAMPLES, 12):
            lines.append("    " + ", ".join(str(v) for v in idx[i:i + 12]) + ",")
        lines.append("};")
        lines.append(f"static const float ref_val_{ci}[{N_SAMPLES}] = {{")
        vals = [cfloat(flat[i]) for i in idx]
        for i in range(0, N_SAMPLES, 6):
            lines.append("    " + ", ".join(vals[i:i + 6]) + ",")
        lines.append("};")
        fl = lambda xs: "{" + ", ".join(cfloat(np.float32(v)) for v in xs) + "}"
        dl = lambda xs: "{" + ", ".join(f"{v:.17g}" for v in xs) + "}"
        entries.append(
            f'    {{"{name}", {h}, {w}, {c}, {seed}u, {int(kind == "f32")}, {size}, '
            f"{fl(mean)}, {fl(std)}, {crc}u, {dl(sums)}, {dl(sumsq)}, {N_SAMPLES}, "
            f"ref_idx_{ci}, ref_val_{ci}}},")
    lines.append("")
    lines.append("static const prep_ref PREP_REFS[] = {")
    lines.extend(entries)
    lines.append("};")
    lines.append("#define N_PREP_REFS ((int)(sizeof(PREP_REFS) / sizeof(PREP_REFS[0])))")
    lines.append("")
    lines.append("#endif /* GTL_TEST_PREPROCESS_REF_H */")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {os.path.normpath(out_path)}: {len(CASES)} cases")


if __name__ == "__main__":
    main()
