"""Unit tests of examples/data/prepare_emoji.py (no network).

Run: /usr/bin/python3 -m pytest -q test/tools
The end-to-end test builds three tiny synthetic npm tarballs, pins their
integrity in place of the real ones and runs the whole pipeline offline; it
needs rsvg-convert and is skipped without it.
"""

import base64
import hashlib
import io
import json
import os
import shutil
import struct
import sys
import tarfile
import zlib

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "data"))

import prepare_emoji as pe  # noqa: E402


# ---------------------------------------------------------------------------
# helpers: a tiny PNG encoder with selectable filters, synthetic rasters

def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def encode_png(w, h, pixels, colour=6, filters=(0,), palette=None, trns=None):
    """pixels: bytes in the colour type's layout; filters cycle over the rows."""
    bpp = pe.PNG_CHANNELS[colour]
    stride = w * bpp
    raw = bytearray()
    prev = bytes(stride)
    for y in range(h):
        line = pixels[y * stride:(y + 1) * stride]
        f = filters[y % len(filters)]
        enc = bytearray(stride)
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = (0, a, b, (a + b) >> 1, _paeth(a, b, c))[f]
            enc[i] = (line[i] - pred) & 255
        raw.append(f)
        raw += enc
        prev = line

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    out = pe.PNG_MAGIC + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")


def canvas(w, h):
    return bytearray(w * h * 4)        # transparent


def draw_rect(px, w, x0, y0, x1, y1, rgba=(0, 0, 0, 255)):
    for y in range(y0, y1):
        for x in range(x0, x1):
            px[4 * (y * w + x):4 * (y * w + x) + 4] = bytes(rgba)


def outline(px, w, x0, y0, x1, y1, t=3):
    draw_rect(px, w, x0, y0, x1, y0 + t)
    draw_rect(px, w, x0, y1 - t, x1, y1)
    draw_rect(px, w, x0, y0, x0 + t, y1)
    draw_rect(px, w, x1 - t, y0, x1, y1)


def sig_of(px, w=64, h=64):
    return pe.sketch_signature(w, h, pe.ink_map(w, h, bytes(px)))


# ---------------------------------------------------------------------------
# codepoints

def test_normalise_class():
    assert pe.normalise_class("1F600.svg") == "1f600"
    assert pe.normalise_class("1F469-200D-1F4BB") == "1f469-200d-1f4bb"
    assert pe.normalise_class("img/google/64/2764-fe0f.png") == "2764"
    assert pe.normalise_class("1f441-fe0f-200d-1f5e8-fe0f") == "1f441-200d-1f5e8"
    assert pe.normalise_class("a9-fe0f.webp") == "00a9"          # Fluent short form
    assert pe.normalise_class("00A9") == "00a9"
    assert pe.normalise_class("1f3f4-e0067_e0062_e0065") == "1f3f4-e0067-e0062-e0065"
    for bad in ["", "fe0f", "0x1f600", "+1f600", "1f600--200d", "zz", "1234567", "110000",
                " 1f600", "1f60 0", "LICENSE"]:
        with pytest.raises(ValueError):
            pe.normalise_class(bad)


def test_class_key_sorts_by_codepoint():
    assert sorted(["1f600", "263a", "00a9", "1f600-200d-2642"], key=pe.class_key) == \
        ["00a9", "263a", "1f600", "1f600-200d-2642"]


@pytest.mark.parametrize("name, reason", [
    ("1f44d", None),
    ("1f44d-1f3fb", "skin-tone"),
    ("1f469-1f3ff-200d-1f4bb", "skin-tone"),
    ("1f3fd", "skin-tone"),
    ("1f1fa-1f1f8", "flag"),
    ("1f3f4-e0067-e0062-e0065-e006e-e0067-e007f", "flag"),
    ("0023-20e3", "keycap"),
    ("002a-20e3", "keycap"),
    ("1f3f4", None),                    # black flag itself is kept
    ("1f3f3-200d-1f308", None),         # rainbow flag
    ("1f3f4-200d-2620", None),          # pirate flag
    ("1f6a9", None),
    ("1f469-200d-1f4bb", None),
])
def test_exclusion_reason(name, reason):
    assert pe.exclusion_reason(pe.normalise_class(name)) == reason


def test_pick_variant_prefers_fully_qualified():
    assert pe.pick_variant(["26a7", "26a7-fe0f"]) == "26a7-fe0f"
    assert pe.pick_variant(["1f441-fe0f-200d-1f5e8-fe0f", "1f441-200d-1f5e8"]) == \
        "1f441-fe0f-200d-1f5e8-fe0f"
    assert pe.pick_variant(["a9-fe0f", "00a9-fe0f"]) == "00a9-fe0f"
    assert pe.pick_variant(["x", "y"]) == pe.pick_variant(["y", "x"])


