#!/usr/bin/python3
"""Prepare the cross-modal emoji data set for the libgtl few-shot demo.

Four styles of the same Unicode emoji, one image per class per style:

    openmoji-black  sketch  OpenMoji black line-art SVG, rasterised here
    openmoji-color  rgb     OpenMoji colour SVG, rasterised here
    fluent-3d       rgb     Fluent Emoji 3D render, WebP 256x256, used in place
    noto            rgb     Google Noto PNG 64x64, used in place

Pipeline (docs/data.md has the details and the licences):
  1. npm pack the three pinned packages into <cache>/npm/, verify their sha512
     integrity, extract only the files needed into <cache>/src/.
  2. Match classes (codepoint sequences) across the packages: lower-case hex,
     FE0F dropped; skin tones, flags and keycaps excluded.
  3. Rasterise the OpenMoji SVGs with rsvg-convert (2 workers), drop classes
     with a blank image, fingerprint the line art to find sketch twins.
  4. Write manifest.csv, sketch_twins.csv and splits.json into <cache>/.

Python 3 standard library only. Idempotent: finished work is skipped and the
outputs are only rewritten when their content changes.
"""

import argparse
import base64
import concurrent.futures
import csv
import hashlib
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zlib

# ---------------------------------------------------------------------------
# Pinned inputs

PACKAGES = {
    "openmoji": {
        "spec": "openmoji@17.0.0",
        "tarball": "openmoji-17.0.0.tgz",
        "integrity": "sha512-EBnYrNGdcdw+OSXmENeNE1yBNRu6tOraTmoOyUbJkTmvT/+XETp8RZLSJFzD3lrPc5N9"
                     "CzsyPnRTk0Vp4UaI9w==",
        # metadata and licence files copied next to the images
        "extra": ["package/data/openmoji.json", "package/LICENSE.txt", "package/README.md"],
    },
    "fluent": {
        "spec": "@lobehub/fluent-emoji-3d@1.1.0",
        "tarball": "lobehub-fluent-emoji-3d-1.1.0.tgz",
        "integrity": "sha512-Wlq2lVStTnr8BDpIJ0pEnTKO4LuDxxqTEhTvRtD1DLRF0me7ogeRQjKoehDHXuVJ2Qaec"
                     "gl5wRBv60lUAG3h7g==",
        "extra": ["package/package.json", "package/README.md"],
    },
    "noto": {
        "spec": "emoji-datasource-google@16.0.0",
        "tarball": "emoji-datasource-google-16.0.0.tgz",
        "integrity": "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4Qx"
                     "ZkOPJCoT8DlPhfQ3A==",
        "extra": ["package/LICENSE", "package/README.md", "package/package.json"],
    },
}

# style -> (modality, package, directory inside the tarball, file extension)
STYLES = {
    "openmoji-color": ("rgb", "openmoji", "package/color/svg/", ".svg"),
    "fluent-3d": ("rgb", "fluent", "package/assets/", ".webp"),
    "noto": ("rgb", "noto", "package/img/google/64/", ".png"),
    "openmoji-black": ("sketch", "openmoji", "package/black/svg/", ".svg"),
}
STYLE_ORDER = ["openmoji-color", "fluent-3d", "noto", "openmoji-black"]
RASTERISED = ("openmoji-color", "openmoji-black")

DEFAULT_SIZE = 128          # raster size of the OpenMoji SVGs (see docs/data.md)
SIG_GRID = 32               # line-art fingerprint: SIG_GRID x SIG_GRID bits
SIG_INK = 0.25              # a fingerprint cell is "ink" above this mean coverage
DEFAULT_TWIN_DIST = 5       # near-twin threshold: Hamming distance of fingerprints (calibrated,
                            # docs/data.md: <= 5 colour-only or hair/ponytail details, 6-8 faces
                            # with different expressions and clock faces)
BLANK_MAX_FRACTION = 0.001  # blank: at most this fraction of pixels is neither white nor clear
QUICK_CLASSES = 200
STATE_VERSION = 1


class PrepError(Exception):
    """A failure with a message meant for the user; main() prints it and exits 1."""


# ---------------------------------------------------------------------------
# Codepoints: normalisation, filters, matching (pure functions, unit-tested)

SKIN_TONES = range(0x1F3FB, 0x1F400)
REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
TAGS = range(0xE0020, 0xE0080)
KEYCAP = 0x20E3
VS16 = 0xFE0F
HEX_DIGITS = "0123456789abcdefABCDEF"


