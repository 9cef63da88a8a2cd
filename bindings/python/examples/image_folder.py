"""Labelled image folders and embedding for adapt_images.py / predict_images.py.

The Python twin of examples/common/ex_images.c: the same folder layout, the
same CSV manifest, the same file order, the same augmented views (same seeds)
and the same embedding batches, so that the Python programs give the same
features, hence the same model and the same predictions, as the C ones.
"""

import csv
import math
import os
import struct
import sys
import zlib

import numpy as np

try:
    import gtl
except ImportError:     # running from the source tree: the package is one level up
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import gtl

MODALITY_NAMES = {
    "rgb": gtl.Modality.RGB, "photo": gtl.Modality.RGB, "color": gtl.Modality.RGB,
    "colour": gtl.Modality.RGB, "sketch": gtl.Modality.SKETCH, "drawing": gtl.Modality.SKETCH,
    "lineart": gtl.Modality.SKETCH, "infrared": gtl.Modality.INFRARED,
    "ir": gtl.Modality.INFRARED, "thermal": gtl.Modality.INFRARED, "depth": gtl.Modality.DEPTH,
}
IMAGE_EXTS = {"png", "jpg", "jpeg", "webp"}
MASK64 = 0xFFFFFFFFFFFFFFFF


def modality_from_name(name):
    return int(MODALITY_NAMES[name.lower()]) if name.lower() in MODALITY_NAMES else -1


def modality_name(m):
    return {0: "rgb", 1: "sketch", 2: "infrared", 3: "depth"}.get(int(m), "other")


def is_image_name(name):
    return name.rsplit(".", 1)[-1].lower() in IMAGE_EXTS if "." in name else False


def list_dir(path):
    """Sorted entry names, byte order like the C tools (strcmp)."""
    return sorted(os.listdir(path), key=os.fsencode)


class ItemSet:
    """Images with labels and modalities, and the class names (label order)."""

    def __init__(self):
        self.paths, self.labels, self.modalities, self.classes = [], [], [], []
        self.n_ignored = 0


def scan_folder(root):
    """ROOT/<class>/<image> (RGB) or ROOT/<class>/<modality>/<image>."""
    s = ItemSet()
    try:
        entries = list_dir(root)
    except OSError:
        raise SystemExit(f"error: cannot read the folder {root}")
    for cls in entries:
        cdir = os.path.join(root, cls)
        if not os.path.isdir(cdir):
            s.n_ignored += 1
            continue
        label, before = len(s.classes), len(s.paths)
        for ent in list_dir(cdir):
            p = os.path.join(cdir, ent)
            if os.path.isdir(p):
                mod = modality_from_name(ent)
                if mod < 0:
                    print(f"warning: {p}: unknown modality folder '{ent}' (use rgb, sketch, "
                          "infrared or depth): skipped", file=sys.stderr)
                    continue
                for img in list_dir(p):
                    ip = os.path.join(p, img)
                    if is_image_name(img) and not os.path.isdir(ip):
                        s.paths.append(ip), s.labels.append(label), s.modalities.append(mod)
                    else:
                        s.n_ignored += 1
            elif is_image_name(ent):
                s.paths.append(p), s.labels.append(label), s.modalities.append(0)
            else:
                s.n_ignored += 1
        if len(s.paths) > before:
            s.classes.append(cls)
        else:
            print(f"warning: class folder {cdir} has no images: skipped", file=sys.stderr)
    if not s.classes:
        raise SystemExit(f"error: {root} has no class folders with images (expected "
                         f"{root}/<class>/[<modality>/]<image>)")
    return s


def scan_manifest(path):
    """A CSV with the columns path, class and optionally modality; relative
    paths are relative to the CSV's folder; classes in sorted name order."""
    s = ItemSet()
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise SystemExit(f"error: cannot read {path}: {e.strerror}")
    header, rows = (rows[0], [r for r in rows[1:] if r]) if rows else ([], [])
    if "path" not in header or "class" not in header:
        raise SystemExit(f"error: {path}: the header needs the columns path and class (and "
                         "optionally modality)")
    cp, cc = header.index("path"), header.index("class")
    cm = header.index("modality") if "modality" in header else -1
    cell = lambda r, c: r[c] if 0 <= c < len(r) else ""     # noqa: E731
    s.classes = sorted({cell(r, cc) for r in rows if cell(r, cc)}, key=os.fsencode)
    base = path[:path.rfind("/") + 1]
    for i, r in enumerate(rows):
        p, c = cell(r, cp), cell(r, cc)
        if not p or not c:
            print(f"warning: {path} line {i + 2}: empty path or class: skipped", file=sys.stderr)
            continue
        mod = 0
        if cell(r, cm):
            mod = modality_from_name(cell(r, cm))
            if mod < 0:
                print(f"warning: {path} line {i + 2}: unknown modality '{cell(r, cm)}': skipped",
                      file=sys.stderr)
                continue
        s.paths.append(p if p.startswith("/") else base + p)
        s.labels.append(s.classes.index(c))
        s.modalities.append(mod)
    if not s.paths:
        raise SystemExit(f"error: {path} lists no images")
    return s


def collect_files(inputs):
    """Image files under the given files and folders (folders recursively,
    sorted); explicitly named files are taken whatever their extension.
    Returns (files, n_ignored)."""
    files, ignored = [], 0

    def walk(p, explicit):
        nonlocal ignored
        if os.path.isdir(p):
            try:
                entries = list_dir(p)
            except OSError:
                print(f"warning: cannot read the folder {p}: skipped", file=sys.stderr)
                return
            for e in entries:
                walk(os.path.join(p, e), False)
        elif explicit or is_image_name(p):
            files.append(p)
        else:
            ignored += 1

    for p in inputs:
        walk(p, True)
    return files, ignored


