#!/usr/bin/env python3
"""Plots the two latent codes of GTL for two-modality data.

Trains the head on the synthetic demo data of adapt_predict.py (stage B1, the
representation), then projects the latent concept z_c (mu_c) and the fused
disturbance z~_m of every sample to 2-D with PCA and writes a PNG with one
panel each, coloured by modality (marker by class). With a working
representation, z_c groups samples by class across modalities while z_m
separates the modalities.

    python3 plot_latent.py --out latent.png
    python3 plot_latent.py --features f.npy --labels l.npy --modalities m.npy --out latent.png
"""

import argparse
import os
import sys

import numpy as np

try:
    import gtl
except ImportError:     # running from the source tree: the package is one level up
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import gtl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adapt_predict import synth_demo  # noqa: E402


def pca_2d(z):
    """The first two principal components of the rows of z (numpy SVD)."""
    zc = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(zc, full_matrices=False)
    explained = (s[:2] ** 2).sum() / max((s ** 2).sum(), 1e-12)
    return zc @ vt[:2].T, float(explained)


def separation(points, groups):
    """Between-group over total variance of 2-D points: 1 = groups are points, 0 = mixed."""
    total = ((points - points.mean(axis=0)) ** 2).sum()
    between = sum((groups == g).sum() * ((points[groups == g].mean(axis=0) -
                                          points.mean(axis=0)) ** 2).sum()
                  for g in np.unique(groups))
    return float(between / max(total, 1e-12))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="latent.png", help="PNG to write (default latent.png)")
    p.add_argument("--features", help="features .npy (n, F); default: the demo data")
    p.add_argument("--labels", help="labels .npy (with --features)")
    p.add_argument("--modalities", help="modalities .npy (with --features)")
    p.add_argument("--epochs", type=int, default=30, help="B1 epochs (default 30)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if args.features:
        x = np.load(args.features).astype(np.float32)
        y = np.load(args.labels) if args.labels else np.zeros(len(x), np.int64)
        m = np.load(args.modalities) if args.modalities else np.zeros(len(x), np.int32)
    else:
        x, y, m = synth_demo(args.seed)["base"]

    with gtl.Model(feature_dim=x.shape[1], hidden_dim=64, concept_dim=16, disturbance_dim=8,
                   num_domains=8, seed=args.seed) as model, \
            gtl.Dataset(x.shape[1], x, y, m) as ds, gtl.Optimizer(lr=1e-3) as opt:
        model.batch_classes = 8
        model.train_stage(opt, gtl.Stage.B1, ds, args.epochs)
        z_c = model.latent(x, gtl.Latent.CONCEPT)
        z_m = model.latent(x, gtl.Latent.DISTURBANCE)

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    markers = "o^sDvP*Xh<>"
    colours = plt.get_cmap("tab10")
    for ax, z, title in ((axes[0], z_c, "latent concept $z_c$"),
                         (axes[1], z_m, "disturbance $\\tilde z_m$")):
        pts, expl = pca_2d(z)
        for mod in np.unique(m):
            name = gtl.Modality(mod).name if mod in gtl.Modality._value2member_map_ else str(mod)
            for i, cls in enumerate(np.unique(y)):
                sel = (m == mod) & (y == cls)
                ax.scatter(pts[sel, 0], pts[sel, 1], s=14, alpha=0.75,
                           color=colours(int(mod) % 10), marker=markers[i % len(markers)],
                           label=name if i == 0 else None)
        ax.set_title(f"{title}: PCA, {100 * expl:.0f}% of variance\n"
                     f"separation by class {separation(pts, y):.2f}, "
                     f"by modality {separation(pts, m):.2f}")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.legend(title="modality (marker = class)", fontsize=8)
    fig.suptitle(f"GTL latent codes after stage B1 ({len(x)} samples, libgtl {gtl.version()})")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
