"""Model parameters, steps of B1 and B2, prediction, latents, tensors and the
error paths, through the bindings."""
import threading

import numpy as np
import pytest

import gtl
from conftest import D, F, H, NC, NM, blobs, make_model


def test_params(model):
    assert model.feature_dim == F and model.hidden_dim == H
    assert model.get(gtl.ModelParam.CONCEPT_DIM) == NC
    assert model.get("disturbance_dim") == NM
    model.beta = 0.5
    assert model.beta == pytest.approx(0.5)
    assert isinstance(model.beta, float) and isinstance(model.seed, int)
    assert gtl.Model.bounds(gtl.ModelParam.ESTIMATOR) == (0.0, 1.0, True)
    assert gtl.Model.bounds("beta")[2] is False
    p = model.params()
    assert set(p) == {k.name.lower() for k in gtl.ModelParam}
    with pytest.raises(gtl.InvalidArgument, match="read-only"):
        model.num_classes = 3
    with pytest.raises(gtl.InvalidArgument, match="outside"):
        model.dropout = 1.5
    with pytest.raises(gtl.InvalidArgument, match="unknown parameter"):
        model.set("nope", 1)
    with pytest.raises(gtl.InvalidArgument, match="not finite"):
        model.beta = float("nan")


def test_structural_after_init_is_bad_state(model):
    model.init()
    assert model.num_params > 0
    with pytest.raises(gtl.BadState, match="structural") as e:
        model.hidden_dim = 8
    assert e.value.status == gtl.Status.BAD_STATE
    assert model.hidden_dim == H
    with pytest.raises(gtl.BadState, match="already initialised"):
        model.init()
    model.beta = 2.0      # loss weights may change at any time


def test_b1_step(model, rng):
    x = rng.standard_normal((16, F)).astype(np.float32)
    with gtl.Optimizer(lr=1e-3) as opt:
        model.set_stage(gtl.Stage.B1)
        before = model.get_tensor("encoder.fc.weight")
        gen_cls = model.get_tensor("classifier.fc.weight")
        stats = model.train_step(opt, x)
        assert set(stats) == {s.name.lower() for s in gtl.Stat}
        assert stats["loss"] > 0 and stats["mse"] > 0 and stats["kl"] >= 0
        assert stats["ce"] == 0 and stats["accuracy"] == 0
        assert stats["lr"] == pytest.approx(1e-3) and stats["grad_norm"] > 0
        assert opt.num_steps == 1
        assert not np.array_equal(model.get_tensor("encoder.fc.weight"), before)
        np.testing.assert_array_equal(model.get_tensor("classifier.fc.weight"), gen_cls)


def test_b2_step(model, rng):
    x, y, _ = blobs(rng, 4, 4)
    with gtl.Optimizer() as opt:
        model.set_stage(gtl.Stage.B2, n_classes=4)
        assert model.num_classes == 4
        enc = model.get_tensor("encoder.fc.weight")
        stats = model.train_step(opt, x, y)
        assert stats["ce"] > 0 and stats["triplet"] >= 0 and stats["center"] >= 0
        assert 0 <= stats["accuracy"] <= 1 and stats["mse"] == 0
        np.testing.assert_array_equal(model.get_tensor("encoder.fc.weight"), enc)   # frozen


def test_forward_backward_then_apply(model, rng):
    x = rng.standard_normal((8, F)).astype(np.float32)
    with gtl.Optimizer(gtl.OptimKind.SGD, lr=0.1) as opt:
        model.set_stage(gtl.Stage.B1)
        stats = model.forward_backward(x)
        assert stats["loss"] > 0
        name = "generator.fc2.weight"
        g = model.get_grad(name)
        w = model.get_tensor(name)
        assert np.abs(g).sum() > 0
        norm = model.apply(opt)
        assert norm > 0
        clip = opt.clip_norm
        scale = min(1.0, clip / norm) if clip > 0 else 1.0
        np.testing.assert_allclose(model.get_tensor(name), w - 0.1 * scale * g, rtol=1e-5,
                                   atol=1e-6)


