"""The Python image examples (bindings/python/examples/adapt_images.py and
predict_images.py) against their C twins (examples/adapt.c, predict.c).

On the demo folder (3 classes x rgb/sketch/infrared x 2 PNGs, a corrupt PNG, a
600x2 PNG, a text file; query/ with 9 PNGs and a corrupt JPEG; a random-weight
backbone): the Python programs report the same counts as the C example tests
check, skip the bad files by name, and
  - C predict and Python predict print the same lines for the same model;
  - the model Python adapts predicts exactly like the model C adapts from the
    same folder (same features, same views, same support rows, same order).

ctest passes the C programs in GTL_EXAMPLE_ADAPT / GTL_EXAMPLE_PREDICT; without
them the tests are skipped.
"""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "bindings", "python", "examples")
C_ADAPT = os.environ.get("GTL_EXAMPLE_ADAPT")
C_PREDICT = os.environ.get("GTL_EXAMPLE_PREDICT")

needs_c = pytest.mark.skipif(not (C_ADAPT and C_PREDICT),
                             reason="GTL_EXAMPLE_ADAPT / GTL_EXAMPLE_PREDICT not set")
# Passive OpenMP waiting: with libgomp's spinning, the idle workers compete with
# the Python progress callback on a loaded machine (docs/memory-threading.md).
ENV = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONDONTWRITEBYTECODE="1")


def run(cmd, expect_rc=0):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == expect_rc, f"{cmd}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def py(script, *args, expect_rc=0):
    return run([sys.executable, os.path.join(EXAMPLES, script), *args], expect_rc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    out = py("adapt_images.py", "--make-demo", str(d)).stdout
    assert "demo folder" in out
    return d


ADAPT_ARGS = ["--views", "1", "--n1-epochs", "5", "--n2-epochs", "20"]


@pytest.fixture(scope="module")
def py_model(demo):
    model = str(demo / "model-py.gtl")
    p = py("adapt_images.py", "--backbone", str(demo / "backbone.gtlbb"), "--out", model,
           *ADAPT_ARGS, str(demo / "images"))
    return model, p


def test_adapt_counts(py_model, demo):
    model, p = py_model
    # 18 labelled PNGs + the 600x2 one decode, the corrupt PNG does not; README.txt is ignored
    assert re.search(r"adapted 3 classes from 19 images \(1 skipped, 1 other files ignored; "
                     r"38 support rows with 1 views each\)", p.stdout), p.stdout
    assert "skipped " + str(demo / "images/disc/rgb/corrupt.png") in p.stderr
    assert "no pretrained head" in p.stderr
    with open(model + ".classes") as f:
        assert f.read() == "cross\ndisc\nsquare\n"


def test_adapt_manifest(demo):
    p = py("adapt_images.py", "--backbone", str(demo / "backbone.gtlbb"),
           "--out", str(demo / "model-manifest.gtl"), "--views", "0", "--n1-epochs", "2",
           "--n2-epochs", "5", "--manifest", str(demo / "manifest.csv"))
    assert re.search(r"adapted 3 classes from 19 images \(1 skipped, 0 other files ignored; "
                     r"19 support rows with 0 views each\)", p.stdout), p.stdout


def test_bad_arguments(demo):
    py("adapt_images.py", "--out", "x.gtl", str(demo / "images"), expect_rc=2)
    p = py("adapt_images.py", "--backbone", str(demo / "missing.gtlbb"), "--out", "x.gtl",
           str(demo / "images"), expect_rc=1)
    assert "cannot load the backbone" in p.stderr
    p = py("predict_images.py", "--backbone", str(demo / "backbone.gtlbb"),
           "--model", str(demo / "images/README.txt"), str(demo / "query"), expect_rc=1)
    assert "cannot load the model" in p.stderr


@needs_c
def test_predict_equals_c(py_model, demo):
    model, _ = py_model
    args = ["--backbone", str(demo / "backbone.gtlbb"), "--model", model, "--top", "2",
            str(demo / "query")]
    c = run([C_PREDICT, *args])
    p = py("predict_images.py", *args)
    assert "predicted 9 of 10 images (1 skipped)" in p.stderr
    assert "skipped " + str(demo / "query/corrupt.jpg") in p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 9 and all(len(l.split("\t")) == 3 for l in lines)
    assert p.stdout == c.stdout


@needs_c
def test_python_adapt_equals_c_adapt(py_model, demo):
    model, _ = py_model
    c_model = str(demo / "model-c.gtl")
    c = run([C_ADAPT, "--backbone", str(demo / "backbone.gtlbb"), "--out", c_model, *ADAPT_ARGS,
             str(demo / "images")])
    assert "adapted 3 classes from 19 images" in c.stdout
    with open(c_model + ".classes") as f, open(model + ".classes") as g:
        assert f.read() == g.read()
    args = ["--backbone", str(demo / "backbone.gtlbb"), "--top", "3", str(demo / "query")]
    from_c = py("predict_images.py", "--model", c_model, *args).stdout
    from_py = py("predict_images.py", "--model", model, *args).stdout
    assert from_c == from_py
