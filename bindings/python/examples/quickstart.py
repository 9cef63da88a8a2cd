"""quickstart.py: the Python twin of examples/quickstart.c (docs/quickstart.md).
Usage: quickstart.py BASE.csv SUPPORT.csv QUERY.csv (label,f1,...,fF per line)."""
import sys

import numpy as np

import gtl


def load_csv(path):
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    return gtl.Dataset(rows.shape[1] - 1, rows[:, 1:], rows[:, 0].astype(np.int64))


base, support, query = (load_csv(p) for p in sys.argv[1:4])
with gtl.Model(feature_dim=base.feature_dim) as m:
    # Pretrain once (or load a pretrained head: m = gtl.Model.load(path)).
    with gtl.Optimizer(gtl.OptimKind.ADAM) as opt:
        m.train_stage(opt, gtl.Stage.B1, base, epochs=30)
        opt.reset()
        m.train_stage(opt, gtl.Stage.B2, base, epochs=30)
    m.save("pretrained.gtl")

    # A new task: adapt (stages N1, N2) on the support set, then predict.
    m.adapt(support)
    x, truth = query.arrays()[:2]
    labels, probs = m.predict(x)
    print(f"accuracy {np.mean(labels == truth):.3f} on {len(truth)} queries")
    m.save("adapted.gtl")
for ds in (base, support, query):
    ds.close()
