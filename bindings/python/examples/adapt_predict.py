#!/usr/bin/env python3
"""Few-shot adaptation and prediction with libgtl, from Python.

The whole method on backbone features (the twins of the C adapt/predict
examples on images are adapt_images.py and predict_images.py). It works on
feature files: a *set* is a directory
holding ``features.npy`` (n x F float), ``labels.npy`` (n ints) and optionally
``modalities.npy`` (n ints, 0 = RGB, 1 = sketch, ...; all RGB if absent).

Steps: train the GTL head on a base set (stages B1 then B2), take a few-shot
task (either an explicit --support/--query pair of sets, or an N-way K-shot
episode sampled from a --novel set), report the accuracy on the query set
before adaptation (nearest class mean of the latent concept z_c, the only
classifier available before the novel classes are known) and after gtl_adapt
(the adapted classifier, and the class means again).

    # synthetic two-modality data, nothing to prepare
    python3 adapt_predict.py --demo
    # write the demo data as feature files, then run on the files
    python3 adapt_predict.py --demo --save-demo /tmp/gtl-demo
    python3 adapt_predict.py --base /tmp/gtl-demo/base --novel /tmp/gtl-demo/novel
"""

import argparse
import os
import sys
import time

import numpy as np

try:
    import gtl
except ImportError:     # running from the source tree: the package is one level up
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import gtl


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def synth_demo(seed=0, feature_dim=64, n_base=8, n_novel=5, per_class=24, noise=0.35):
    """Synthesises "backbone features" of two modalities (RGB and sketch).

    Every class has a concept vector; each modality renders it through its own
    random linear map plus an offset (so an RGB and a sketch feature of one
    class look different), and each sample adds its own concept jitter and
    feature noise. Base and novel classes share the two modality maps but not
    their concepts. Returns {"base": set, "novel": set}, each set a tuple
    (features float32 (n, F), labels int64, modalities int32).
    """
    rng = np.random.default_rng(seed)
    concept_dim = 12
    maps = [rng.standard_normal((concept_dim, feature_dim)) / np.sqrt(concept_dim)
            for _ in range(2)]
    offsets = [rng.standard_normal(feature_dim) * 0.8 for _ in range(2)]

    def make(n_classes, first_label):
        concepts = rng.standard_normal((n_classes, concept_dim)) * 1.5
        xs, ys, ms = [], [], []
        for c in range(n_classes):
            for m in (gtl.Modality.RGB, gtl.Modality.SKETCH):
                z = concepts[c] + 0.3 * rng.standard_normal((per_class, concept_dim))
                x = np.tanh(z @ maps[m]) + offsets[m]
                x += noise * rng.standard_normal(x.shape)
                xs.append(x)
                ys.append(np.full(per_class, first_label + c))
                ms.append(np.full(per_class, int(m)))
        return (np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64),
                np.concatenate(ms).astype(np.int32))

    return {"base": make(n_base, 0), "novel": make(n_novel, 1000)}


def save_set(directory, data):
    os.makedirs(directory, exist_ok=True)
    for name, arr in zip(("features", "labels", "modalities"), data):
        np.save(os.path.join(directory, name + ".npy"), arr)


def load_set(directory):
    """(features, labels, modalities) of a set directory (see the module docstring)."""
    def path(name):
        return os.path.join(directory, name + ".npy")
    x = np.load(path("features"))
    y = np.load(path("labels"))
    m = np.load(path("modalities")) if os.path.exists(path("modalities")) else \
        np.zeros(len(y), np.int32)
    if x.ndim != 2 or len(y) != len(x) or len(m) != len(x):
        sys.exit(f"{directory}: features must be (n, F) with n labels and n modalities "
                 f"(got {x.shape}, {y.shape}, {m.shape})")
    return x, y, m


# ---------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------

def printer(every):
    """A progress callback that prints one line every `every` steps."""
    def progress(stage, step, n_steps, stats):
        if step % every == 0 or step == n_steps:
            extra = (f"mse {stats['mse']:.3f} kl {stats['kl']:.2f}"
                     if stage in (gtl.Stage.B1, gtl.Stage.N1) else
                     f"ce {stats['ce']:.3f} acc {stats['accuracy']:.2f}")
            print(f"  {stage.name} step {step:4d}/{n_steps}: loss {stats['loss']:.4f} {extra}",
                  flush=True)
    return progress


def make_model(feature_dim, args):
    m = gtl.Model(feature_dim=feature_dim, hidden_dim=args.hidden, concept_dim=args.concept,
                  disturbance_dim=args.disturbance, num_domains=args.domains, seed=args.seed)
    m.batch_classes = 8
    m.batch_samples = 4
    m.n1_epochs = args.n1_epochs
    m.n2_epochs = args.n2_epochs
    return m


def train_base(model, base, args, verbose=True):
    """Stages B1 (representation) and B2 (base classifier) on a base set."""
    x, y, m = base
    with gtl.Dataset(x.shape[1], x, y, m) as ds:
        ds.remap_labels()                                # B2 needs labels 0..C-1
        with gtl.Optimizer(lr=1e-3, weight_decay=1e-4) as opt:
            model.train_stage(opt, gtl.Stage.B1, ds, args.b1_epochs,
                              progress=printer(50) if verbose else None)
        with gtl.Optimizer(lr=1e-3, weight_decay=1e-4) as opt:
            model.train_stage(opt, gtl.Stage.B2, ds, args.b2_epochs,
                              progress=printer(50) if verbose else None)


