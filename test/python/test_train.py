"""Whole stages, adapt, progress callbacks and cancellation, and the optimizer,
through the bindings."""
import numpy as np
import pytest

import gtl
from conftest import F, blobs, make_model


@pytest.fixture
def base(rng):
    x, y, m = blobs(rng, 4, 6, n_modalities=2)
    with gtl.Dataset(F, x, y, m) as ds:
        yield ds


def small_batches(m):
    m.batch_classes = 4
    m.batch_samples = 4


def test_train_stage_with_progress(base):
    seen = []
    with make_model() as m, gtl.Optimizer(lr=1e-3) as opt:
        small_batches(m)
        m.train_stage(opt, gtl.Stage.B1, base, epochs=2,
                      progress=lambda *a: seen.append(a))
        per_epoch = -(-len(base) // 16)
        assert [s[1] for s in seen] == list(range(1, 2 * per_epoch + 1))
        assert all(s[0] is gtl.Stage.B1 and s[2] == 2 * per_epoch for s in seen)
        assert all(s[3]["mse"] > 0 and s[3]["lr"] > 0 for s in seen)
        assert opt.num_steps == 2 * per_epoch


def test_b1_then_b2_stages(base):
    with make_model() as m, gtl.Optimizer() as o1, gtl.Optimizer() as o2:
        small_batches(m)
        m.train_stage(o1, gtl.Stage.B1, base, 1)
        m.train_stage(o2, gtl.Stage.B2, base, 3)
        assert m.num_classes == 4
        labels, probs = m.predict(base.arrays()[0])
        assert probs.shape == (len(base), 4)


def test_cancel_by_return_value(base):
    calls = []

    def stop_at_2(stage, step, n_steps, stats):
        calls.append(step)
        return step == 2

    with make_model() as m, gtl.Optimizer() as opt:
        small_batches(m)
        with pytest.raises(gtl.Cancelled) as e:
            m.train_stage(opt, gtl.Stage.B1, base, 5, progress=stop_at_2)
        assert e.value.status == gtl.Status.CANCELLED
        assert "after step 2" in e.value.message
        assert calls == [1, 2]
        assert opt.num_steps == 2            # every completed step was applied
        x, y = base.arrays()[:2]
        # and the model is usable (B1 with the classification term takes labels)
        m.train_step(opt, x[:8], y[:8])


class Boom(Exception):
    pass


def test_exception_in_callback_cancels_and_is_reraised(base):
    calls = []

    def cb(stage, step, n_steps, stats):
        calls.append(step)
        if step == 3:
            raise Boom("stop here")

    with make_model() as m, gtl.Optimizer() as opt:
        small_batches(m)
        with pytest.raises(Boom, match="stop here") as e:
            m.train_stage(opt, gtl.Stage.B1, base, 5, progress=cb)
        assert e.traceback[-1].name == "cb"      # the callback's own traceback
        assert calls == [1, 2, 3] and opt.num_steps == 3
        m.train_stage(opt, gtl.Stage.B1, base, 1)   # runs again normally


def test_keyboard_interrupt_in_callback_cancels(base):
    def cb(*a):
        raise KeyboardInterrupt

    with make_model() as m, gtl.Optimizer() as opt:
        small_batches(m)
        with pytest.raises(KeyboardInterrupt):
            m.train_stage(opt, gtl.Stage.B1, base, 3, progress=cb)
        assert opt.num_steps == 1


CTRL_C = r"""
import os, signal, sys, threading
sys.path[:0] = sys.argv[1:3]
import numpy as np, gtl
from conftest import make_model, blobs, F
x, y, _ = blobs(np.random.default_rng(0), 4, 50)
with make_model() as m, gtl.Optimizer() as opt, gtl.Dataset(F, x, y) as ds:
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        m.train_stage(opt, gtl.Stage.B1, ds, 100000,
                      progress=None if sys.argv[3] == "none" else (lambda *a: None))
        print("NOT INTERRUPTED")
    except KeyboardInterrupt:
        print("INTERRUPTED", opt.num_steps > 0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    m.predict(x[:2])
    print("USABLE")
"""


@pytest.mark.parametrize("callback", ["none", "lambda"])
def test_ctrl_c_cancels_cleanly(callback):
    """SIGINT during a long stage raises KeyboardInterrupt after the C call has
    returned (not 'Exception ignored in ctypes callback'), with the model usable."""
    import os
    import subprocess
    import sys
    from conftest import ROOT
    here = os.path.dirname(os.path.abspath(__file__))
    res = subprocess.run([sys.executable, "-c", CTRL_C, os.path.join(ROOT, "bindings", "python"),
                          here, callback], capture_output=True, text=True, timeout=300)
    assert "INTERRUPTED True" in res.stdout and "USABLE" in res.stdout, res.stdout + res.stderr
    assert "Exception ignored" not in res.stderr, res.stderr


def test_train_stage_errors(base, rng):
    with make_model() as m, gtl.Optimizer() as opt:
        with pytest.raises(gtl.InvalidArgument, match="epochs"):
            m.train_stage(opt, gtl.Stage.B1, base, 0)
        with gtl.Dataset(F + 1) as other:
            other.add(rng.standard_normal((4, F + 1)), [0, 0, 1, 1])
            with pytest.raises(gtl.InvalidArgument, match="feature size"):
                m.train_stage(opt, gtl.Stage.B1, other, 1)
        x, y, _ = blobs(rng, 2, 3)
        with gtl.Dataset(F, x, y * 5) as gappy:
            with pytest.raises(gtl.InvalidArgument, match="remap_labels"):
                m.train_stage(opt, gtl.Stage.B2, gappy, 1)
            gappy.remap_labels()
            m.train_stage(opt, gtl.Stage.B2, gappy, 1)
        with pytest.raises(ValueError):
            m.train_stage(opt, 7, base, 1)         # not a Stage


def test_adapt_tiny_support(rng):
    """Few-shot adaptation on a 3-way 2-shot support set of separable blobs."""
    x, y, _ = blobs(rng, 3, 8, spread=0.2)
    sup = np.concatenate([np.where(y == c)[0][:2] for c in range(3)])
    qry = np.setdiff1d(np.arange(len(y)), sup)
    steps = []
    with make_model() as m, gtl.Dataset(F, x[sup], y[sup]) as support:
        m.n1_epochs = 5
        m.n2_epochs = 40
        m.warmup_epochs = 1
        m.adapt(support, progress=lambda st, s, n, stats: steps.append((st, s, n)))
        assert {s[0] for s in steps} == {gtl.Stage.N1, gtl.Stage.N2}
        assert m.num_classes == 3
        labels, probs = m.predict(x[qry])
        assert probs.shape == (len(qry), 3)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
        acc = (labels == y[qry]).mean()
        assert acc >= 0.8, f"query accuracy {acc:.2f} after adapt on separable blobs"


def test_adapt_errors_and_cancel(rng):
    x, y, _ = blobs(rng, 2, 2)
    with make_model() as m, gtl.Dataset(F, x[:1], y[:1]) as one:
        with pytest.raises(gtl.InvalidArgument, match="at least 2 samples"):
            m.adapt(one)
        with gtl.Dataset(F, x, y) as sup:
            with pytest.raises(gtl.Cancelled):
                m.adapt(sup, progress=lambda *a: True)


# ---- optimizer ----

def test_optimizer_settings():
    with gtl.Optimizer(gtl.OptimKind.ADAMW, lr=3e-4, warmup_steps=10, milestones=[20, 40],
                       decay_gamma=0.5) as opt:
        assert opt.kind is gtl.OptimKind.ADAMW
        assert opt.lr == pytest.approx(3e-4)
        assert opt.weight_decay == pytest.approx(1e-2)        # AdamW default
        assert opt.warmup_steps == 10 and isinstance(opt.warmup_steps, int)
        np.testing.assert_array_equal(opt.milestones, [20, 40])
        assert opt.lr_at(0) == pytest.approx(3e-4 * 0.01)
        assert opt.lr_at(10) == pytest.approx(3e-4)
        assert opt.lr_at(45) == pytest.approx(3e-4 * 0.25)
        opt.milestones = []
        assert opt.milestones.size == 0
        opt.set(gtl.OptimParam.NESTEROV, 1)
        assert opt.get("nesterov") == 1
        lo, hi = gtl.Optimizer.bounds(gtl.OptimParam.BETA1)
        assert lo == 0 and hi < 1
        with pytest.raises(gtl.InvalidArgument, match="gtl_optimizer_set_f32"):
            opt.beta1 = 1.0
        with pytest.raises(gtl.InvalidArgument):
            opt.milestones = [5, 3]
        with pytest.raises(gtl.InvalidArgument):
            opt.lr_at(-1)
        with pytest.raises(gtl.InvalidArgument, match="unknown setting"):
            gtl.Optimizer(foo=1)
    with pytest.raises(ValueError):
        gtl.Optimizer(5)


def test_optimizer_reset(rng):
    with make_model() as m, gtl.Optimizer() as opt:
        m.set_stage(gtl.Stage.B1)
        m.train_step(opt, rng.standard_normal((4, F)))
        assert opt.num_steps == 1
        opt.reset()
        assert opt.num_steps == 0


# ---- checkpoints ----

def test_save_load_round_trip(tmp_path, rng, base):
    x, y, _ = blobs(rng, 4, 4)
    path = tmp_path / "m.gtl"
    with make_model() as m, gtl.Optimizer(lr=2e-3) as opt:
        small_batches(m)
        m.train_stage(opt, gtl.Stage.B1, base, 1)
        m.set_stage(gtl.Stage.B2, 4)
        m.train_step(opt2 := gtl.Optimizer(), x, y)
        m.save(path, opt2)
        m.save(str(tmp_path / "plain.gtl"))
        with gtl.Model.load(tmp_path / "plain.gtl") as m1:
            np.testing.assert_array_equal(m1.predict(x)[1], m.predict(x)[1])
        m2, o2 = gtl.Model.load_checkpoint(path)
        with m2, o2:
            assert o2 is not None and o2.kind == gtl.OptimKind.ADAM and o2.num_steps == 1
            assert m2.num_classes == 4 and m2.feature_dim == F
            np.testing.assert_array_equal(m2.predict(x)[1], m.predict(x)[1])
            np.testing.assert_array_equal(m2.latent(x), m.latent(x))
            # resuming continues exactly as the original
            s1 = m.train_step(opt2, x, y)
            s2 = m2.train_step(o2, x, y)
            assert s1 == s2
            for name in m.tensor_names:
                np.testing.assert_array_equal(m2.get_tensor(name), m.get_tensor(name))
        opt2.close()


def test_checkpoint_errors(tmp_path, rng):
    with pytest.raises(gtl.GtlIOError) as e:
        gtl.Model.load(tmp_path / "missing.gtl")
    assert e.value.status == gtl.Status.IO
    junk = tmp_path / "junk.gtl"
    junk.write_bytes(b"not a checkpoint" * 8)
    with pytest.raises(gtl.FormatError):
        gtl.Model.load(junk)
    with make_model() as m:
        with pytest.raises(gtl.BadState, match="not initialised"):
            m.save(tmp_path / "x.gtl")
        m.set_stage(gtl.Stage.B1)
        m.forward_backward(rng.standard_normal((4, F)))
        with pytest.raises(gtl.BadState):
            m.save(tmp_path / "x.gtl")          # gradients pending
    assert not (tmp_path / "x.gtl").exists()
