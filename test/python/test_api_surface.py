"""The bindings declare exactly the C API: the functions exported by libgtl.so,
the prototypes in include/gtl/*.h and the table in gtl/_lib.py must agree, so a
header change cannot silently break the bindings."""
import ctypes
import os
import re
import shutil
import subprocess
import sys

import pytest

import gtl
from gtl import _lib
from conftest import ROOT

HEADER_DIR = os.path.join(ROOT, "include", "gtl")
PROTO = re.compile(r"GTL_API\s+(?:GTL_DEPRECATED\([^)]*\)\s*)?"
                   r"([^;{]*?)\b(gtl_\w+)\s*\(([^)]*)\)\s*;", re.S)


def header_prototypes(files=None):
    """{name: (return type, [parameter declarations])} of every GTL_API prototype
    in include/gtl/*.h (or in the given header files)."""
    out = {}
    for fn in sorted(files or os.listdir(HEADER_DIR)):
        if not fn.endswith(".h"):
            continue
        with open(os.path.join(HEADER_DIR, fn)) as f:
            text = f.read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"//[^\n]*", " ", text)
        text = re.sub(r"^\s*#[^\n]*(\\\n[^\n]*)*", " ", text, flags=re.M)
        for ret, name, params in PROTO.findall(text):
            params = " ".join(params.split())
            plist = [] if params in ("", "void") else [p.strip() for p in params.split(",")]
            assert name not in out, f"{name} declared twice in the headers"
            out[name] = (" ".join(ret.split()), plist)
    return out


def exported_symbols():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    res = subprocess.run([nm, "-D", "--defined-only", _lib.path], capture_output=True, text=True,
                         check=True)
    names = set()
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TtWiu":
            names.add(parts[2].split("@")[0])
    return names


def test_exported_symbols_equal_declared():
    exported = {n for n in exported_symbols() if n.startswith("gtl_")}
    declared = set(_lib.FUNCTIONS)
    assert exported - declared == set(), "exported by libgtl.so but not bound in _lib.py"
    assert declared - exported == set(), "bound in _lib.py but not exported by libgtl.so"


def test_only_gtl_symbols_exported():
    assert {n for n in exported_symbols() if not n.startswith("gtl_")} == set()


# Headers published as a contract before their implementation lands: their
# functions are in include/gtl but not yet exported, so they cannot be bound
# (declaring them would fail the import). The test below fails as soon as the
# library exports one of them, or the header changes, so the bindings follow.
NOT_YET_IMPLEMENTED_HEADERS = set()


def pending_prototypes():
    out = {}
    for h in NOT_YET_IMPLEMENTED_HEADERS:
        if os.path.exists(os.path.join(HEADER_DIR, h)):
            out.update(header_prototypes([h]))
    return out


def test_header_prototypes_equal_declared():
    protos = header_prototypes()
    pending = set(pending_prototypes())
    assert len(protos) > 50
    assert set(protos) - set(_lib.FUNCTIONS) - pending == set(), \
        "in the headers but not in _lib.py"
    assert set(_lib.FUNCTIONS) - set(protos) == set(), "in _lib.py but not in the headers"


def test_pending_headers_not_yet_exported():
    """Functions of not-yet-implemented headers: once exported, bind them and
    remove the header from NOT_YET_IMPLEMENTED_HEADERS."""
    exported = exported_symbols()
    assert set(pending_prototypes()) & exported == set(), \
        "now exported by libgtl.so: bind them in _lib.py"
    assert set(pending_prototypes()) & set(_lib.FUNCTIONS) == set()


# C parameter/return type text -> the ctypes type _lib.py must use for it.
_SCALARS = {
    "float": ctypes.c_float, "double": ctypes.c_double, "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64, "uint32_t": ctypes.c_uint32, "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t, "int": ctypes.c_int, "uint8_t": ctypes.c_uint8,
}
_CALLBACKS = {
    "gtl_malloc_fn": _lib.gtl_malloc_fn, "gtl_realloc_fn": _lib.gtl_realloc_fn,
    "gtl_free_fn": _lib.gtl_free_fn, "gtl_log_fn": _lib.gtl_log_fn,
    "gtl_progress_fn": _lib.gtl_progress_fn, "gtl_eval_fn": _lib.gtl_eval_fn,
    "gtl_eval_progress_fn": _lib.gtl_eval_progress_fn,
}
_HANDLES = {"gtl_dataset", "gtl_episode", "gtl_model", "gtl_optimizer", "gtl_evaluator",
            "gtl_backbone"}