def test_index_and_match():
    openmoji = ["1F600", "2764-FE0F", "1F44D-1F3FB", "1F1FA-1F1F8", "0023-20E3", "26A7-FE0F",
                "E000"]
    fluent = ["1f600", "2764-fe0f", "26a7", "26a7-fe0f", "1f3f4-e0067_e0062_e0077_e006c_e0073",
              "readme"]
    noto = ["1f600", "2764-fe0f", "26a7-fe0f", "1f44d"]
    om, om_drop, om_coll = pe.index_style(openmoji)
    assert om == {"1f600": "1F600", "2764": "2764-FE0F", "26a7": "26A7-FE0F", "e000": "E000"}
    assert om_drop == {"skin-tone": 1, "flag": 1, "keycap": 1}
    assert om_coll == []
    fl, fl_drop, fl_coll = pe.index_style(fluent)
    assert fl["26a7"] == "26a7-fe0f"
    assert fl_coll == [("26a7", ["26a7", "26a7-fe0f"], "26a7-fe0f")]
    assert fl_drop == {"flag": 1, "not-a-codepoint": 1}
    no, _, _ = pe.index_style(noto)
    assert pe.match_classes({"a": om, "b": fl, "c": no}) == ["26a7", "2764", "1f600"]


def test_quick_subset_is_deterministic():
    classes = ["%04x" % (0x1f300 + i) for i in range(500)]
    a = pe.quick_subset(classes, 200, seed=0)
    assert a == pe.quick_subset(list(reversed(classes)), 200, seed=0)
    assert a != pe.quick_subset(classes, 200, seed=1)
    assert len(set(a)) == 200 and a == sorted(a, key=pe.class_key)
    assert pe.quick_subset(classes[:10], 200) == classes[:10]


# ---------------------------------------------------------------------------
# images

def _gradient(w, h, bpp):
    return bytes((x * 37 + y * 11 + c * 101 + (x * y) % 7) & 255
                 for y in range(h) for x in range(w) for c in range(bpp))


@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)])
def test_read_png_rgba_all_filters(filters):
    w, h = 13, 9
    px = _gradient(w, h, 4)
    assert pe.read_png(encode_png(w, h, px, 6, filters)) == (w, h, px)


def test_read_png_other_colour_types():
    w, h = 5, 4
    rgb = _gradient(w, h, 3)
    _, _, out = pe.read_png(encode_png(w, h, rgb, 2, (4, 1)))
    assert out[0::4] == rgb[0::3] and out[2::4] == rgb[2::3] and out[3::4] == b"\xff" * 20
    ga = _gradient(w, h, 2)
    _, _, out = pe.read_png(encode_png(w, h, ga, 4, (2, 3)))
    assert out[0::4] == ga[0::2] and out[1::4] == ga[0::2] and out[3::4] == ga[1::2]
    grey = _gradient(w, h, 1)
    _, _, out = pe.read_png(encode_png(w, h, grey, 0, (1,)))
    assert out[2::4] == grey and out[3::4] == b"\xff" * 20
    pal = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])
    idx = bytes(i % 3 for i in range(w * h))
    _, _, out = pe.read_png(encode_png(w, h, idx, 3, (0,), palette=pal, trns=bytes([0])))
    assert out[:8] == bytes([255, 0, 0, 0, 0, 255, 0, 255])


def test_read_png_rejects_unsupported():
    good = encode_png(2, 2, bytes(16), 6)
    with pytest.raises(pe.UnsupportedImage):
        pe.read_png(b"GIF89a" + good[6:])
    bad = bytearray(good)
    bad[24] = 16                        # bit depth 16
    with pytest.raises(pe.UnsupportedImage):
        pe.read_png(bytes(bad))
    assert pe.png_size(good) == (2, 2)


def test_webp_size():
    vp8x = b"RIFF\0\0\0\0WEBPVP8X" + bytes(8) + (255).to_bytes(3, "little") + \
        (263).to_bytes(3, "little")
    assert pe.webp_size(vp8x) == (256, 264)
    bits = 99 | (49 << 14)
    vp8l = b"RIFF\0\0\0\0WEBPVP8L" + bytes(4) + b"\x2f" + bits.to_bytes(4, "little")
    assert pe.webp_size(vp8l) == (100, 50)
    vp8 = b"RIFF\0\0\0\0WEBPVP8 " + bytes(10) + struct.pack("<HH", 64, 32)
    assert pe.webp_size(vp8) == (64, 32)
    with pytest.raises(pe.UnsupportedImage):
        pe.webp_size(b"RIFF\0\0\0\0WAVEfmt ")