def normalise_class(name):
    """'1F469-200D-1F4BB.svg' or '1f469-200d-1f4bb' -> '1f469-200d-1f4bb'.

    Lower-case hex, at least 4 digits per codepoint ('a9' -> '00a9'), FE0F
    (emoji presentation selector) dropped because the packages use it
    inconsistently. '_' is accepted as a separator too (Fluent names its tag
    sequences so). Raises ValueError for anything else.
    """
    base = os.path.basename(name)
    if "." in base:
        base = base[:base.index(".")]
    cps = []
    for part in base.replace("_", "-").split("-"):
        if not 1 <= len(part) <= 6 or part.strip(HEX_DIGITS):
            raise ValueError("not a codepoint sequence: %r" % name)
        cp = int(part, 16)
        if cp > 0x10FFFF:
            raise ValueError("not a codepoint sequence: %r" % name)
        if cp != VS16:
            cps.append(cp)
    if not cps:
        raise ValueError("empty codepoint sequence: %r" % name)
    return "-".join("%04x" % cp for cp in cps)


def class_key(cls):
    """Sort key: the codepoint sequence as integers (so 263a sorts before 1f600)."""
    return tuple(int(p, 16) for p in cls.split("-"))


def exclusion_reason(cls):
    """Why a normalised class is excluded, or None if it is kept.

    skin-tone: any Fitzpatrick modifier 1F3FB-1F3FF (the base emoji is kept);
    flag: regional-indicator pairs (country flags) and tag sequences (the
    black-flag subdivision flags such as England); keycap: anything with 20E3.
    Other flags (1F3F4 black flag, 1F3F3-200D-1F308 rainbow flag, 1F6A9) stay.
    """
    cps = class_key(cls)
    if any(cp in SKIN_TONES for cp in cps):
        return "skin-tone"
    if any(cp in REGIONAL_INDICATORS or cp in TAGS for cp in cps):
        return "flag"
    if KEYCAP in cps:
        return "keycap"
    return None


def pick_variant(raw_names):
    """Several raw file names that normalise to the same class: keep one.

    Prefer the fully-qualified form (most FE0F), then the lexicographically
    smallest name, so the choice is deterministic. Fluent has two such pairs
    (26a7 / 26a7-fe0f and 1f441-200d-1f5e8 / 1f441-fe0f-200d-1f5e8-fe0f).
    """
    return sorted(raw_names, key=lambda n: (-n.lower().split("-").count("fe0f"), n))[0]


def index_style(raw_names):
    """raw stems of one style -> ({class: raw stem}, {reason: count}, [collisions])."""
    by_class = {}
    dropped = {}
    for raw in raw_names:
        try:
            cls = normalise_class(raw)
        except ValueError:
            dropped["not-a-codepoint"] = dropped.get("not-a-codepoint", 0) + 1
            continue
        reason = exclusion_reason(cls)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        by_class.setdefault(cls, []).append(raw)
    chosen = {}
    collisions = []
    for cls, raws in by_class.items():
        chosen[cls] = pick_variant(raws)
        if len(raws) > 1:
            collisions.append((cls, sorted(raws), chosen[cls]))
    return chosen, dropped, sorted(collisions)


def match_classes(style_index):
    """{style: {class: raw}} -> sorted list of classes present in every style."""
    sets = [set(idx) for idx in style_index.values()]
    common = set.intersection(*sets) if sets else set()
    return sorted(common, key=class_key)


# ---------------------------------------------------------------------------
# Images: a minimal PNG reader (8-bit RGB/RGBA, non-interlaced: what
# rsvg-convert and the Noto set produce), a WebP size probe, raster statistics.

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class UnsupportedImage(Exception):
    pass


def png_size(data):
    """(width, height) from the IHDR chunk of PNG bytes."""
    if data[:8] != PNG_MAGIC or data[12:16] != b"IHDR":
        raise UnsupportedImage("not a PNG")
    return struct.unpack(">II", data[16:24])


PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}   # colour type -> bytes per pixel at depth 8


