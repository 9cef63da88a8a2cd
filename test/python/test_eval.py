"""Evaluation through the bindings: the baselines and metrics against numpy,
episode replay, Model.clone, and the Evaluator (settings, the three runners,
results, reports, host callbacks incl. GTL done by hand, progress,
cancellation and the error paths)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gtl
from conftest import F, ROOT, blobs, make_model

RGB_SKETCH = [gtl.Modality.RGB, gtl.Modality.SKETCH]


@pytest.fixture
def novel(rng):
    """6 classes (labels 10, 20, ...; rows 12c .. 12c+11) x 2 modalities (photos
    first) x 6 samples; photo k and sketch k of a class share a pair id. Noisy
    enough that nearest centroid makes mistakes."""
    x, y, m = blobs(rng, 6, 6, n_modalities=2, spread=3.5)
    pair = (y * 100 + np.tile(np.arange(6), 12)).astype(np.int64)
    with gtl.Dataset(F, x, (y + 1) * 10, m, pair) as ds:
        yield ds


def cosine_ncm(xs, ys, xq, centred=False):
    """numpy reference of gtl_eval_nearest_centroid: (pred labels, scores)."""
    xs = xs.astype(np.float64)
    xq = xq.astype(np.float64)
    if centred:
        mu = xs.mean(axis=0)
        xs, xq = xs - mu, xq - mu

    def unit(a):
        n = np.linalg.norm(a, axis=-1, keepdims=True)
        return np.divide(a, n, out=np.zeros_like(a), where=n > 0)

    classes = np.unique(ys)
    cent = unit(np.stack([unit(xs[ys == c]).mean(axis=0) for c in classes]))
    scores = unit(xq) @ cent.T
    return classes[np.argmax(scores, axis=1)], scores


def split(rng, n_classes=4, per=8, shots=2, spread=0.8):
    x, y, m = blobs(rng, n_classes, per, n_modalities=2, spread=spread)
    sup = np.concatenate([np.where(y == c)[0][:shots] for c in range(n_classes)])
    qry = np.setdiff1d(np.arange(len(y)), sup)
    return x, y, m, sup, qry


# ---- baselines and metrics ----


@pytest.mark.parametrize("centred", [False, True])
def test_nearest_centroid_matches_numpy(rng, centred):
    x, y, m, sup, qry = split(rng)
    labels = y * 7 + 3                          # predictions are label values
    with gtl.Dataset(F, x[sup], labels[sup], m[sup]) as s, \
            gtl.Dataset(F, x[qry], labels[qry], m[qry]) as q:
        pred, scores = gtl.nearest_centroid(s, q, centred=centred)
        ref_pred, ref_scores = cosine_ncm(x[sup], labels[sup], x[qry], centred)
    assert pred.dtype == np.int64 and scores.dtype == np.float32
    assert scores.shape == (len(qry), 4)
    np.testing.assert_allclose(scores, ref_scores, atol=2e-6)
    np.testing.assert_array_equal(pred, ref_pred)


def test_linear_probe(rng):
    x, y, m, sup, qry = split(rng, spread=0.3)
    with gtl.Dataset(F, x[sup], y[sup] + 5) as s, gtl.Dataset(F, x[qry], y[qry] + 5) as q:
        pred, probs = gtl.linear_probe(s, q, n_iters=50, l2=0.01)
        assert probs.shape == (len(qry), 4) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(pred, np.argmax(probs, axis=1) + 5)
        assert (pred == y[qry] + 5).mean() >= 0.9
        pred2, probs2 = gtl.linear_probe(s, q, n_iters=50, l2=0.01)
        assert np.array_equal(probs, probs2)        # deterministic, bit for bit
        with pytest.raises(gtl.InvalidArgument, match="n_iters"):
            gtl.linear_probe(s, q, n_iters=0)
        with pytest.raises(gtl.InvalidArgument, match="l2"):
            gtl.linear_probe(s, q, l2=-1.0)
        with pytest.raises(gtl.InvalidArgument, match="l2"):
            gtl.linear_probe(s, q, l2=float("nan"))


def test_baseline_errors(rng):
    x, y, _ = blobs(rng, 2, 3)
    with gtl.Dataset(F, x, y) as s, gtl.Dataset(F) as empty, \
            gtl.Dataset(F + 1, np.zeros((2, F + 1)), [0, 1]) as wide:
        with pytest.raises(gtl.InvalidArgument, match="empty"):
            gtl.nearest_centroid(s, empty)
        with pytest.raises(gtl.InvalidArgument, match="empty"):
            gtl.linear_probe(empty, s)
        with pytest.raises(gtl.InvalidArgument, match="feature sizes differ"):
            gtl.nearest_centroid(s, wide)
    with pytest.raises(gtl.BadState, match="closed"):
        gtl.nearest_centroid(s, s)


def test_accuracy_per_modality():
    x = np.eye(F, dtype=np.float32)[:6]
    y = np.array([0, 0, 1, 1, 2, 2])
    m = np.array([0, 1, 0, 1, 20, 20])          # a host modality tag
    with gtl.Dataset(F, x, y, m) as q:
        total, per, counts = gtl.accuracy(q, [0, 1, 1, 1, 2, 0])
        assert total == pytest.approx(4 / 6)
        assert per == {gtl.Modality.RGB: 1.0, gtl.Modality.SKETCH: 0.5, 20: 0.5}
        assert counts == {gtl.Modality.RGB: 2, gtl.Modality.SKETCH: 2, 20: 2}
        with pytest.raises(gtl.InvalidArgument, match="5 predictions for 6 rows"):
            gtl.accuracy(q, [0] * 5)
        with pytest.raises(gtl.InvalidArgument, match="integers"):
            gtl.accuracy(q, np.zeros(6))
        cm = gtl.confusion(q, [0, 1, 1, 1, 2, 0])
        np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
        assert gtl.confusion(q, [0, 1, 1, 1, 2, 0], n_classes=4).shape == (4, 4)
        with pytest.raises(gtl.InvalidArgument, match="outside"):
            gtl.confusion(q, [0, 1, 1, 1, 2, 0], n_classes=2)
        with pytest.raises(gtl.InvalidArgument, match="outside"):
            gtl.confusion(q, [0, 1, 1, 1, 2, -1])
    with gtl.Dataset(F) as empty, pytest.raises(gtl.InvalidArgument, match="gtl_eval_accuracy"):
        gtl.accuracy(empty, [])


def test_mean_ci():
    v = np.array([0.5, 1.0, np.nan, 0.75, 0.6])
    ok = v[~np.isnan(v)]
    mean, ci, n = gtl.mean_ci(v)
    assert n == 4 and mean == pytest.approx(ok.mean())
    assert ci == pytest.approx(1.96 * ok.std(ddof=1) / np.sqrt(4))
    mean, ci, n = gtl.mean_ci([0.25])
    assert mean == 0.25 and np.isnan(ci) and n == 1
    mean, ci, n = gtl.mean_ci([np.nan, np.nan])
    assert np.isnan(mean) and n == 0
    with pytest.raises(gtl.InvalidArgument, match="infinite"):
        gtl.mean_ci([0.5, np.inf])
    with pytest.raises(gtl.InvalidArgument, match="gtl_eval_mean_ci"):
        gtl.mean_ci([])


# ---- episode replay and model copies ----


def test_episode_from_indices_round_trip(novel):
    with gtl.Episode() as ep:
        ep.sample(novel, 3, 1, 2, RGB_SKETCH, RGB_SKETCH, seed=9)
        sup_idx, qry_idx = ep.source_indices("support"), ep.source_indices(1)
        assert sup_idx.dtype == np.int64 and sup_idx.shape == (6,) and qry_idx.shape == (6,)
        x, y, m, p = novel.arrays()
        sx, sy, sm, sp = ep.support.arrays()
        np.testing.assert_array_equal(sx, x[sup_idx])
        np.testing.assert_array_equal(ep.class_labels[sy], y[sup_idx])
        with gtl.Episode.from_indices(novel, ep.class_labels, sup_idx, qry_idx) as ep2:
            for a, b in zip(ep.support.arrays() + ep.query.arrays(),
                            ep2.support.arrays() + ep2.query.arrays()):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(ep2.class_labels, ep.class_labels)
            np.testing.assert_array_equal(ep2.source_indices("query"), qry_idx)
        with pytest.raises(gtl.InvalidArgument, match="side"):
            ep.source_indices("both")
        with pytest.raises(gtl.InvalidArgument, match="side"):
            ep.source_indices(2)


def test_episode_from_indices_hand_made_and_errors(novel):
    with gtl.Episode.from_indices(novel, [30, 10], [0, 24, 25]) as ep:
        _, y, _, _ = ep.support.arrays()
        np.testing.assert_array_equal(y, [1, 0, 0])      # position in class_labels
        assert len(ep.query) == 0
        view = ep.support
        ep.fill_from_indices(novel, [20], [12], [13, 14])
        with pytest.raises(gtl.BadState, match="stale"):
            len(view)
        assert len(ep.query) == 2
        with pytest.raises(gtl.InvalidArgument, match="repeated"):
            ep.fill_from_indices(novel, [10, 10], [0])
        with pytest.raises(gtl.InvalidArgument, match="outside"):
            ep.fill_from_indices(novel, [10], [len(novel)])
        with pytest.raises(gtl.InvalidArgument, match="not one of the episode's classes"):
            ep.fill_from_indices(novel, [10], [0], [12])
        with pytest.raises(gtl.InvalidArgument, match="integers"):
            ep.fill_from_indices(novel, [10], [0.5])
        assert len(ep.query) == 2 and ep.class_labels.tolist() == [20]   # unchanged
    with pytest.raises(gtl.InvalidArgument, match="n_support"):
        gtl.Episode.from_indices(novel, [10], [])
    with gtl.Episode() as fresh, pytest.raises(gtl.BadState, match="not sampled"):
        fresh.source_indices()


def test_model_clone(rng):
    x, y, _ = blobs(rng, 3, 6)
    with make_model() as m:
        with pytest.raises(gtl.BadState, match="not initialised"):
            m.clone()
        with gtl.Optimizer() as opt:
            m.set_stage(gtl.Stage.B2, 3)
            m.train_step(opt, x[:12], y[:12])
            with m.clone() as c:
                assert c.num_classes == 3 and c.params() == m.params()
                for a, b in zip(m.predict(x), c.predict(x)):
                    assert np.array_equal(a, b)
                for name, t in m.tensors().items():
                    assert np.array_equal(t, c.get_tensor(name)), name
                with gtl.Optimizer() as o1, gtl.Optimizer() as o2:
                    s1 = m.train_step(o1, x[6:], y[6:])
                    s2 = c.train_step(o2, x[6:], y[6:])
                assert s1 == s2
                c.set_tensor("classifier.fc.weight",
                             np.ones(c.get_tensor("classifier.fc.weight").size))
                assert not np.array_equal(m.get_tensor("classifier.fc.weight"),
                                          c.get_tensor("classifier.fc.weight"))
            m.forward_backward(x[:12], y[:12])
            with pytest.raises(gtl.BadState, match="pending"):
                m.clone()
            m.apply(opt)
            m.clone().close()


# ---- the evaluator ----


def test_evaluator_settings(novel):
    with gtl.Evaluator() as ev:
        assert ev.method is gtl.EvalMethod.NEAREST_CENTROID
        assert ev.settings() == {"n_way": 5, "k_shot": 1, "q_query": 15, "episodes": 600,
                                 "seed": 0, "support_modalities": 3,
                                 "query_modalities": 0xFFFFFFFF, "all_way_repeats": 1,
                                 "probe_iters": 100, "probe_l2": pytest.approx(0.01)}
        ev.n_way = 3
        ev.set("k_shot", 2)
        ev.seed = 2**63 - 1                     # any int64 >= 0
        assert ev.seed == 2**63 - 1
        ev.set(gtl.EvalParam.SEED, 7)
        ev.query_modalities = gtl.Modality.SKETCH
        ev.support_modalities = [gtl.Modality.RGB, gtl.Modality.DEPTH]
        ev.probe_l2 = 0.5
        assert (ev.n_way, ev.k_shot, ev.seed, ev.query_modalities, ev.support_modalities) == \
            (3, 2, 7, 2, 9)
        assert isinstance(ev.n_way, int) and ev.probe_l2 == pytest.approx(0.5)
        with pytest.raises(gtl.InvalidArgument, match="n_way"):
            ev.n_way = 0
        with pytest.raises(gtl.InvalidArgument, match="integer"):
            ev.episodes = 2.5
        with pytest.raises(gtl.InvalidArgument, match="probe_l2"):
            ev.probe_l2 = float("inf")
        with pytest.raises(gtl.InvalidArgument, match="unknown setting"):
            ev.set("nope", 1)
        with pytest.raises(gtl.InvalidArgument, match="support_modalities"):
            ev.support_modalities = 0
        assert ev.n_way == 3 and ev.support_modalities == 9      # unchanged
        with pytest.raises(gtl.BadState, match="not callback"):
            ev.set_callback(lambda s, q: None)
        with make_model() as m, pytest.raises(gtl.BadState, match="not gtl"):
            ev.set_model(m)
        with pytest.raises(gtl.BadState, match="no results"):
            ev.result()
        with pytest.raises(gtl.BadState, match="no results"):
            ev.report()
    with pytest.raises(gtl.BadState, match="closed"):
        ev.run_episodic(novel)
    with pytest.raises(ValueError):
        gtl.Evaluator(9)
    with pytest.raises(gtl.InvalidArgument, match="q_query"):
        gtl.Evaluator(q_query=-1)
    assert "closed" in repr(ev)


def small_episodic(method=gtl.EvalMethod.NEAREST_CENTROID, **kw):
    settings = dict(n_way=3, k_shot=1, q_query=2, episodes=12, seed=4,
                    support_modalities=RGB_SKETCH)
    settings.update(kw)
    return gtl.Evaluator(method, **settings)


def test_episodic_equals_manual_episodes(novel):
    """The runner's per-episode accuracies equal nearest centroid + accuracy run
    here on the episodes it reports (rebuilt with Episode.from_indices)."""
    with small_episodic() as ev:
        mean, ci, n = ev.run_episodic(novel)
        acc = ev.accuracies()
        assert n == 12 and acc.shape == (12,) and ev.num_episodes == 12
        assert mean == pytest.approx(acc.mean()) and ci > 0
        eps = ev.episode_records()
        assert len(eps) == 12
        manual = []
        for e in eps:
            assert e["classes"].shape == (3,) and e["support"].shape == (6,)
            with gtl.Episode.from_indices(novel, e["classes"], e["support"], e["query"]) as ep:
                pred, _ = gtl.nearest_centroid(ep.support, ep.query)
                manual.append(gtl.accuracy(ep.query, pred)[0])
        np.testing.assert_array_equal(acc, manual)
        res = ev.results()
        assert set(res) == {"total", "rgb", "sketch"}
        assert res["total"] == {"mean": mean, "ci95": ci, "n": 12}
        assert ev.result("sketch") == ev.result(gtl.Modality.SKETCH)
        np.testing.assert_array_equal(ev.accuracies(gtl.Modality.RGB),
                                      ev.accuracies("rgb"))
        m, c, k = ev.result(gtl.Modality.DEPTH)
        assert np.isnan(m) and k == 0
        with pytest.raises(gtl.InvalidArgument, match="modality"):
            ev.result(40)
        with pytest.raises(gtl.InvalidArgument, match="unknown modality"):
            ev.result("ultrasound")


def test_replay_and_determinism(novel):
    with small_episodic() as ev, small_episodic(gtl.EvalMethod.LINEAR_PROBE) as lp, \
            small_episodic(seed=5) as other:
        ev.run_episodic(novel)
        lst = ev.episode_list()
        assert lst.dtype == np.int64 and lst[:3].tolist() == [3, 6, 6]
        lp.run_episode_list(novel, lst)
        np.testing.assert_array_equal(lp.episode_list(), lst)
        lp.run_episodic(novel)                   # same settings: the same episodes
        np.testing.assert_array_equal(lp.episode_list(), lst)
        other.run_episodic(novel)
        assert not np.array_equal(other.episode_list(), lst)
        acc = ev.accuracies()
        ev.run_episode_list(novel, lst)
        np.testing.assert_array_equal(ev.accuracies(), acc)
        assert ev.report("markdown", header=False).startswith(
            "| nearest_centroid | episode-list | saved episodes |")
        with pytest.raises(gtl.InvalidArgument, match="truncated"):
            ev.run_episode_list(novel, lst[:-1])
        with pytest.raises(gtl.BadState, match="no results"):
            ev.accuracies()                      # a failed run leaves none
        with pytest.raises(gtl.InvalidArgument, match="empty"):
            ev.run_episode_list(novel, [])
        with pytest.raises(gtl.InvalidArgument, match="integers"):
            ev.run_episode_list(novel, lst.astype(float))


def test_all_way(novel):
    with gtl.Evaluator(gtl.EvalMethod.CENTRED_CENTROID, k_shot=1,
                       support_modalities=RGB_SKETCH) as ev:
        mean, ci, n = ev.run_all_way(novel)
        assert n == 1 and np.isnan(ci) and 0 <= mean <= 1
        (e,) = ev.episode_records()
        assert e["classes"].tolist() == [10, 20, 30, 40, 50, 60] and e["support"].size == 12
        # per class: 12 samples - 2 support - the other halves of their pairs
        assert 6 * 8 <= e["query"].size <= 6 * 10
        ev.all_way_repeats = 3
        assert ev.run_all_way(novel)[2] == 3
        ev.k_shot = 7
        with pytest.raises(gtl.InvalidArgument, match="K_SHOT"):
            ev.run_all_way(novel)


def test_reports(novel, tmp_path):
    with small_episodic(gtl.EvalMethod.LINEAR_PROBE, probe_iters=20) as ev:
        ev.run_episodic(novel)
        doc = json.loads(ev.report())
        assert doc["method"] == "linear_probe" and doc["protocol"] == "episodic"
        assert doc["settings"]["probe_iters"] == 20 and doc["n_episodes"] == 12
        assert "episodes" not in doc
        for k, v in ev.results().items():
            assert doc["accuracy"][k]["mean"] == pytest.approx(v["mean"], rel=1e-8)
            assert doc["accuracy"][k]["n"] == v["n"]
        full = json.loads(ev.report(gtl.EvalFormat.JSON, episodes=True))
        assert [e["classes"] for e in full["episodes"]] == \
            [e["classes"].tolist() for e in ev.episode_records()]
        md = ev.report("markdown")
        row = ev.report(gtl.EvalFormat.MARKDOWN, header=False)
        assert md.startswith("| method | protocol |") and md.endswith(row)
        assert row.startswith("| linear_probe | episodic | 3-way 1-shot 2-query")
        path = tmp_path / "lp.json"
        ev.write(path, episodes=True)
        assert path.read_text() == ev.report(episodes=True)
        ev.write(str(tmp_path / "lp.md"), "markdown")
        assert (tmp_path / "lp.md").read_text() == md
        with pytest.raises(gtl.GtlIOError, match="no_such_dir"):
            ev.write(tmp_path / "no_such_dir" / "x.json")
        with pytest.raises(gtl.InvalidArgument, match="report format"):
            ev.report("html")
        with pytest.raises(gtl.InvalidArgument, match="unknown format"):
            ev.report(5)


# ---- host callbacks, progress, cancellation ----


def test_callback_equals_builtin_method(novel):
    calls = []

    def ncm(support, query):
        calls.append((len(support), len(query)))
        assert support.is_view and support.num_classes() == (3, 3)
        return gtl.nearest_centroid(support, query)[0]

    with small_episodic() as ev, small_episodic(gtl.EvalMethod.CALLBACK, callback=ncm) as cb:
        ev.run_episodic(novel)
        cb.run_episodic(novel)
        assert calls == [(6, 6)] * 12
        np.testing.assert_array_equal(cb.accuracies(), ev.accuracies())
        cb.set_callback(None)
        with pytest.raises(gtl.BadState, match="no callback"):
            cb.run_episodic(novel)


def test_gtl_method_equals_gtl_by_callback(novel):
    """EvalMethod.GTL (adapt a copy of the pretrained model on each episode, then
    predict) gives bit-identical accuracies to a host callback that does the
    same with Model.clone / adapt / predict."""
    x, y, m, _ = novel.arrays()
    with make_model(n1_epochs=1, n2_epochs=3, batch_classes=3, batch_samples=2) as model, \
            gtl.Optimizer() as opt, gtl.Dataset(F, x, y // 10 - 1, m) as base:
        model.batch_classes, model.batch_samples = 4, 4
        model.train_stage(opt, gtl.Stage.B1, base, 1)
        model.batch_classes, model.batch_samples = 3, 2

        def gtl_by_hand(support, query):
            with model.clone() as work:
                work.adapt(support)
                return work.predict(query.arrays()[0])[0]

        with small_episodic(gtl.EvalMethod.GTL, episodes=3, model=model) as g, \
                small_episodic(gtl.EvalMethod.CALLBACK, episodes=3, callback=gtl_by_hand) as cb:
            g.run_episodic(novel)
            cb.run_episodic(novel)
            np.testing.assert_array_equal(g.accuracies(), cb.accuracies())
            np.testing.assert_array_equal(g.accuracies("sketch"), cb.accuracies("sketch"))
            # the model was copied: changing it afterwards changes nothing
            acc = g.accuracies()
            model.set_tensor("encoder.fc.bias", np.zeros(model.hidden_dim))
            g.run_episodic(novel)
            np.testing.assert_array_equal(g.accuracies(), acc)
            with gtl.Dataset(F + 1, np.zeros((4, F + 1)), [0, 0, 1, 1]) as wide, \
                    pytest.raises(gtl.InvalidArgument, match="feature size"):
                g.run_episodic(wide)
    with gtl.Evaluator(gtl.EvalMethod.GTL) as g:
        with pytest.raises(gtl.BadState, match="no model"):
            g.run_episodic(novel)
        with make_model() as fresh, pytest.raises(gtl.BadState, match="not initialised"):
            g.set_model(fresh)


class Boom(Exception):
    pass


def test_callback_exception_is_reraised_and_keeps_completed_episodes(novel):
    def cb(support, query):
        cb.n += 1
        if cb.n == 4:
            raise Boom("episode four")
        return np.zeros(len(query), np.int64)
    cb.n = 0

    with small_episodic(gtl.EvalMethod.CALLBACK, callback=cb) as ev:
        with pytest.raises(Boom, match="episode four") as e:
            ev.run_episodic(novel)
        assert e.traceback[-1].name == "cb"
        assert ev.num_episodes == 3 and cb.n == 4
        ev.set_callback(lambda s, q: [0] * (len(q) - 1))
        with pytest.raises(gtl.InvalidArgument, match="5 predictions for 6 rows"):
            ev.run_episodic(novel)
        ev.set_callback(lambda s, q: np.full(len(q), 3))
        with pytest.raises(gtl.InvalidArgument, match="episode 0: the prediction of query 0 "
                                                      "is 3, outside"):
            ev.run_episodic(novel)
        with pytest.raises(gtl.BadState, match="no results"):
            ev.result()
        ev.set_callback(lambda s, q: ev.result())            # re-entrant
        with pytest.raises(gtl.BadState, match="busy"):
            ev.run_episodic(novel)
        kept = []
        ev.set_callback(lambda s, q: kept.append(q) or np.zeros(len(q), np.int64))
        ev.run_episodic(novel)
        with pytest.raises(gtl.BadState, match="stale"):
            len(kept[0])                         # views live only during the call
        with pytest.raises(gtl.InvalidArgument, match="callable"):
            ev.set_callback(42)


def test_progress_and_cancel(novel):
    seen = []
    with small_episodic(progress=lambda *a: seen.append(a)) as ev:
        ev.run_episodic(novel)
        assert [s[:2] for s in seen] == [(e, 12) for e in range(1, 13)]
        np.testing.assert_array_equal([s[2] for s in seen], ev.accuracies())
        full = ev.accuracies()
        ev.set_progress(lambda e, n, acc: e == 5)
        with pytest.raises(gtl.Cancelled, match="cancelled after 5 of 12"):
            ev.run_episodic(novel)
        np.testing.assert_array_equal(ev.accuracies(), full[:5])     # kept

        def boom(e, n, acc):
            raise Boom("stop")
        ev.set_progress(boom)
        with pytest.raises(Boom):
            ev.run_all_way(novel)
        assert ev.num_episodes == 1
        ev.set_progress(None)
        assert ev.run_episodic(novel)[2] == 12


CTRL_C = r"""
import os, signal, sys, threading
sys.path[:0] = sys.argv[1:3]
import numpy as np, gtl
from conftest import blobs, F
x, y, m = blobs(np.random.default_rng(0), 8, 10, n_modalities=2)
with gtl.Dataset(F, x, y, m) as ds, gtl.Evaluator(episodes=10**7, n_way=5) as ev:
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        ev.run_episodic(ds)
        print("NOT INTERRUPTED")
    except KeyboardInterrupt:
        print("INTERRUPTED", ev.num_episodes > 0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ev.episodes = 3
    print("USABLE", ev.run_episodic(ds)[2])
"""


def test_ctrl_c_stops_a_run_cleanly():
    here = os.path.dirname(os.path.abspath(__file__))
    res = subprocess.run([sys.executable, "-c", CTRL_C, os.path.join(ROOT, "bindings", "python"),
                          here], capture_output=True, text=True, timeout=300)
    assert "INTERRUPTED True" in res.stdout and "USABLE 3" in res.stdout, \
        res.stdout + res.stderr
    assert "Exception ignored" not in res.stderr, res.stderr


def test_no_leaks(novel):
    b0, n0 = gtl.memory_in_use()
    with small_episodic(gtl.EvalMethod.CALLBACK,
                        callback=lambda s, q: gtl.nearest_centroid(s, q)[0]) as ev:
        ev.run_episodic(novel)
        ev.report(episodes=True)
        with gtl.Episode.from_indices(novel, [10], [0], [1]):
            pass
    assert gtl.memory_in_use() == (b0, n0)
