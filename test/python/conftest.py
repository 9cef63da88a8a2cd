"""pytest setup for the Python bindings: import gtl from bindings/python of this
source tree (the library comes from GTL_LIBRARY, set by ctest, or the build
tree), and small-model fixtures shared by the tests."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

import gtl  # noqa: E402

# Small dimensions keep every test well under a second of compute.
F, H, NC, NM, D = 32, 16, 8, 4, 6


def make_model(**extra):
    params = dict(feature_dim=F, hidden_dim=H, concept_dim=NC, disturbance_dim=NM,
                  num_domains=D, seed=3)
    params.update(extra)
    return gtl.Model(**params)


@pytest.fixture
def model():
    with make_model() as m:
        yield m


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def blobs(rng, n_classes, per_class, n_modalities=1, spread=0.3, dim=F):
    """Class-separable random features: a centre per class plus a shift per
    modality plus noise. Returns (x float32 (n, dim), labels int64, modalities int32)."""
    centres = rng.standard_normal((n_classes, dim)) * 2.0
    shifts = rng.standard_normal((n_modalities, dim)) * 1.0
    xs, ys, ms = [], [], []
    for c in range(n_classes):
        for m in range(n_modalities):
            xs.append(centres[c] + shifts[m] + spread * rng.standard_normal((per_class, dim)))
            ys.append(np.full(per_class, c))
            ms.append(np.full(per_class, m))
    return (np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64),
            np.concatenate(ms).astype(np.int32))