def read_png(data):
    """Decode PNG bytes -> (width, height, RGBA bytes).

    Deliberately minimal: bit depth 8, no interlace, colour types grey, RGB,
    palette, grey+alpha and RGBA (what rsvg-convert and the Noto set produce);
    anything else raises UnsupportedImage. CRCs are not checked.
    """
    if data[:8] != PNG_MAGIC:
        raise UnsupportedImage("not a PNG")
    pos = 8
    hdr = None
    idat = []
    palette = b""
    trns = b""
    while pos + 8 <= len(data):
        n, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if ctype == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", chunk)
        elif ctype == b"PLTE":
            palette = chunk
        elif ctype == b"tRNS":
            trns = chunk
        elif ctype == b"IDAT":
            idat.append(chunk)
        elif ctype == b"IEND":
            break
    if hdr is None:
        raise UnsupportedImage("PNG without IHDR")
    w, h, depth, colour, _, _, interlace = hdr
    if depth != 8 or colour not in PNG_CHANNELS or interlace != 0:
        raise UnsupportedImage("PNG depth %d colour type %d interlace %d"
                               % (depth, colour, interlace))
    bpp = PNG_CHANNELS[colour]
    stride = w * bpp
    raw = zlib.decompress(b"".join(idat))
    if len(raw) != h * (stride + 1):
        raise UnsupportedImage("PNG data size mismatch")
    out = bytearray(h * stride)
    prev = bytearray(stride)
    p = 0
    for y in range(h):
        ftype = raw[p]
        line = bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        if ftype == 1:          # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif ftype == 2:        # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ftype == 3:        # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ftype == 4:        # Paeth
            for i in range(stride):
                if i >= bpp:
                    a = line[i - bpp]
                    c = prev[i - bpp]
                else:
                    a = c = 0
                b = prev[i]
                pa = abs(b - c)
                pb = abs(a - c)
                pc = abs(a + b - 2 * c)
                if pa <= pb and pa <= pc:
                    pr = a
                elif pb <= pc:
                    pr = b
                else:
                    pr = c
                line[i] = (line[i] + pr) & 255
        elif ftype != 0:
            raise UnsupportedImage("PNG filter type %d" % ftype)
        out[y * stride:(y + 1) * stride] = line
        prev = line
    if colour == 6:
        return w, h, bytes(out)
    npx = w * h
    rgba = bytearray(npx * 4)
    if colour == 3:
        # palette index -> RGBA; tRNS holds alpha for the first entries
        lut = [bytes(palette[3 * i:3 * i + 3]).ljust(3, b"\0") +
               bytes([trns[i] if i < len(trns) else 255]) for i in range(256)]
        rgba = bytearray(b"".join(lut[i] for i in out))
    elif colour in (0, 4):
        grey = out[0::bpp]
        rgba[0::4] = grey
        rgba[1::4] = grey
        rgba[2::4] = grey
        rgba[3::4] = out[1::2] if colour == 4 else b"\xff" * npx
    else:
        rgba[0::4] = out[0::3]
        rgba[1::4] = out[1::3]
        rgba[2::4] = out[2::3]
        rgba[3::4] = b"\xff" * npx
    return w, h, bytes(rgba)


def webp_size(data):
    """(width, height) of WebP bytes from the VP8 / VP8L / VP8X header."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise UnsupportedImage("not a WebP")
    kind = data[12:16]
    if kind == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
    elif kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        w = 1 + (bits & 0x3FFF)
        h = 1 + ((bits >> 14) & 0x3FFF)
    elif kind == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        w &= 0x3FFF
        h &= 0x3FFF
    else:
        raise UnsupportedImage("unknown WebP chunk %r" % kind)
    return w, h


def ink_map(w, h, rgba):
    """Per-pixel 'ink' in [0, 1]: opacity times darkness (white or transparent = 0)."""
    ink = [0.0] * (w * h)
    for i in range(w * h):
        a = rgba[4 * i + 3]
        if a:
            r, g, b = rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]
            lum = (299 * r + 587 * g + 114 * b) / 1000.0
            ink[i] = (a / 255.0) * (1.0 - lum / 255.0)
    return ink


def count_marked(w, h, rgba, alpha_min=16, white_min=245):
    """Pixels that are neither (near) transparent nor (near) white."""
    n = 0
    for i in range(w * h):
        if rgba[4 * i + 3] >= alpha_min and min(rgba[4 * i:4 * i + 3]) < white_min:
            n += 1
    return n


def blank_limit(w, h):
    """Most marked pixels a blank raster may have: tolerates a few stray antialiased specks."""
    return int(w * h * BLANK_MAX_FRACTION)


def is_blank(w, h, rgba):
    """A raster is blank when (nearly) every pixel is (near) white or (near) transparent."""
    return count_marked(w, h, rgba) <= blank_limit(w, h)


def sketch_signature(w, h, ink, grid=SIG_GRID, level=SIG_INK):
    """Downsample an ink map to grid x grid cells (box average), binarise: an int of grid^2 bits.

    Bit (y * grid + x) is set when the cell's mean ink exceeds `level`.
    """
    sums = [0.0] * (grid * grid)
    counts = [0] * (grid * grid)
    for y in range(h):
        gy = y * grid // h
        row = y * w
        for x in range(w):
            cell = gy * grid + x * grid // w
            sums[cell] += ink[row + x]
            counts[cell] += 1
    sig = 0
    for cell in range(grid * grid):
        if counts[cell] and sums[cell] / counts[cell] > level:
            sig |= 1 << cell
    return sig


def hamming(a, b):
    return (a ^ b).bit_count()


def group_twins(signatures, max_dist):
    """{class: signature} -> list of twin groups (sorted lists of >= 2 classes).

    Two classes are twins when their fingerprints differ in at most max_dist
    bits; groups are the connected components (union-find), so a chain of
    near-twins ends up in one group. Groups are sorted by their first class.
    """
    classes = sorted(signatures, key=class_key)
    parent = {c: c for c in classes}

    def find(c):
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    # exact duplicates first (cheap), then pairwise near-duplicates
    by_sig = {}
    for c in classes:
        by_sig.setdefault(signatures[c], []).append(c)
    for members in by_sig.values():
        for c in members[1:]:
            parent[find(c)] = find(members[0])
    if max_dist > 0:
        reps = [m[0] for m in by_sig.values()]
        sigs = [signatures[c] for c in reps]
        for i in range(len(reps)):
            si = sigs[i]
            for j in range(i + 1, len(reps)):
                if (si ^ sigs[j]).bit_count() <= max_dist:      # inlined hamming()
                    ri, rj = find(reps[i]), find(reps[j])
                    if ri != rj:
                        parent[rj] = ri
    groups = {}
    for c in classes:
        groups.setdefault(find(c), []).append(c)
    out = [sorted(g, key=class_key) for g in groups.values() if len(g) > 1]
    return sorted(out, key=lambda g: class_key(g[0]))


def make_splits(classes, twin_groups, seed=0, base_fraction=0.7):
    """Seeded class split; every twin group lands entirely on one side.

    Units (a twin group or a single class) are shuffled with random.Random(seed)
    and assigned to base until base holds round(base_fraction * n) classes;
    a unit that would overshoot goes to novel. Deterministic for a given input.
    """
    classes = sorted(set(classes), key=class_key)
    member = set(classes)
    units = []
    seen = set()
    for g in twin_groups:
        g = [c for c in g if c in member]
        if g:
            units.append(sorted(g, key=class_key))
            seen.update(g)
    units += [[c] for c in classes if c not in seen]
    units.sort(key=lambda u: class_key(u[0]))
    random.Random(seed).shuffle(units)
    target = int(round(base_fraction * len(classes)))
    base, novel = [], []
    for u in units:
        if len(base) + len(u) <= target:
            base += u
        else:
            novel += u
    return {"seed": seed, "base_fraction": base_fraction,
            "base": sorted(base, key=class_key), "novel": sorted(novel, key=class_key)}


def quick_subset(classes, n, seed=0):
    """A fixed seeded sample of n classes (sorted) for --quick."""
    if n >= len(classes):
        return list(classes)
    ordered = sorted(classes, key=class_key)
    return sorted(random.Random(seed).sample(ordered, n), key=class_key)


# ---------------------------------------------------------------------------
# Small helpers

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sri_file(path, algo="sha512"):
    """Subresource-integrity string ('sha512-<base64>') of a file, as npm prints it."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return algo + "-" + base64.b64encode(h.digest()).decode()