def expected_ctype(decl, is_return=False):
    """The ctypes type for a C declaration such as 'const float *features'."""
    d = decl.replace("const ", "").strip()
    if not is_return:
        # drop the parameter name
        m = re.match(r"^(.*?[\s\*])(\w+)$", d)
        assert m, f"cannot parse parameter {decl!r}"
        d = m.group(1)
    d = d.replace(" ", "")
    stars = d.count("*")
    base = d.rstrip("*")
    if base == "void" and stars == 0:
        return None
    if base == "char" and stars == 1:
        return ctypes.c_char_p
    if base == "char" and stars == 2:                      # arrays of strings
        return ctypes.POINTER(ctypes.c_char_p)
    if base == "void" and stars == 1:
        return ctypes.c_void_p
    if base in _CALLBACKS and stars == 0:
        return _CALLBACKS[base]
    if base in _HANDLES:
        return {1: ctypes.c_void_p, 2: ctypes.POINTER(ctypes.c_void_p)}[stars]
    if base == "gtl_status" or base.startswith("gtl_"):    # enums (C int)
        t = ctypes.c_int
        for _ in range(stars):
            t = ctypes.POINTER(t)
        return t
    t = _SCALARS[base]
    for _ in range(stars):
        t = ctypes.POINTER(t)
    return t


@pytest.mark.parametrize("name", sorted(set(header_prototypes()) - set(pending_prototypes())))
def test_signature_matches_header(name):
    ret, params = header_prototypes()[name]
    restype, argtypes = _lib.FUNCTIONS[name]
    assert len(argtypes) == len(params), f"{name}: {len(params)} parameters in the header"
    assert restype == expected_ctype(ret, is_return=True), f"{name} return type {ret!r}"
    for i, (p, a) in enumerate(zip(params, argtypes)):
        assert a == expected_ctype(p), f"{name} parameter {i} {p!r} is bound as {a}"
    f = getattr(_lib, name)
    assert f.argtypes == argtypes and f.restype == restype


def test_version():
    assert gtl.version_number() // 100 == _lib.BINDINGS_VERSION // 100
    assert gtl.version() == "{}.{}.{}".format(gtl.version_number() // 10000,
                                              gtl.version_number() // 100 % 100,
                                              gtl.version_number() % 100)
    assert gtl.build_info().startswith("libgtl " + gtl.version())


def test_version_mismatch_is_import_error():
    """A library of another major.minor is refused at import, naming both versions."""
    code = r"""
import ctypes
real = ctypes.CDLL
class Fake:
    def __init__(self, *a, **k):
        self._lib = real(*a, **k)
        self._fake = ctypes.CFUNCTYPE(ctypes.c_uint32)(lambda: 20300)
    def __getattr__(self, name):
        if name == "gtl_version_number":
            return self._fake
        return getattr(self._lib, name)
ctypes.CDLL = Fake
try:
    import gtl
except ImportError as e:
    print("IMPORT-ERROR", e)
"""
    env = dict(os.environ, GTL_LIBRARY=_lib.path,
               PYTHONPATH=os.path.join(ROOT, "bindings", "python"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60)
    assert "IMPORT-ERROR" in res.stdout, res.stdout + res.stderr
    assert "20300" in res.stdout and "0.1.x" in res.stdout


def test_bad_gtl_library_is_import_error(tmp_path):
    env = dict(os.environ, GTL_LIBRARY=str(tmp_path / "nope.so"),
               PYTHONPATH=os.path.join(ROOT, "bindings", "python"))
    res = subprocess.run([sys.executable, "-c", "import gtl"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert res.returncode != 0
    assert "ImportError" in res.stderr and "nope.so" in res.stderr


def test_status_enum_matches_strerror():
    for st in gtl.Status:
        assert gtl.strerror(st) != "unknown status"
    assert gtl.strerror(99) == "unknown status"


def test_runtime_functions():
    n0 = gtl.num_threads()
    gtl.set_num_threads(1)
    assert gtl.num_threads() == 1
    gtl.set_num_threads(n0)
    with pytest.raises(gtl.InvalidArgument) as e:
        gtl.set_num_threads(0)
    assert e.value.status == gtl.Status.INVALID_ARG
    assert "gtl_set_num_threads" in e.value.message
    assert isinstance(gtl.cpu_has_bf16(), bool)
    b, n = gtl.memory_in_use()
    assert b >= 0 and n >= 0


def test_log_callback():
    got = []
    gtl.set_log_callback(lambda level, msg: got.append((level, msg)), gtl.LogLevel.DEBUG)
    try:
        with pytest.raises(gtl.InvalidArgument):
            gtl.set_num_threads(-3)
    finally:
        gtl.set_log_callback(None)
    assert any("-3" in m for _, m in got), got
    assert all(isinstance(lv, gtl.LogLevel) for lv, _ in got)
    n = len(got)
    with pytest.raises(gtl.InvalidArgument):
        gtl.set_num_threads(-4)
    assert len(got) == n     # silenced again
    with pytest.raises(gtl.InvalidArgument):
        gtl.set_log_callback(print, 7)
