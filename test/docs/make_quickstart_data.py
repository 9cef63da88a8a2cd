#!/usr/bin/env python3
"""Writes base.csv, support.csv and query.csv (label,f1,...,f64 per line) into
the given folder: synthetic class-separable "backbone features" for trying
docs/quickstart.md. Base: 8 classes x 24 samples; novel task: 5 classes, 3
support and 10 query samples each (labels 0..4 in both files)."""
import os
import sys

import numpy as np


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    rng = np.random.default_rng(7)
    f = 64
    basis = rng.standard_normal((16, f)) / 4.0

    def blobs(n_classes, per_class):
        centres = rng.standard_normal((n_classes, 16)) * 2.0
        y = np.repeat(np.arange(n_classes), per_class)
        return (centres[y] + 0.4 * rng.standard_normal((len(y), 16))) @ basis, y

    def write(name, x, y):
        with open(os.path.join(out, name), "w") as fh:
            for xi, yi in zip(x, y):
                fh.write(str(int(yi)) + "," + ",".join("%.6g" % v for v in xi) + "\n")

    write("base.csv", *blobs(8, 24))
    x, y = blobs(5, 13)
    sup = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(5)])
    qry = np.setdiff1d(np.arange(len(y)), sup)
    write("support.csv", x[sup], y[sup])
    write("query.csv", x[qry], y[qry])
    print("wrote base.csv (192 rows), support.csv (15), query.csv (50) in " + out)


if __name__ == "__main__":
    main()