def write_if_changed(path, text):
    """Write text atomically unless the file already holds exactly it. True if written."""
    data = text.encode()
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return True


class Progress:
    """A one-line text progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, total, label, stream=None):
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.done = 0
        self.t0 = time.monotonic()
        self.last = 0.0

    def step(self, n=1):
        self.done += n
        now = time.monotonic()
        if self.tty and (now - self.last > 0.1 or self.done == self.total):
            self.last = now
            width = 30
            fill = width * self.done // max(self.total, 1)
            self.stream.write("\r%-18s [%s%s] %d/%d %.0fs" % (
                self.label, "#" * fill, "." * (width - fill), self.done, self.total,
                now - self.t0))
            self.stream.flush()

    def close(self, summary):
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write("%s (%.1f s)\n" % (summary, time.monotonic() - self.t0))
        self.stream.flush()


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# Step 1: npm pack, verify, list and extract

NETWORK_HINTS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT",
                 "ENETUNREACH", "EHOSTUNREACH", "network", "proxy", "socket hang up")


def find_tool(name, override, install_hint):
    path = override or shutil.which(name)
    if not path or not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise PrepError("%s not found%s. %s" % (
            name, " at %s" % override if override else " on PATH", install_hint))
    return path


def npm_registry(npm):
    try:
        r = subprocess.run([npm, "config", "get", "registry"], capture_output=True, text=True,
                           timeout=60)
        return r.stdout.strip() or "https://registry.npmjs.org/"
    except (OSError, subprocess.SubprocessError):
        return "the npm registry"


def npm_error_summary(err):
    """The informative lines of npm's error output (code and message, no stack or log path)."""
    keep = [ln for ln in err.splitlines()
            if ("error code" in ln or "FetchError" in ln or "getaddrinfo" in ln)
            and " at " not in ln]
    return "\n".join(keep[:2]) or (err.splitlines()[0] if err else "")