def test_predict_shapes_and_probabilities(model, rng):
    x, y, _ = blobs(rng, 5, 3)
    with gtl.Optimizer() as opt:
        model.set_stage(gtl.Stage.B2, 5)
        model.train_step(opt, x, y)
    labels, probs = model.predict(x)
    assert labels.shape == (15,) and labels.dtype == np.int64
    assert probs.shape == (15, 5) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs >= 0).all()
    np.testing.assert_array_equal(labels, probs.argmax(axis=1))
    one_l, one_p = model.predict(x[0])            # a single row
    assert one_l.shape == (1,) and one_p.shape == (1, 5)
    xf = np.asfortranarray(x.astype(np.float64))    # converted, not misread
    np.testing.assert_allclose(model.predict(xf)[1], probs, rtol=1e-5)


def test_latent_shapes(model, rng):
    x = rng.standard_normal((7, F))
    assert model.latent(x).shape == (7, NC)
    assert model.latent(x, gtl.Latent.DISTURBANCE).shape == (7, NM)
    gate = model.latent(x, gtl.Latent.GATE)
    assert gate.shape == (7, D)
    np.testing.assert_allclose(gate.sum(axis=1), 1.0, rtol=1e-5)     # sparsemax
    assert (gate >= 0).all()


def test_tensors(model, rng):
    model.init()
    names = model.tensor_names
    assert len(names) == model.num_tensors and "encoder.fc.weight" in names
    total = sum(model.tensor_info(i)[1] for i in range(len(names)))
    assert total == model.num_params
    w = model.get_tensor("encoder.fc.weight")
    assert w.shape == (F * H,)
    model.set_tensor("encoder.fc.weight", np.ones((H, F)))
    np.testing.assert_array_equal(model.get_tensor(names.index("encoder.fc.weight")), 1.0)
    np.testing.assert_array_equal(model.get_grad("encoder.fc.weight"), 0.0)
    assert set(model.tensors()) == set(names)
    with pytest.raises(gtl.InvalidArgument, match="has"):
        model.set_tensor("encoder.fc.weight", np.ones(3))
    with pytest.raises(gtl.InvalidArgument, match="not finite"):
        model.set_tensor("encoder.fc.weight", np.full(F * H, np.inf))
    with pytest.raises(gtl.InvalidArgument, match="no tensor"):
        model.get_tensor("nope")
    with pytest.raises(gtl.InvalidArgument, match="out of range"):
        model.get_tensor(10_000)


def test_tensors_before_init_is_bad_state(model):
    with pytest.raises(gtl.BadState, match="not initialised"):
        model.num_tensors


# ---- error paths ----

def test_wrong_feature_dim(model, rng):
    with pytest.raises(gtl.InvalidArgument) as e:
        model.predict(np.zeros((2, F - 1)))
    assert e.value.status == gtl.Status.INVALID_ARG
    assert e.value.message == f"gtl_model_predict: feature_dim {F - 1} does not match the " \
                              f"model's {F}"
    assert str(e.value) == "invalid argument: " + e.value.message
    assert isinstance(e.value, ValueError)     # also a ValueError for generic handlers
    with gtl.Optimizer() as opt:
        model.set_stage(gtl.Stage.B1)
        with pytest.raises(gtl.InvalidArgument, match="does not match"):
            model.train_step(opt, np.zeros((4, F + 1)))


def test_nan_features(model, rng):
    x = rng.standard_normal((4, F)).astype(np.float32)
    x[2, 5] = np.nan
    with pytest.raises(gtl.InvalidArgument, match="feature 5 of row 2 is not finite"):
        model.predict(x)
    model.set_stage(gtl.Stage.B1)
    with pytest.raises(gtl.InvalidArgument, match="not finite"):
        model.forward_backward(x)


