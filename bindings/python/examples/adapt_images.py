#!/usr/bin/env python3
"""adapt_images: a folder of your own labelled images -> a GTL model adapted to
their classes. The Python twin of the C example `adapt` (examples/adapt.c):
the same options, the same output, the same model for the same inputs.

    adapt_images.py --backbone BACKBONE [--model HEAD] --out MODEL IMAGES_DIR
    adapt_images.py --backbone BACKBONE [--model HEAD] --out MODEL --manifest LIST.csv
    adapt_images.py --make-demo DIR      (writes a small test folder)

IMAGES_DIR holds one folder per class, the images directly in it (RGB) or in
modality folders: IMAGES_DIR/<class>/{rgb,sketch,infrared,depth}/<file>. PNG,
JPEG and WebP; gray (e.g. infrared) images are fine. Files that cannot be
decoded are reported by name and skipped. The manifest is a CSV with the
columns path, class and optionally modality (paths relative to the CSV).

BACKBONE is a libgtl backbone file or CLIP weights (safetensors). HEAD is a
pretrained GTL head for that backbone's features (after stages B1 and B2);
without it a fresh, untrained head is adapted, which works far less well.
MODEL is a libgtl model file; MODEL.classes lists the class names in label
order. Every image also gets --views augmented views (default 4) as extra
support samples.
"""

import argparse
import sys
import time

import numpy as np

import image_folder as imf
from image_folder import gtl


def parse(argv):
    ap = argparse.ArgumentParser(prog="adapt_images.py", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make-demo", metavar="DIR", help="write the demo folder and exit")
    ap.add_argument("--backbone", metavar="PATH")
    ap.add_argument("--model", metavar="HEAD", help="a pretrained GTL head (B1 + B2)")
    ap.add_argument("--out", metavar="MODEL")
    ap.add_argument("--manifest", metavar="CSV")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--n1-epochs", type=int, default=-1)
    ap.add_argument("--n2-epochs", type=int, default=-1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("images_dir", nargs="?")
    a = ap.parse_args(argv)
    if a.make_demo:
        return a
    if not a.backbone or not a.out or not (a.images_dir or a.manifest) or not 0 <= a.views <= 64:
        ap.print_usage(sys.stderr)
        sys.exit(2)
    return a


class Progress:
    """One line per stage (the C tool draws a bar on a terminal)."""

    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self, stage, step, n_steps, stats):
        if step == n_steps:
            name = "adapt N1" if stage == gtl.Stage.N1 else "adapt N2"
            extra = (f"loss {stats['loss']:.4f}" if stage == gtl.Stage.N1 else
                     f"ce {stats['ce']:.3f} acc {stats['accuracy']:.2f}")
            print(f"{name}: {n_steps} steps, {extra} ({time.monotonic() - self.t0:.1f} s)",
                  file=sys.stderr)
        return False


def main(argv=None):
    a = parse(argv)
    if a.make_demo:
        imf.make_demo(a.make_demo)
        print(f"adapt_images: demo folder {a.make_demo} (3 classes x rgb/sketch/infrared x 2 "
              "images, 1 corrupt PNG, 1 600x2 image, manifest.csv, query/, backbone.gtlbb)")
        return 0
    if a.threads > 0:
        gtl.set_num_threads(a.threads)
    items = imf.scan_manifest(a.manifest) if a.manifest else imf.scan_folder(a.images_dir)
    try:
        bb = gtl.Backbone.load(a.backbone)
    except gtl.GtlError as e:
        print(f"adapt: cannot load the backbone: {e.message}", file=sys.stderr)
        return 1
    with bb:
        dim = bb.feature_dim
        feat, ok, views = imf.embed_files(bb, items.paths, items.modalities, a.views)
    n_ok = int(ok.sum())
    if n_ok < 1:
        print("adapt: no usable image", file=sys.stderr)
        return 1

    # Rows in file order: an image, then its views, all with the image's pair id.
    rows, labels, mods, pairs = [], [], [], []
    for i in np.flatnonzero(ok):
        for x in [feat[i]] + list(views[i]):
            rows.append(x), labels.append(items.labels[i])
            mods.append(items.modalities[i]), pairs.append(i)
    per_class = np.bincount(np.asarray(items.labels)[ok], minlength=len(items.classes))
    with gtl.Dataset(dim) as support:
        for k in range(len(rows)):      # one row at a time, as the C tool adds them
            support.add(rows[k][None], labels[k:k + 1], mods[k:k + 1], pairs[k:k + 1])
        mp = support.remap_labels()
        for c, name in enumerate(items.classes):
            if not per_class[c]:
                print(f"warning: class {name} has no usable image: dropped", file=sys.stderr)
        names = [items.classes[old] for old in mp]

        if a.model:
            try:
                m = gtl.Model.load(a.model)
            except gtl.GtlError as e:
                print(f"adapt: cannot load the head {a.model}: {e.message}", file=sys.stderr)
                return 1
            if m.feature_dim != dim:
                print(f"adapt: the head {a.model} works on {m.feature_dim}-dimensional "
                      f"features, the backbone {a.backbone} gives {dim}: use the head trained "
                      "on this backbone", file=sys.stderr)
                return 1
        else:
            print("warning: no pretrained head (--model): adapting a fresh, untrained GTL "
                  "head; gtl-demo's demo-out/cache/head-*.gtl works much better", file=sys.stderr)
            m = gtl.Model(feature_dim=dim)
        with m:
            if a.n1_epochs >= 0:
                m.n1_epochs = a.n1_epochs
            if a.n2_epochs >= 0:
                m.n2_epochs = a.n2_epochs
            t0 = time.monotonic()
            try:
                m.adapt(support, progress=Progress())
            except gtl.GtlError as e:
                print(f"adapt: {e}", file=sys.stderr)
                return 1
            try:
                m.save(a.out)
            except gtl.GtlError as e:
                print(f"adapt: cannot save {a.out}: {e.message}", file=sys.stderr)
                return 1
        cpath = a.out + ".classes"
        with open(cpath, "w") as f:
            f.write("".join(n + "\n" for n in names))
        print(f"adapted {len(names)} classes from {n_ok} images ({len(items.paths) - n_ok} "
              f"skipped, {items.n_ignored} other files ignored; {len(support)} support rows "
              f"with {a.views} views each) in {time.monotonic() - t0:.1f} s\n"
              f"wrote {a.out} and {cpath}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