def ensure_tarball(key, cache, args):
    """Pack one package into <cache>/npm/ unless a verified tarball is already there."""
    pkg = PACKAGES[key]
    npm_dir = os.path.join(cache, "npm")
    path = os.path.join(npm_dir, pkg["tarball"])
    if os.path.exists(path):
        got = sri_file(path)
        if got == pkg["integrity"]:
            return path, False
        log("%s: integrity mismatch (%s), packing again" % (pkg["tarball"], got[:24] + "..."))
        os.remove(path)
    npm = find_tool("npm", args.npm,
                    "Install it with 'apt-get install npm' (Debian/Ubuntu) or from "
                    "https://nodejs.org, or pass --npm PATH.")
    os.makedirs(npm_dir, exist_ok=True)
    cmd = [npm, "pack", "--json", "--pack-destination", npm_dir,
           "--fetch-retries=1", "--fetch-timeout=60000", pkg["spec"]]
    log("npm pack %s" % pkg["spec"])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=npm_dir)
    except subprocess.TimeoutExpired:
        raise PrepError("npm pack %s timed out after 900 s: is %s reachable?"
                        % (pkg["spec"], npm_registry(npm)))
    if r.returncode != 0:
        err = (r.stderr or r.stdout).strip()
        if any(h.lower() in err.lower() for h in NETWORK_HINTS):
            raise PrepError(
                "cannot reach the npm registry (%s) to fetch %s.\n%s\n"
                "Check the network or proxy (npm config get registry / https_proxy), or copy "
                "%s into %s by hand (it is verified against the pinned sha512 integrity)."
                % (npm_registry(npm), pkg["spec"], npm_error_summary(err), pkg["tarball"],
                   npm_dir))
        raise PrepError("npm pack %s failed (exit %d):\n%s" % (pkg["spec"], r.returncode, err))
    try:
        reported = json.loads(r.stdout)[0]["integrity"]
    except (ValueError, LookupError, TypeError):
        reported = None
    got = sri_file(path) if os.path.exists(path) else None
    if got is None:
        raise PrepError("npm pack %s did not produce %s" % (pkg["spec"], path))
    if got != pkg["integrity"] or (reported and reported != got):
        os.remove(path)
        raise PrepError("%s: integrity %s does not match the pinned %s (npm reported %s)"
                        % (pkg["tarball"], got, pkg["integrity"], reported))
    return path, True


def tar_listing(key, tarball, cache):
    """{member name: size} of a tarball, cached in <cache>/src/<key>/.listing.json."""
    pkg = PACKAGES[key]
    out_dir = os.path.join(cache, "src", key)
    lst = os.path.join(out_dir, ".listing.json")
    try:
        with open(lst) as f:
            saved = json.load(f)
        if saved.get("integrity") == pkg["integrity"]:
            return saved["members"]
    except (OSError, ValueError):
        pass
    members = {}
    with tarfile.open(tarball, "r:gz") as tf:
        for m in tf:
            if m.isfile():
                members[m.name] = m.size
    os.makedirs(out_dir, exist_ok=True)
    write_if_changed(lst, json.dumps({"integrity": pkg["integrity"], "members": members},
                                     sort_keys=True))
    return members


def extract_members(key, tarball, cache, wanted):
    """Extract wanted members (name -> size) into <cache>/src/<key>/, dropping 'package/'.

    Files already present with the right size are skipped; returns the count extracted.
    """
    out_dir = os.path.join(cache, "src", key)
    missing = {}
    for name, size in wanted.items():
        dst = os.path.join(out_dir, name[len("package/"):])
        if not (os.path.isfile(dst) and os.path.getsize(dst) == size):
            missing[name] = dst
    if not missing:
        return 0
    n = 0
    with tarfile.open(tarball, "r:gz") as tf:
        for m in tf:
            dst = missing.get(m.name)
            if dst is None or not m.isfile():
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            src = tf.extractfile(m)
            tmp = dst + ".tmp"
            with open(tmp, "wb") as f:
                shutil.copyfileobj(src, f)
            os.replace(tmp, dst)
            n += 1
    if n != len(missing):
        raise PrepError("%s: %d of %d needed files not found in the tarball"
                        % (PACKAGES[key]["tarball"], len(missing) - n, len(missing)))
    return n


def src_path(key, member):
    """Path relative to the cache dir of an extracted tarball member."""
    return os.path.join("src", key, member[len("package/"):])


# ---------------------------------------------------------------------------
# Step 3: rasterise and analyse (runs in worker processes)