def test_blank_detection():
    w = h = 64
    assert pe.is_blank(w, h, bytes(canvas(w, h)))                       # transparent
    assert pe.is_blank(w, h, b"\xff" * (w * h * 4))                     # opaque white
    px = canvas(w, h)
    draw_rect(px, w, 10, 10, 12, 12, (0, 0, 0, 8))                      # nearly transparent
    draw_rect(px, w, 30, 30, 32, 32, (250, 250, 250, 255))              # nearly white
    draw_rect(px, w, 50, 50, 51, 52, (0, 0, 0, 255))                    # a 2-pixel speck
    assert pe.is_blank(w, h, bytes(px))
    outline(px, w, 8, 8, 56, 56)
    assert not pe.is_blank(w, h, bytes(px))
    col = canvas(w, h)
    draw_rect(col, w, 20, 20, 40, 40, (255, 200, 0, 255))               # yellow is not white
    assert not pe.is_blank(w, h, bytes(col))


def test_sketch_signature_and_twins():
    w = 64
    square = canvas(w, w)
    outline(square, w, 8, 8, 56, 56)
    square_red = canvas(w, w)                                   # colour-only twin: a dark red
    outline(square_red, w, 8, 8, 56, 56)                        # line on a white fill
    for i in range(len(square_red) // 4):
        if square_red[4 * i + 3]:
            square_red[4 * i:4 * i + 4] = bytes([60, 0, 0, 255])
        elif 9 * 64 * 4 < 4 * i < 55 * 64 * 4:
            square_red[4 * i:4 * i + 4] = bytes([255, 255, 255, 255])
    square_dot = bytearray(square)                              # near twin: one extra dot
    draw_rect(square_dot, w, 30, 30, 34, 34)
    circle = canvas(w, w)
    for y in range(w):
        for x in range(w):
            if 20 ** 2 <= (x - 32) ** 2 + (y - 32) ** 2 <= 23 ** 2:
                circle[4 * (y * w + x):4 * (y * w + x) + 4] = b"\0\0\0\xff"
    cross = canvas(w, w)
    draw_rect(cross, w, 30, 4, 34, 60)
    draw_rect(cross, w, 4, 30, 60, 34)
    sigs = {"25a1": sig_of(square), "1f7e5": sig_of(square_red), "2b1c": sig_of(square_dot),
            "25cb": sig_of(circle), "271a": sig_of(cross)}
    assert sigs["25a1"] == sigs["1f7e5"]
    d_dot = pe.hamming(sigs["25a1"], sigs["2b1c"])
    assert 0 < d_dot <= 4
    assert pe.hamming(sigs["25a1"], sigs["25cb"]) > 20
    assert pe.group_twins(sigs, 0) == [["25a1", "1f7e5"]]
    assert pe.group_twins(sigs, d_dot) == [["25a1", "2b1c", "1f7e5"]]
    assert pe.group_twins(sigs, 1000) == [sorted(sigs, key=pe.class_key)]


def test_group_twins_is_transitive():
    sigs = {"0041": 0b0000, "0042": 0b0001, "0043": 0b0011, "0044": 0b1111_0000_0000}
    assert pe.group_twins(sigs, 1) == [["0041", "0042", "0043"]]
    assert pe.group_twins(sigs, 0) == []


# ---------------------------------------------------------------------------
# splits

def _classes(n):
    return ["%04x" % (0x1f300 + i) for i in range(n)]


def test_splits_deterministic_and_twins_together():
    classes = _classes(300)
    twins = [classes[0:10], classes[50:53], [classes[100], classes[250]]]
    a = pe.make_splits(classes, twins, seed=0, base_fraction=0.7)
    b = pe.make_splits(list(reversed(classes)), list(reversed(twins)), seed=0, base_fraction=0.7)
    assert a == b
    assert len(a["base"]) == 210 and len(a["novel"]) == 90
    assert set(a["base"]).isdisjoint(a["novel"])
    assert set(a["base"]) | set(a["novel"]) == set(classes)
    for g in twins:
        assert set(g) <= set(a["base"]) or set(g) <= set(a["novel"])
    c = pe.make_splits(classes, twins, seed=1, base_fraction=0.7)
    assert c["base"] != a["base"]
    assert a["seed"] == 0 and c["seed"] == 1


def test_splits_with_a_big_twin_group():
    classes = _classes(20)
    a = pe.make_splits(classes, [classes[:15]], seed=3, base_fraction=0.5)
    assert set(classes[:15]) <= set(a["novel"])      # would overshoot base: goes to novel
    assert len(a["base"]) == 5


# ---------------------------------------------------------------------------
# small helpers and error paths (no network)

def test_write_if_changed(tmp_path):
    p = str(tmp_path / "f.txt")
    assert pe.write_if_changed(p, "a\n")
    mtime = os.stat(p).st_mtime_ns
    assert not pe.write_if_changed(p, "a\n")
    assert os.stat(p).st_mtime_ns == mtime
    assert pe.write_if_changed(p, "b\n")


def test_progress_quiet_without_tty():
    buf = io.StringIO()
    bar = pe.Progress(3, "x", stream=buf)
    for _ in range(3):
        bar.step()
    bar.close("3 things done")
    assert buf.getvalue().startswith("3 things done (") and "\r" not in buf.getvalue()


def test_missing_npm_is_reported(tmp_path, capsys):
    rc = pe.main(["--cache", str(tmp_path / "c"), "--npm", str(tmp_path / "no-npm")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "npm not found" in err and "apt-get install npm" in err


def test_check_on_empty_cache_fails(tmp_path, capsys):
    assert pe.main(["--cache", str(tmp_path), "--check"]) == 1
    assert "missing" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# end to end on synthetic packages (offline)

SVG = '<svg viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">%s</svg>'
LINE = '<g fill="none" stroke="#000" stroke-width="2">%s</g>'
SHAPES = {
    "1F600": '<circle cx="36" cy="36" r="23"/><circle cx="28" cy="30" r="2"/>',
    "2764": '<path d="M36 56 L14 32 A11 11 0 0 1 36 20 A11 11 0 0 1 58 32 Z"/>',
    "1F499": '<path d="M36 56 L14 32 A11 11 0 0 1 36 20 A11 11 0 0 1 58 32 Z"/>',
    "1F7E5": '<rect x="14" y="14" width="44" height="44"/>',
    "1F7E6": '<rect x="14" y="14" width="44" height="44"/>',
    "2B50": '<path d="M36 12 L43 30 L62 30 L47 42 L53 60 L36 49 L19 60 L25 42 L10 30 L29 30 Z"/>',
    "1F195": None,      # empty line art, like the real OpenMoji 1F195
    "1F3C3": '<path d="M20 60 L36 36 L52 60 M36 36 L36 14"/>',
}
COLOURS = {"2764": "#d22", "1F499": "#22d", "1F7E5": "#d22", "1F7E6": "#22d"}


def _add(tf, name, data):
    ti = tarfile.TarInfo("package/" + name)
    ti.size = len(data)
    tf.addfile(ti, io.BytesIO(data))


def _tarball(path, files):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            _add(tf, name, data)
    h = hashlib.sha512(open(path, "rb").read()).digest()
    return "sha512-" + base64.b64encode(h).decode()


def _webp_256():
    return b"RIFF\0\0\0\0WEBPVP8X" + bytes(8) + (255).to_bytes(3, "little") * 2 + bytes(16)


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    rsvg = shutil.which("rsvg-convert")
    if not rsvg:
        pytest.skip("rsvg-convert not installed (apt-get install librsvg2-bin)")
    cache = tmp_path / "cache"
    (cache / "npm").mkdir(parents=True)
    om = {"data/openmoji.json": json.dumps(
        [{"hexcode": k, "group": "test", "annotation": k.lower()} for k in SHAPES]).encode(),
        "LICENSE.txt": b"CC BY-SA 4.0", "README.md": b"r"}
    for code, shape in SHAPES.items():
        black = SVG % (LINE % shape if shape else "")
        fill = COLOURS.get(code, "#fc0")
        colour = SVG % ('<g fill="%s" stroke="#000" stroke-width="2">%s</g>'
                        % (fill, shape or '<circle cx="36" cy="36" r="20"/>'))
        om["black/svg/%s.svg" % code] = black.encode()
        om["color/svg/%s.svg" % code] = colour.encode()
    om["black/svg/1F44D-1F3FB.svg"] = om["color/svg/1F44D-1F3FB.svg"] = (SVG % "").encode()
    px = bytearray(64 * 64 * 4)
    draw_rect(px, 64, 10, 10, 50, 50, (200, 50, 50, 255))
    noto_png = encode_png(64, 64, bytes(px), 6, (1, 4))
    classes = [k.lower() for k in SHAPES]
    fl = {"assets/%s.webp" % c: _webp_256() for c in classes}
    fl["assets/2764-fe0f.webp"] = _webp_256()           # fe0f collision like 26a7
    fl["package.json"] = b"{}"
    fl["README.md"] = b"r"
    no = {"img/google/64/%s.png" % c: noto_png for c in classes}
    no["LICENSE"] = no["README.md"] = no["package.json"] = b"x"
    pkgs = {}
    for key, files in (("openmoji", om), ("fluent", fl), ("noto", no)):
        pkg = dict(pe.PACKAGES[key])
        pkg["integrity"] = _tarball(str(cache / "npm" / pkg["tarball"]), files)
        pkgs[key] = pkg
    monkeypatch.setattr(pe, "PACKAGES", pkgs)
    return cache


def _run(cache, *extra):
    return pe.main(["--cache", str(cache), "--npm", "/nonexistent/npm", "--size", "64",
                    "--jobs", "2", "--base-fraction", "0.5"] + list(extra))


def test_end_to_end_synthetic(synthetic, capsys):
    cache = synthetic
    assert _run(cache) == 0
    err = capsys.readouterr().err
    assert "blank image: png/openmoji-black-64/1f195.png" in err
    import csv
    rows = list(csv.DictReader(open(cache / "manifest.csv")))
    classes = sorted({r["class"] for r in rows}, key=pe.class_key)
    assert "1f195" not in classes and "1f44d-1f3fb" not in classes
    assert len(classes) == len(SHAPES) - 1 and len(rows) == 4 * len(classes)
    assert {r["style"] for r in rows} == set(pe.STYLE_ORDER)
    assert [int(r["class_id"]) for r in rows[::4]] == list(range(len(classes)))
    heart = [r for r in rows if r["class"] == "2764" and r["style"] == "fluent-3d"][0]
    assert heart["path"] == "src/fluent/assets/2764-fe0f.webp"
    for r in rows:
        assert hashlib.sha256(open(cache / r["path"], "rb").read()).hexdigest() == r["sha256"]
    twins = list(csv.DictReader(open(cache / "sketch_twins.csv")))
    groups = {}
    for t in twins:
        groups.setdefault(t["twin_group"], []).append(t["class"])
    assert sorted(groups.values()) == [["1f7e5", "1f7e6"], ["2764", "1f499"]]
    splits = json.load(open(cache / "splits.json"))
    for g in groups.values():
        assert set(g) <= set(splits["base"]) or set(g) <= set(splits["novel"])
    assert sorted(splits["base"] + splits["novel"], key=pe.class_key) == classes

    # rerun: nothing rendered or rewritten; --check passes
    manifest_mtime = os.stat(cache / "manifest.csv").st_mtime_ns
    assert _run(cache, "--rsvg-convert", "/nonexistent/rsvg-convert") == 0
    err = capsys.readouterr().err
    assert "0 SVGs rendered" in err and "manifest.csv unchanged" in err
    assert os.stat(cache / "manifest.csv").st_mtime_ns == manifest_mtime
    assert _run(cache, "--check") == 0

    # a corrupted file fails --check; a missing raster needs rsvg-convert
    with open(cache / rows[0]["path"], "ab") as f:
        f.write(b"x")
    assert _run(cache, "--check") == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    os.remove(cache / rows[0]["path"])
    assert _run(cache, "--rsvg-convert", "/nonexistent/rsvg-convert") == 1
    err = capsys.readouterr().err
    assert "rsvg-convert not found" in err and "librsvg2-bin" in err
    assert _run(cache) == 0


def test_rsvg_raster_matches_pil(tmp_path):
    """Cross-check the minimal PNG reader on a real rsvg-convert raster (if PIL is there)."""
    rsvg = shutil.which("rsvg-convert")
    if not rsvg:
        pytest.skip("rsvg-convert not installed")
    Image = pytest.importorskip("PIL.Image")
    svg = tmp_path / "a.svg"
    svg.write_text(SVG % ('<g fill="#fc0" stroke="#000" stroke-width="2">%s</g>'
                          % SHAPES["2B50"]))
    png = tmp_path / "a.png"
    import subprocess
    subprocess.run([rsvg, "-w", "48", "-h", "48", "-o", str(png), str(svg)], check=True)
    w, h, rgba = pe.read_png(png.read_bytes())
    assert (w, h) == (48, 48)
    assert rgba == Image.open(str(png)).convert("RGBA").tobytes()