def prototype_accuracy(model, support, query):
    """Nearest class mean of the latent concept z_c (cosine), on the query set."""
    xs, ys, _ = support
    xq, yq, _ = query
    zs, zq = model.latent(xs), model.latent(xq)
    classes = np.unique(ys)
    protos = np.stack([zs[ys == c].mean(axis=0) for c in classes])
    protos /= np.linalg.norm(protos, axis=1, keepdims=True) + 1e-12
    zq = zq / (np.linalg.norm(zq, axis=1, keepdims=True) + 1e-12)
    pred = classes[np.argmax(zq @ protos.T, axis=1)]
    return float((pred == yq).mean())


def few_shot_task(args, novel):
    """(support, query) sets: explicit files, or an episode sampled from `novel`."""
    if args.support:
        return load_set(args.support), load_set(args.query)
    x, y, m = novel
    with gtl.Dataset(x.shape[1], x, y, m) as ds, gtl.Episode() as ep:
        present = sorted(set(int(v) for v in m))
        ep.sample(ds, args.way, args.shot, args.queries, support_modalities=present,
                  query_modalities=gtl.Modality(args.query_modality), seed=args.seed)
        return ep.support.arrays()[:3], ep.query.arrays()[:3]


def run(args):
    gtl.set_num_threads(args.threads) if args.threads else None
    print(gtl.build_info())
    if args.demo:
        data = synth_demo(args.seed)
        if args.save_demo:
            for name, d in data.items():
                save_set(os.path.join(args.save_demo, name), d)
            print(f"demo feature files written to {args.save_demo}/{{base,novel}}")
        base, novel = data["base"], data["novel"]
    else:
        if not args.base or not (args.novel or (args.support and args.query)):
            sys.exit("give --demo, or --base with --novel or --support and --query")
        base = load_set(args.base)
        novel = load_set(args.novel) if args.novel else None

    t0 = time.time()
    with make_model(base[0].shape[1], args) as model:
        print(f"base: {len(base[1])} samples, {len(np.unique(base[1]))} classes, "
              f"F = {base[0].shape[1]}; training B1 and B2")
        train_base(model, base, args)
        support, query = few_shot_task(args, novel)
        n_way = len(np.unique(support[1]))
        mods = sorted(set(int(v) for v in support[2]))
        print(f"task: {n_way}-way, {len(support[1])} support samples "
              f"(modalities {[gtl.Modality(v).name for v in mods if v < 16]}), "
              f"{len(query[1])} queries")
        before = prototype_accuracy(model, support, query)
        print(f"before adapt: query accuracy {before:.3f} (nearest class mean of z_c)")
        with gtl.Dataset(support[0].shape[1], *support) as sup:
            sup.remap_labels()
            model.adapt(sup, progress=printer(100))
        # query labels in the same 0..N-1 order remap_labels gave the support
        classes = np.unique(support[1])
        yq = np.searchsorted(classes, query[1])
        labels, probs = model.predict(query[0])
        after = float((labels == yq).mean())
        proto_after = prototype_accuracy(model, support, query)
        print(f"after adapt:  query accuracy {after:.3f} (adapted classifier), "
              f"{proto_after:.3f} (nearest class mean of z_c)")
        print(f"mean top-1 probability {probs.max(axis=1).mean():.3f}; "
              f"{time.time() - t0:.1f} s")
    return before, after


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", action="store_true", help="synthesise two-modality demo data")
    p.add_argument("--save-demo", metavar="DIR", help="with --demo: also write the feature files")
    p.add_argument("--base", metavar="DIR", help="base set (features.npy, labels.npy, ...)")
    p.add_argument("--novel", metavar="DIR", help="novel set to sample an episode from")
    p.add_argument("--support", metavar="DIR", help="explicit support set (with --query)")
    p.add_argument("--query", metavar="DIR", help="explicit query set (with --support)")
    p.add_argument("--way", type=int, default=5, help="episode classes (default 5)")
    p.add_argument("--shot", type=int, default=5,
                   help="support samples per class and modality (default 5)")
    p.add_argument("--queries", type=int, default=15, help="queries per class (default 15)")
    p.add_argument("--query-modality", type=int, default=0,
                   help="modality of the queries (default 0 = RGB)")
    p.add_argument("--b1-epochs", type=int, default=30)
    p.add_argument("--b2-epochs", type=int, default=30)
    # The method's default is 60 N1 epochs; on the tiny synthetic support sets
    # of --demo that many overfit the encoder (1-shot: z_c class-mean accuracy
    # 0.72 -> 0.42), so the example uses fewer.
    p.add_argument("--n1-epochs", type=int, default=10)
    p.add_argument("--n2-epochs", type=int, default=60)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--concept", type=int, default=16)
    p.add_argument("--disturbance", type=int, default=8)
    p.add_argument("--domains", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="kernel threads (default: OpenMP's)")
    return p.parse_args(argv)


if __name__ == "__main__":
    try:
        run(parse_args())
    except gtl.GtlError as e:
        sys.exit(f"adapt_predict: {e}")
    except KeyboardInterrupt:
        sys.exit("adapt_predict: interrupted")