def raster_job(job):
    """Render an SVG (unless a PNG of the right size exists) and analyse the PNG.

    job: dict(png, svg or None, size, rsvg, sketch, cached) with absolute paths;
    cached is {sha256, ...stats} from a previous run, reused when the PNG is unchanged.
    Returns dict(rendered, sha256, w, h, marked, blank, sig (hex or None), error).
    """
    png, svg, size = job["png"], job["svg"], job["size"]
    rendered = False
    try:
        if svg is not None:
            ok = False
            try:
                with open(png, "rb") as f:
                    ok = png_size(f.read(24)) == (size, size)
            except (OSError, UnsupportedImage, struct.error):
                ok = False
            if not ok:
                tmp = "%s.%d.tmp" % (png, os.getpid())
                r = subprocess.run([job["rsvg"], "-w", str(size), "-h", str(size), "-f", "png",
                                    "-o", tmp, svg], capture_output=True, text=True)
                if r.returncode != 0:
                    return {"error": "rsvg-convert %s: %s" % (svg, r.stderr.strip())}
                os.replace(tmp, png)
                rendered = True
        with open(png, "rb") as f:
            data = f.read()
        sha = hashlib.sha256(data).hexdigest()
        cached = job.get("cached")
        if cached and cached.get("sha256") == sha and cached.get("sketch") == job["sketch"]:
            res = dict(cached)
            res["rendered"] = rendered
            res["analysed"] = False
            return res
        w, h, rgba = read_png(data)
        marked = count_marked(w, h, rgba)
        sig = None
        if job["sketch"]:
            sig = "%x" % sketch_signature(w, h, ink_map(w, h, rgba))
        return {"rendered": rendered, "analysed": True, "sha256": sha, "w": w, "h": h,
                "marked": marked,
                "blank": marked <= blank_limit(w, h), "sig": sig, "sketch": job["sketch"]}
    except (OSError, UnsupportedImage, zlib.error) as e:
        return {"error": "%s: %s" % (png, e)}


# ---------------------------------------------------------------------------
# Main pipeline

def load_state(cache, size):
    path = os.path.join(cache, ".prepare-state.json")
    try:
        with open(path) as f:
            st = json.load(f)
        if st.get("version") == STATE_VERSION and st.get("size") == size:
            return st
    except (OSError, ValueError):
        pass
    return {"version": STATE_VERSION, "size": size, "images": {}}


