"""Datasets and episodes through the bindings."""
import numpy as np
import pytest

import gtl
from conftest import F, blobs


def test_add_and_read_back(rng):
    x, y, m = blobs(rng, 3, 4, n_modalities=2)
    pairs = np.arange(len(y)) // 2
    with gtl.Dataset(F) as ds:
        assert len(ds) == 0 and ds.feature_dim == F
        ds.add(x, y, m, pairs)
        assert len(ds) == len(y)
        assert ds.num_classes() == (3, 3)
        xi, yi, mi, pi = ds.get(5)
        np.testing.assert_array_equal(xi, x[5])
        assert (yi, mi, pi) == (y[5], m[5], pairs[5])
        assert isinstance(mi, gtl.Modality)
        xa, ya, ma, pa = ds.arrays()
        np.testing.assert_array_equal(xa, x)
        np.testing.assert_array_equal(ya, y)
        np.testing.assert_array_equal(ma, m)
        np.testing.assert_array_equal(pa, pairs)


def test_add_defaults_and_conversion(rng):
    """float64 lists and int32 labels are converted; modalities default to RGB, pairs to none."""
    with gtl.Dataset(4, [[1, 2, 3, 4], [5, 6, 7, 8]], np.array([7, 9], np.int32)) as ds:
        _, y, m, p = ds.arrays()
        assert list(y) == [7, 9] and list(m) == [0, 0] and list(p) == [gtl.NO_PAIR] * 2
        assert ds.num_classes() == (2, 10)
        np.testing.assert_array_equal(ds.remap_labels(), [7, 9])
        assert list(ds.arrays()[1]) == [0, 1]


def test_add_errors(rng):
    x, y, _ = blobs(rng, 2, 3)
    with gtl.Dataset(F) as ds:
        with pytest.raises(gtl.InvalidArgument, match="31 columns"):
            ds.add(x[:, :31], y)
        with pytest.raises(gtl.InvalidArgument, match="labels"):
            ds.add(x, y[:-1])
        with pytest.raises(gtl.InvalidArgument, match="integers"):
            ds.add(x, y.astype(np.float64))
        bad = x.copy()
        bad[2, 7] = np.nan
        with pytest.raises(gtl.InvalidArgument) as e:
            ds.add(bad, y)
        assert e.value.message.startswith("gtl_dataset_add")       # the C message
        bad_y = y.copy()
        bad_y[1] = -1
        with pytest.raises(gtl.InvalidArgument, match="gtl_dataset_add"):
            ds.add(x, bad_y)
        with pytest.raises(gtl.InvalidArgument, match="gtl_dataset_add"):
            ds.add(x, y, np.full(len(y), 40))
        assert len(ds) == 0        # nothing appended by any failed call
    with pytest.raises(gtl.InvalidArgument, match="gtl_dataset_create"):
        gtl.Dataset(0)


def test_identity_batch(rng):
    x, y, _ = blobs(rng, 5, 6)
    with gtl.Dataset(F, x, y) as ds:
        ds.seed(11)
        idx = ds.identity_batch(4, 3)
        assert idx.shape == (12,)
        classes = y[idx].reshape(4, 3)
        assert all(len(set(row)) == 1 for row in classes)       # K of each class together
        assert len(set(classes[:, 0])) == 4                    # P distinct classes
        ds.seed(11)
        np.testing.assert_array_equal(ds.identity_batch(4, 3), idx)   # seeded, reproducible


def test_episode_sample(rng):
    x, y, m = blobs(rng, 6, 5, n_modalities=2)
    y = y + 100
    with gtl.Dataset(F, x, y, m) as ds, gtl.Episode() as ep:
        ep.sample(ds, n_way=3, k_shot=2, q_query=3,
                  support_modalities=[gtl.Modality.RGB, gtl.Modality.SKETCH],
                  query_modalities=gtl.Modality.RGB, seed=5)
        s, q = ep.support, ep.query
        assert s.is_view and q.is_view
        assert len(s) == 3 * 2 * 2 and len(q) == 3 * 3
        _, sy, sm, _ = s.arrays()
        _, qy, qm, _ = q.arrays()
        assert set(sy) == {0, 1, 2} and set(qy) == {0, 1, 2}
        assert set(sm) == {0, 1} and set(qm) == {0}
        src = ep.class_labels
        assert len(src) == 3 and all(100 <= c < 106 for c in src)
        # support features really come from the source class
        xs, _, _, _ = s.arrays()
        for i in range(len(s)):
            rows = np.where((x == xs[i]).all(axis=1))[0]
            assert len(rows) == 1 and y[rows[0]] == src[sy[i]]
        # the same seed gives the same episode
        first = xs.copy()
        ep.sample(ds, 3, 2, 3, [gtl.Modality.RGB, gtl.Modality.SKETCH], gtl.Modality.RGB, 5)
        np.testing.assert_array_equal(ep.support.arrays()[0], first)


def test_episode_views_are_read_only_and_go_stale(rng):
    x, y, _ = blobs(rng, 4, 4)
    with gtl.Dataset(F, x, y) as ds:
        ep = gtl.Episode()
        with pytest.raises(gtl.BadState):
            ep.support                                  # never sampled
        ep.sample(ds, 2, 1, 1)
        s = ep.support
        with pytest.raises(gtl.BadState, match="read-only"):
            s.add(x[:1], y[:1])
        with pytest.raises(gtl.BadState, match="read-only"):
            s.remap_labels()
        ep.sample(ds, 2, 1, 1, seed=9)
        with pytest.raises(gtl.BadState, match="stale"):
            len(s)
        s2 = ep.support
        assert len(s2) == 2
        ep.close()
        with pytest.raises(gtl.BadState):
            len(s2)
        s2.close()          # closing a view never frees episode memory
        ep.close()          # closing twice is fine


def test_episode_errors(rng):
    x, y, _ = blobs(rng, 3, 2)
    with gtl.Dataset(F, x, y) as ds, gtl.Episode() as ep:
        with pytest.raises(gtl.InvalidArgument) as e:
            ep.sample(ds, n_way=5, k_shot=1, q_query=1)
        assert "gtl_episode_sample" in e.value.message
        with pytest.raises(gtl.InvalidArgument):
            ep.sample(ds, 2, 1, 0, support_modalities=0)
        with pytest.raises(gtl.BadState):
            ep.class_label(0)


def test_modality_mask():
    assert gtl.modality_mask(gtl.Modality.RGB, gtl.Modality.SKETCH) == 0b11
    assert gtl.modality_mask([gtl.Modality.DEPTH]) == 0b1000
    with pytest.raises(gtl.InvalidArgument):
        gtl.modality_mask(32)


def test_closed_dataset(rng):
    ds = gtl.Dataset(F)
    ds.close()
    assert ds.closed
    with pytest.raises(gtl.BadState, match="closed"):
        len(ds)