def _mix(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def embed_files(bb, paths, modalities=None, n_views=0, seed=0, batch=16):
    """Embeds image files, and n_views augmented views of each, in batches of
    16 images in file order (a file, then its views), as the C tools do.

    Returns (features (n, F), ok (n,) bool, views (n, n_views, F)). A file that
    cannot be decoded is reported by name on stderr, skipped (zero row) and
    gets no views."""
    size, dim, n = bb.image_size, bb.feature_dim, len(paths)
    feat = np.zeros((n, dim), np.float32)
    views = np.zeros((n, n_views, dim), np.float32)
    ok = np.zeros(n, bool)
    pending, dest = [], []

    def flush():
        if pending:
            out = bb.embed(np.stack(pending))
            for row, (arr, idx) in zip(out, dest):
                arr[idx] = row
            pending.clear(), dest.clear()

    def push(img, arr, idx):
        if len(pending) == batch:
            flush()
        pending.append(img), dest.append((arr, idx))

    for i, p in enumerate(paths):
        try:
            img = gtl.image_load(p, size)
        except gtl.GtlError as e:
            print(f"skipped {p}: {e.message}", file=sys.stderr)
            continue
        ok[i] = True
        push(img, feat, i)
        mod = modalities[i] if modalities is not None else 0
        flags = gtl.Augment.RESIZED_CROP
        if mod == gtl.Modality.SKETCH:
            flags |= gtl.Augment.STROKE
        elif mod == gtl.Modality.RGB:
            flags |= gtl.Augment.COLOR
        for v in range(n_views):
            s = _mix(seed ^ _mix(i * 1024 + v))
            try:
                view, _ = gtl.image_augment(p, flags, s, size)
            except gtl.GtlError:
                view = gtl.image_load(p, size)
            push(view, views, (i, v))
    flush()
    return feat, ok, views


# ---- the demo folder (the same files as `adapt --make-demo`) -------------------

def _png_write(path, w, h, ch, px):
    raw = b"".join(b"\0" + px[y * w * ch:(y + 1) * w * ch] for y in range(h))

    def chunk(tag, data):
        c = tag + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if ch == 1 else 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _draw(s, ch, shape, variant, modality):
    px = bytearray(s * s * ch)
    c, r = s / 2.0 + (variant - 1) * s / 16.0, s * (0.28 + 0.03 * variant)
    col = ((220, 40, 40), (40, 160, 60), (40, 60, 220))
    for y in range(s):
        for x in range(s):
            dx, dy = x - c, y - c
            if shape == 0:
                d = math.sqrt(dx * dx + dy * dy) - r
            elif shape == 1:
                d = max(abs(dx), abs(dy)) - r
            else:
                d = min(max(abs(dx), abs(dy) * 4.0), max(abs(dx) * 4.0, abs(dy))) - r
            o = (y * s + x) * ch
            if modality == gtl.Modality.SKETCH:
                px[o] = px[o + 1] = px[o + 2] = 0 if abs(d) < 1.5 else 255
            elif modality == gtl.Modality.INFRARED:
                px[o] = int(230 - 20 * variant if d < 0 else 30 + 10 * variant)
            else:
                for k in range(3):
                    px[o + k] = col[shape][k] if d < 0 else 200 + 20 * variant - 10 * k
    return bytes(px)


def make_demo(root):
    """3 classes x rgb/sketch/infrared x 2 images, a corrupt PNG, a 600x2 image,
    a text file, manifest.csv, query/ (9 images and a corrupt JPEG) and a
    random-weight backbone.gtlbb."""
    shapes = ("disc", "square", "cross")
    mods = (gtl.Modality.RGB, gtl.Modality.SKETCH, gtl.Modality.INFRARED)
    s = 72
    man = ["path,class,modality"]
    os.makedirs(os.path.join(root, "query"), exist_ok=True)
    for c, shape in enumerate(shapes):
        for m in mods:
            sub = os.path.join(root, "images", shape, modality_name(m))
            os.makedirs(sub, exist_ok=True)
            ch = 1 if m == gtl.Modality.INFRARED else 3
            for v in range(3):
                px = _draw(s, ch, c, v, m)
                if v < 2:
                    _png_write(os.path.join(sub, f"{v}.png"), s, s, ch, px)
                    man.append(f"images/{shape}/{modality_name(m)}/{v}.png,{shape},"
                               f"{modality_name(m)}")
                else:
                    _png_write(os.path.join(root, "query", f"{shape}-{modality_name(m)}.png"),
                               s, s, ch, px)
    with open(os.path.join(root, "images/disc/rgb/corrupt.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nthis is not really a PNG")
    man.append("images/disc/rgb/corrupt.png,disc,rgb")
    _png_write(os.path.join(root, "images/square/rgb/wide-600x2.png"), 600, 2, 3,
               bytes((i * 7) & 0xFF for i in range(3 * 600 * 2)))
    man.append("images/square/rgb/wide-600x2.png,square,rgb")
    with open(os.path.join(root, "images/README.txt"), "w") as f:
        f.write("not an image\n")
    with open(os.path.join(root, "query/corrupt.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff truncated\0")   # 14 bytes, as the C tool writes
    with open(os.path.join(root, "manifest.csv"), "w") as f:
        f.write("\n".join(man) + "\n")
    with gtl.Backbone(gtl.BackbonePreset.RESNET_SMALL) as bb:
        bb.save(os.path.join(root, "backbone.gtlbb"))