def run_prepare(args):
    t_start = time.monotonic()
    cache = os.path.abspath(args.cache)
    os.makedirs(cache, exist_ok=True)
    size = args.size

    # 1. tarballs, listings
    tarballs = {}
    listings = {}
    for key in PACKAGES:
        tarballs[key], packed = ensure_tarball(key, cache, args)
        listings[key] = tar_listing(key, tarballs[key], cache)
        log("%-9s %s %s, %d files" % (key, PACKAGES[key]["tarball"],
                                      "packed" if packed else "cached, integrity ok",
                                      len(listings[key])))

    # 2. match classes
    style_index = {}
    report = {"styles": {}}
    for style in STYLE_ORDER:
        _, key, prefix, ext = STYLES[style]
        raws = [m[len(prefix):-len(ext)] for m in listings[key]
                if m.startswith(prefix) and m.endswith(ext) and "/" not in m[len(prefix):]]
        idx, dropped, collisions = index_style(raws)
        style_index[style] = idx
        report["styles"][style] = {"files": len(raws), "kept": len(idx), "dropped": dropped,
                                   "fe0f_collisions": [[c, r, k] for c, r, k in collisions]}
        log("%-15s %4d files, %4d classes after filters %s%s" % (
            style, len(raws), len(idx), json.dumps(dropped, sort_keys=True),
            "".join("; %s: %s -> %s" % (c, "/".join(r), k) for c, r, k in collisions)))
    common = match_classes(style_index)
    log("classes in all four styles (by name): %d" % len(common))
    report["common_by_name"] = len(common)
    classes = quick_subset(common, args.quick_classes, args.seed) if args.quick else common
    if args.quick:
        log("--quick: using %d of %d classes" % (len(classes), len(common)))

    # extract only the files of the selected classes, plus metadata and licences
    for key in PACKAGES:
        wanted = {m: listings[key][m] for m in PACKAGES[key]["extra"] if m in listings[key]}
        for style in STYLE_ORDER:
            _, skey, prefix, ext = STYLES[style]
            if skey == key:
                for c in classes:
                    m = prefix + style_index[style][c] + ext
                    wanted[m] = listings[key][m]
        n = extract_members(key, tarballs[key], cache, wanted)
        log("%-9s %d files needed, %d extracted" % (key, len(wanted), n))

    meta_path = os.path.join(cache, "src", "openmoji", "data", "openmoji.json")
    with open(meta_path, encoding="utf-8") as f:
        meta = {}
        for e in json.load(f):
            try:
                meta.setdefault(normalise_class(e["hexcode"]), e)
            except ValueError:
                pass

    # 3. rasterise the OpenMoji SVGs, analyse all PNGs (Noto included)
    state = load_state(cache, size)
    rsvg = None
    jobs = []
    files = {}  # (class, style) -> path relative to cache
    for c in classes:
        for style in STYLE_ORDER:
            _, key, prefix, ext = STYLES[style]
            member = prefix + style_index[style][c] + ext
            if style in RASTERISED:
                rel = os.path.join("png", "%s-%d" % (style, size), c + ".png")
                files[(c, style)] = rel
                jobs.append((rel, os.path.join(cache, src_path(key, member)),
                             style == "openmoji-black"))
            else:
                rel = src_path(key, member)
                files[(c, style)] = rel
                if ext == ".png":
                    jobs.append((rel, None, False))
    need_render = []
    for rel, svg, _ in jobs:
        if svg is None:
            continue
        try:
            with open(os.path.join(cache, rel), "rb") as f:
                if png_size(f.read(24)) == (size, size):
                    continue
        except (OSError, UnsupportedImage, struct.error):
            pass
        need_render.append(rel)
    if need_render:
        rsvg = find_tool("rsvg-convert", args.rsvg_convert,
                         "Install it with 'apt-get install librsvg2-bin' (Debian/Ubuntu), or pass "
                         "--rsvg-convert PATH.")
    for style in RASTERISED:
        os.makedirs(os.path.join(cache, "png", "%s-%d" % (style, size)), exist_ok=True)

    stats = {}
    errors = []
    bar = Progress(len(jobs), "rasterise+analyse")
    n_rendered = 0
    n_analysed = 0
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as ex:
        futs = {}
        for rel, svg, sketch in jobs:
            job = {"png": os.path.join(cache, rel), "svg": svg, "size": size, "rsvg": rsvg,
                   "sketch": sketch, "cached": state["images"].get(rel)}
            futs[ex.submit(raster_job, job)] = rel
        for fut in concurrent.futures.as_completed(futs):
            rel = futs[fut]
            res = fut.result()
            bar.step()
            if "error" in res:
                errors.append(res["error"])
                continue
            n_rendered += res.pop("rendered")
            n_analysed += res.pop("analysed")
            stats[rel] = res
    n_svg = sum(1 for j in jobs if j[1] is not None)
    bar.close("%d SVGs rendered, %d up to date; %d of %d PNGs analysed (others unchanged); "
              "%d errors" % (n_rendered, n_svg - n_rendered, n_analysed, len(jobs), len(errors)))
    if errors:
        raise PrepError("%d images failed:\n  %s" % (len(errors), "\n  ".join(errors[:20])))
    state["images"].update(stats)
    write_if_changed(os.path.join(cache, ".prepare-state.json"),
                     json.dumps(state, sort_keys=True, indent=0))

    # Fluent WebPs: not decodable with the standard library; check the header only.
    # (1fa90 "ringed planet" is 256x264 in 1.1.0: kept, the C library resizes.)
    odd_webp = {}
    for c in classes:
        rel = files[(c, "fluent-3d")]
        with open(os.path.join(cache, rel), "rb") as f:
            try:
                wh = webp_size(f.read(64))
            except UnsupportedImage as e:
                raise PrepError("%s: %s" % (rel, e))
        if wh != (256, 256):
            odd_webp[rel] = "%dx%d" % wh
    if odd_webp:
        log("note: Fluent files not 256x256 (kept): %s" % ", ".join(
            "%s %s" % kv for kv in sorted(odd_webp.items())))
    report["fluent_not_256"] = odd_webp

    blanks = sorted(rel for rel, s in stats.items() if s["blank"])
    blank_classes = set()
    for (c, style), rel in files.items():
        if rel in stats and stats[rel]["blank"]:
            blank_classes.add(c)
    for rel in blanks:
        log("blank image: %s" % rel)
    final = [c for c in classes if c not in blank_classes]
    report["blank_images"] = blanks
    report["classes_all_four_styles"] = len(final)

    # 4. sketch twins
    sigs = {c: int(stats[files[(c, "openmoji-black")]]["sig"], 16) for c in final}
    twins = group_twins(sigs, args.twin_dist)
    exact = group_twins(sigs, 0)
    exact_members = {c for g in exact for c in g}

    # 5. splits
    splits = make_splits(final, twins, seed=args.seed, base_fraction=args.base_fraction)
    splits["quick"] = bool(args.quick)
    splits["n_classes"] = len(final)
    splits["twin_groups_on_one_side"] = True

    # 6. outputs: manifest, twins, splits, report
    class_id = {c: i for i, c in enumerate(final)}
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["path", "class", "class_id", "modality", "style", "group", "sha256"])
    per_style = {s: 0 for s in STYLE_ORDER}
    for c in final:
        group = meta.get(c, {}).get("group", "")
        for style in STYLE_ORDER:
            rel = files[(c, style)]
            sha = stats[rel]["sha256"] if rel in stats else sha256_file(os.path.join(cache, rel))
            wr.writerow([rel, c, class_id[c], STYLES[style][0], style, group, sha])
            per_style[style] += 1
    wrote = {}
    wrote["manifest.csv"] = write_if_changed(os.path.join(cache, "manifest.csv"), buf.getvalue())

    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["class", "twin_group", "exact", "annotation"])
    for gi, g in enumerate(twins):
        for c in g:
            wr.writerow([c, gi, int(c in exact_members), meta.get(c, {}).get("annotation", "")])
    wrote["sketch_twins.csv"] = write_if_changed(os.path.join(cache, "sketch_twins.csv"),
                                                 buf.getvalue())
    wrote["splits.json"] = write_if_changed(os.path.join(cache, "splits.json"),
                                            json.dumps(splits, indent=1) + "\n")

    groups = {}
    for c in final:
        g = meta.get(c, {}).get("group", "")
        groups[g] = groups.get(g, 0) + 1
    report.update({
        "quick": bool(args.quick), "size": size, "per_style": per_style,
        "groups": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
        "twin_dist": args.twin_dist, "twin_groups": len(twins),
        "twin_classes": sum(len(g) for g in twins),
        "exact_twin_groups": len(exact), "exact_twin_classes": len(exact_members),
        "largest_twin_group": max((len(g) for g in twins), default=0),
        "split": {"base": len(splits["base"]), "novel": len(splits["novel"])},
    })
    write_if_changed(os.path.join(cache, "report.json"), json.dumps(report, indent=1) + "\n")

    for name, w in wrote.items():
        log("%s %s" % (name, "written" if w else "unchanged"))
    log("per style: %s" % ", ".join("%s %d" % kv for kv in per_style.items()))
    log("groups: %s" % ", ".join("%s %d" % kv for kv in report["groups"].items()))
    log("sketch twins (Hamming <= %d on %dx%d): %d groups, %d classes (exact: %d groups, "
        "%d classes; largest group %d)" % (
            args.twin_dist, SIG_GRID, SIG_GRID, len(twins), report["twin_classes"], len(exact),
            len(exact_members), report["largest_twin_group"]))
    log("split (seed %d): %d base, %d novel" % (args.seed, len(splits["base"]),
                                                 len(splits["novel"])))
    log("done: %d classes in all four styles, %d blank images dropped, %.1f s, cache %s" % (
        len(final), len(blanks), time.monotonic() - t_start, cache))
    return 0


