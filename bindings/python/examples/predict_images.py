#!/usr/bin/env python3
"""predict_images: classifies images with a model adapted by adapt_images.py
(or the C `adapt`). The Python twin of the C example `predict`
(examples/predict.c): the same options and the same output.

    predict_images.py --backbone BACKBONE --model MODEL [--classes FILE] [--top K] PATH...

PATH: image files or folders (searched recursively for .png, .jpg, .jpeg,
.webp). Prints one line per image: the path, then the top-K classes with their
probabilities (tab-separated). Files that cannot be decoded are reported by
name on stderr and skipped. BACKBONE must be the one the model was adapted
with; class names come from MODEL.classes unless --classes.
"""

import argparse
import sys

import numpy as np

import image_folder as imf
from image_folder import gtl


def top_k(probs, k):
    """The C tool's partial selection sort, so that ties order the same way."""
    order = list(range(len(probs)))
    for a in range(k):
        for b in range(a + 1, len(order)):
            if probs[order[b]] > probs[order[a]]:
                order[a], order[b] = order[b], order[a]
    return order[:k]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="predict_images.py", description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", metavar="PATH", required=True)
    ap.add_argument("--model", metavar="MODEL", required=True)
    ap.add_argument("--classes", metavar="FILE")
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    a = ap.parse_args(argv)
    if a.top < 1:
        ap.print_usage(sys.stderr)
        return 2
    if a.threads > 0:
        gtl.set_num_threads(a.threads)
    try:
        m = gtl.Model.load(a.model)
    except gtl.GtlError as e:
        print(f"predict: cannot load the model {a.model}: {e.message}", file=sys.stderr)
        return 1
    with m:
        n_cls, fdim = m.num_classes, m.feature_dim
        cpath = a.classes or a.model + ".classes"
        try:
            with open(cpath) as f:
                names = f.read().split("\n")
            names = names[:-1] if names and names[-1] == "" else names
        except OSError as e:
            if a.classes:
                print(f"error: cannot read {cpath}: {e.strerror}", file=sys.stderr)
                return 1
            names = []
        names = names[:n_cls]
        if len(names) != n_cls:
            print(f"warning: {cpath}: {len(names)} class names for {n_cls} classes; numbering "
                  "them", file=sys.stderr)
        names += [f"class{c}" for c in range(len(names), n_cls)]
        try:
            bb = gtl.Backbone.load(a.backbone)
        except gtl.GtlError as e:
            print(f"predict: cannot load the backbone: {e.message}", file=sys.stderr)
            return 1
        with bb:
            if bb.feature_dim != fdim:
                print(f"predict: the model works on {fdim}-dimensional features, the backbone "
                      f"gives {bb.feature_dim}: use the backbone the model was adapted with",
                      file=sys.stderr)
                return 1
            files, _ = imf.collect_files(a.inputs)
            if not files:
                print("predict: no image files found", file=sys.stderr)
                return 1
            feat, ok, _ = imf.embed_files(bb, files)
        k = min(a.top, n_cls)
        for i in np.flatnonzero(ok):
            _, probs = m.predict(feat[i][None])      # one row at a time, as the C tool
            cols = "".join(f"\t{names[c]} {probs[0, c]:.3f}" for c in top_k(probs[0], k))
            print(files[i] + cols)
        print(f"predicted {int(ok.sum())} of {len(files)} images ({len(files) - int(ok.sum())} "
              "skipped)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