def test_labels_out_of_range(model, rng):
    x, y, _ = blobs(rng, 3, 2)
    model.set_stage(gtl.Stage.B2, 3)
    y[4] = 3
    with gtl.Optimizer() as opt:
        with pytest.raises(gtl.InvalidArgument, match=r"label 3 of row 4 is outside \[0, 3\)"):
            model.train_step(opt, x, y)
        with pytest.raises(gtl.InvalidArgument, match="needs labels"):
            model.train_step(opt, x)
        with pytest.raises(gtl.InvalidArgument, match="4 labels for 6 rows"):
            model.train_step(opt, x, y[:4])
        assert opt.num_steps == 0


def test_wrong_stage_order_is_bad_state(model, rng):
    x = rng.standard_normal((4, F))
    with gtl.Optimizer() as opt:
        with pytest.raises(gtl.BadState, match="no stage set"):
            model.train_step(opt, x)
        with pytest.raises(gtl.BadState, match="no stage set"):
            model.forward_backward(x)
        model.set_stage(gtl.Stage.B1)
        with pytest.raises(gtl.BadState, match="no gradients pending"):
            model.apply(opt)
        model.forward_backward(x)
        model.apply(opt)
        with pytest.raises(gtl.BadState, match="no gradients pending"):
            model.apply(opt)                     # applied once only
    with pytest.raises(gtl.InvalidArgument, match="n_classes"):
        model.set_stage(gtl.Stage.N2, 0)


def test_batch_of_one_rejected(model, rng):
    model.set_stage(gtl.Stage.B1)
    with pytest.raises(gtl.InvalidArgument, match="batch size must be >= 2"):
        model.forward_backward(rng.standard_normal((1, F)))


def test_closed_handles(rng):
    m = make_model()
    opt = gtl.Optimizer()
    opt.close()
    m.set_stage(gtl.Stage.B1)
    with pytest.raises(gtl.BadState, match="Optimizer is closed"):
        m.train_step(opt, rng.standard_normal((4, F)))
    m.close()
    m.close()
    with pytest.raises(gtl.BadState, match="Model is closed"):
        m.predict(np.zeros((1, F)))
    del m                                      # __del__ after close is harmless


def test_handles_freed(rng):
    """Creating and dropping objects (close() or garbage) returns libgtl's memory."""
    b0, n0 = gtl.memory_in_use()
    for _ in range(3):
        m = make_model()
        m.predict(np.zeros((2, F)))
        opt = gtl.Optimizer(lr=1e-2)
        m.set_stage(gtl.Stage.B1)
        m.train_step(opt, rng.standard_normal((4, F)))
        ds = gtl.Dataset(F, rng.standard_normal((4, F)), [0, 0, 1, 1])
        ep = gtl.Episode().sample(ds, 2, 1, 1)
        view = ep.support
        del m, opt, ds, ep, view                # no close(): __del__ frees them
    b1, n1 = gtl.memory_in_use()
    assert (b1, n1) == (b0, n0)


def test_reentrant_call_from_callback_is_bad_state(rng):
    x, y, _ = blobs(rng, 2, 4)
    with make_model() as m, gtl.Optimizer() as opt, gtl.Dataset(F, x, y) as ds:
        def cb(stage, step, n_steps, stats):
            m.predict(x)                       # the model is mid-stage

        with pytest.raises(gtl.BadState, match="busy"):
            m.train_stage(opt, gtl.Stage.B1, ds, 1, progress=cb)
        m.predict(x)                           # usable again afterwards


def test_two_models_in_two_threads(rng):
    """Distinct models train concurrently (ctypes releases the GIL); one model
    shared by two threads is serialised by the bindings."""
    x = rng.standard_normal((8, F)).astype(np.float32)
    errors = []
    shared = make_model()
    shared.set_stage(gtl.Stage.B1)
    shared_opt = gtl.Optimizer()

    def work(own):
        try:
            with make_model() as m, gtl.Optimizer() as opt:
                m.set_stage(gtl.Stage.B1)
                for _ in range(5):
                    m.train_step(opt, x)
                    shared.train_step(shared_opt, x)
                assert opt.num_steps == 5
        except Exception as e:         # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert shared_opt.num_steps == 10
    shared.close()
    shared_opt.close()