def run_check(args):
    """Verify the tarballs' integrity and every manifest file's sha256. No network."""
    cache = os.path.abspath(args.cache)
    bad = []
    for key, pkg in PACKAGES.items():
        path = os.path.join(cache, "npm", pkg["tarball"])
        if not os.path.exists(path):
            bad.append("missing %s" % path)
        elif sri_file(path) != pkg["integrity"]:
            bad.append("integrity mismatch: %s" % path)
    manifest = os.path.join(cache, "manifest.csv")
    n = 0
    if not os.path.exists(manifest):
        bad.append("missing %s (run without --check first)" % manifest)
    else:
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
        bar = Progress(len(rows), "check")
        for row in rows:
            path = os.path.join(cache, row["path"])
            if not os.path.exists(path):
                bad.append("missing %s" % row["path"])
            elif sha256_file(path) != row["sha256"]:
                bad.append("sha256 mismatch: %s" % row["path"])
            n += 1
            bar.step()
        bar.close("checked %d manifest files and %d tarballs" % (n, len(PACKAGES)))
    for name in ("sketch_twins.csv", "splits.json"):
        if not os.path.exists(os.path.join(cache, name)):
            bad.append("missing %s" % name)
    if bad:
        raise PrepError("cache check failed (%d problems):\n  %s" % (len(bad),
                                                                    "\n  ".join(bad[:30])))
    log("cache OK: %s" % cache)
    return 0


def default_cache():
    # examples/data/prepare_emoji.py -> <repo>/data-cache
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "data-cache")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Prepare the cross-modal emoji data set (docs/data.md).")
    p.add_argument("--cache", default=default_cache(),
                   help="cache and output directory (default: <repo>/data-cache)")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help="raster size of the OpenMoji SVGs in pixels (default %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument("--base-fraction", type=float, default=0.7,
                   help="fraction of classes in the base split (default 0.7)")
    p.add_argument("--twin-dist", type=int, default=DEFAULT_TWIN_DIST,
                   help="max Hamming distance of %dx%d line-art fingerprints for sketch twins "
                        "(default %%(default)s)" % (SIG_GRID, SIG_GRID))
    p.add_argument("--quick", action="store_true",
                   help="prepare a fixed subset of classes (for CI)")
    p.add_argument("--quick-classes", type=int, default=QUICK_CLASSES,
                   help="classes in --quick mode (default %(default)s)")
    p.add_argument("--check", action="store_true",
                   help="verify the checksums of an existing cache and exit")
    p.add_argument("--npm", help="path of npm (default: from PATH)")
    p.add_argument("--rsvg-convert", help="path of rsvg-convert (default: from PATH)")
    args = p.parse_args(argv)
    if args.size < SIG_GRID or args.size % SIG_GRID:
        p.error("--size must be a positive multiple of %d" % SIG_GRID)
    if not 0.0 < args.base_fraction < 1.0:
        p.error("--base-fraction must be in (0, 1)")
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        return run_check(args) if args.check else run_prepare(args)
    except PrepError as e:
        log("prepare_emoji: error: %s" % e)
        return 1
    except KeyboardInterrupt:
        log("prepare_emoji: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
