"""gtl.Backbone and the image helpers over the C backbone API (backbone.h), on
the 64 px test ViT; convert_clip.py on small random state dicts (skipped
without torch)."""
import importlib.util
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import gtl
from conftest import ROOT

CONVERTER = os.path.join(ROOT, "bindings", "python", "tools", "convert_clip.py")


def write_png(path, pixels):
    """An 8-bit RGB PNG of pixels (H, W, 3) uint8, with the standard library only."""
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw)))
        f.write(chunk(b"IEND", b""))


@pytest.fixture
def tiny():
    with gtl.Backbone(gtl.BackbonePreset.VIT_TINY, seed=4) as bb:
        yield bb


@pytest.fixture
def pngs(tmp_path, rng):
    paths = []
    for i, (h, w) in enumerate([(70, 90), (64, 64), (30, 100)]):
        p = tmp_path / f"img{i}.png"
        write_png(p, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        paths.append(p)
    return paths


def test_settings(tiny):
    assert tiny.image_size == 64 and tiny.feature_dim == 96
    s = tiny.settings()
    assert s["feature_parts"] == 3 and s["batch_size"] == 8 and s["seed"] == 4
    tiny.feature_parts = 2
    assert tiny.get("FEATURE_DIM") == 32
    tiny.set(gtl.BackboneParam.TRAINABLE_BLOCKS, 2)
    with pytest.raises(gtl.InvalidArgument, match="read-only"):
        tiny.image_size = 32
    with pytest.raises(gtl.InvalidArgument, match="TRAINABLE_BLOCKS"):
        tiny.trainable_blocks = 3
    with pytest.raises(gtl.InvalidArgument):
        tiny.set("no_such_setting", 1)
    with pytest.raises(gtl.InvalidArgument):
        gtl.Backbone(99)
    assert "S=64" in repr(tiny)


def test_embed_images_and_files(tiny, pngs, tmp_path):
    imgs = np.stack([gtl.image_load(p, 64) for p in pngs])
    assert imgs.shape == (3, 3, 64, 64) and imgs.dtype == np.float32
    feats = tiny.embed(imgs)
    assert feats.shape == (3, 96)
    np.testing.assert_allclose(tiny.embed(imgs[1]), feats[1:2], rtol=1e-5, atol=1e-5)
    with pytest.raises(gtl.InvalidArgument, match="images"):
        tiny.embed(np.zeros((2, 3, 32, 32)))

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    paths = [pngs[0], bad, pngs[1], tmp_path / "missing.png", pngs[2]]
    tiny.batch_size = 2
    out, st = tiny.embed_files(paths)
    assert st == [gtl.Status.OK, gtl.Status.FORMAT, gtl.Status.OK, gtl.Status.IO, gtl.Status.OK]
    np.testing.assert_allclose(out[[0, 2, 4]], feats, rtol=1e-5, atol=1e-5)
    assert not out[1].any() and not out[3].any()
    with pytest.raises(gtl.FormatError, match="bad.png"):
        tiny.embed_files(paths, strict=True)
    with pytest.raises(gtl.GtlIOError):
        tiny.embed_files([tmp_path / "missing.png"])

    cache = tmp_path / "cache"
    tiny.set_cache_dir(cache)
    out1, _ = tiny.embed_files(pngs)
    assert len([f for f in os.listdir(cache) if f.endswith(".feat")]) == 3
    out2, _ = tiny.embed_files(pngs)
    np.testing.assert_array_equal(out1, out2)
    tiny.set_cache_dir(None)


def test_image_helpers(pngs, rng):
    px = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    a = gtl.image_preprocess(px, 16)
    assert a.shape == (3, 16, 16)
    gray = gtl.image_preprocess(px[:, :, 0], 16)
    assert np.allclose(gray[0] * 0.26862954 + 0.48145466, gray[1] * 0.26130258 + 0.4578275,
                       atol=1e-5)
    with pytest.raises(gtl.InvalidArgument, match="uint8"):
        gtl.image_preprocess(px.astype(np.float32), 16)
    with pytest.raises(gtl.InvalidArgument, match="size"):
        gtl.image_load(pngs[0], 0)
    with pytest.raises(gtl.GtlIOError):
        gtl.image_load("/nonexistent/x.png")
    with pytest.raises(gtl.InvalidArgument, match="flags"):
        gtl.image_augment(pngs[0], 1 << 12, 1, 16)
    flags = gtl.Augment.RESIZED_CROP | gtl.Augment.FLIP | gtl.Augment.COLOR
    img, state = gtl.image_augment(pngs[0], flags, 5, 16)
    assert img.shape == (3, 16, 16) and state != 5
    again, state2 = gtl.image_augment(pngs[0], flags, 5, 16)
    np.testing.assert_array_equal(img, again)
    assert state2 == state
    plain, _ = gtl.image_augment(pngs[0], gtl.Augment.NONE, state, 16)
    np.testing.assert_array_equal(plain, gtl.image_load(pngs[0], 16))


def test_cnn(pngs, tmp_path):
    with gtl.Backbone(gtl.BackbonePreset.RESNET_SMALL) as bb:
        assert bb.image_size == 64 and bb.feature_dim == 256 and bb.trainable_blocks == 4
        with pytest.raises(gtl.InvalidArgument, match="does not apply"):
            bb.feature_parts = 2
        imgs = np.stack([gtl.image_load(p, 64) for p in pngs])
        feats = bb.embed(imgs)
        out, st = bb.embed_files(pngs)
        assert st == [gtl.Status.OK] * 3
        np.testing.assert_allclose(out, feats, rtol=1e-5, atol=1e-5)
        bb.num_classes = 3
        with gtl.Optimizer(gtl.OptimKind.SGD, lr=0.05) as opt:
            stats = bb.train_step(opt, imgs, [0, 1, 2])
        assert stats["loss"] > 0
        bb.save(tmp_path / "cnn.gtl")
        with gtl.Backbone.load(tmp_path / "cnn.gtl") as bb2:
            np.testing.assert_array_equal(bb2.embed(imgs), bb.embed(imgs))


def test_train_save_load(tiny, pngs, tmp_path):
    imgs = np.stack([gtl.image_load(p, 64) for p in pngs] * 2)
    labels = np.array([0, 1, 2, 0, 1, 2])
    with gtl.Optimizer(gtl.OptimKind.ADAM, lr=1e-3) as opt:
        with pytest.raises(gtl.BadState, match="NUM_CLASSES"):
            tiny.train_step(opt, imgs, labels)
        tiny.num_classes = 3
        tiny.trainable_blocks = 1
        first = tiny.train_step(opt, imgs, labels)
        for _ in range(5):
            last = tiny.train_step(opt, imgs, labels)
        assert last["loss"] < first["loss"]
        assert 0 <= last["accuracy"] <= 1 and last["grad_norm"] > 0
        assert last["lr"] == pytest.approx(1e-3)
        with pytest.raises(gtl.InvalidArgument, match="label"):
            tiny.train_step(opt, imgs, labels + 1)
    path = tmp_path / "bb.gtl"
    tiny.save(path)
    with gtl.Backbone.load(path) as bb2:
        assert bb2.settings() == tiny.settings()
        np.testing.assert_array_equal(bb2.embed(imgs), tiny.embed(imgs))
    with pytest.raises(gtl.FormatError):
        gtl.Backbone.load(pngs[0])


def _torch():
    return pytest.importorskip("torch")


def openai_visual(torch, w=64, layers=2, patch=8, grid=4, d=16):
    """A random OpenAI-named vision tower state dict (visual.*)."""
    g = torch.Generator().manual_seed(0)
    sd = {"visual.conv1.weight": torch.randn(w, 3, patch, patch, generator=g) * 0.05,
          "visual.class_embedding": torch.randn(w, generator=g) * 0.1,
          "visual.positional_embedding": torch.randn(grid * grid + 1, w, generator=g) * 0.1,
          "visual.ln_pre.weight": torch.ones(w), "visual.ln_pre.bias": torch.zeros(w),
          "visual.ln_post.weight": torch.ones(w), "visual.ln_post.bias": torch.zeros(w),
          "visual.proj": torch.randn(w, d, generator=g) * 0.1}
    for i in range(layers):
        b = f"visual.transformer.resblocks.{i}."
        for ln in ("ln_1", "ln_2"):
            sd[b + ln + ".weight"] = torch.ones(w)
            sd[b + ln + ".bias"] = torch.zeros(w)
        sd[b + "attn.in_proj_weight"] = torch.randn(3 * w, w, generator=g) * 0.05
        sd[b + "attn.in_proj_bias"] = torch.zeros(3 * w)
        sd[b + "attn.out_proj.weight"] = torch.randn(w, w, generator=g) * 0.05
        sd[b + "attn.out_proj.bias"] = torch.zeros(w)
        sd[b + "mlp.c_fc.weight"] = torch.randn(4 * w, w, generator=g) * 0.05
        sd[b + "mlp.c_fc.bias"] = torch.zeros(4 * w)
        sd[b + "mlp.c_proj.weight"] = torch.randn(w, 4 * w, generator=g) * 0.05
        sd[b + "mlp.c_proj.bias"] = torch.zeros(w)
    sd["logit_scale"] = torch.tensor(1.0)
    return sd


def run_converter(*args):
    return subprocess.run([sys.executable, CONVERTER] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=120)


def converter_module():
    spec = importlib.util.spec_from_file_location("convert_clip", CONVERTER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_convert_clip(tmp_path, capsys):
    torch = _torch()
    sd = openai_visual(torch)
    src, dst = tmp_path / "clip.pt", tmp_path / "clip.safetensors"
    torch.save({k: v.half() for k, v in sd.items()}, src)
    # The command line once in its own process; the other cases in this one
    # (each new process imports torch again).
    res = run_converter(src, dst, "--heads", 2)
    assert res.returncode == 0, res.stderr
    assert "2 layers, 2 heads" in res.stdout
    with gtl.Backbone.load(dst) as bb:
        assert bb.image_size == 32 and bb.feature_dim == 64 + 16
        assert np.isfinite(bb.embed(np.zeros((1, 3, 32, 32), np.float32))).all()
    conv = converter_module()
    # Width 64 without --heads: 64 / 64 = 1 head, still a valid tower; f16 storage.
    assert conv.main([str(src), str(dst), "--dtype", "f16"]) == 0
    with gtl.Backbone.load(dst) as bb:
        assert bb.feature_dim == 80
    assert conv.main([str(src), str(dst), "--heads", "3"]) == 1
    assert "do not divide" in capsys.readouterr().err
    # Not CLIP's plain ViT: refused, naming the entries.
    sd["visual.transformer.resblocks.0.ls_1.gamma"] = torch.ones(64)
    torch.save(sd, src)
    assert conv.main([str(src), str(dst)]) == 1
    assert "ls_1.gamma" in capsys.readouterr().err
    torch.save({"text_projection": torch.ones(2, 2)}, src)
    assert conv.main([str(src), str(dst)]) == 1
    assert "no vision tower" in capsys.readouterr().err
