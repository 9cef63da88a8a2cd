#!/usr/bin/env python3
"""Test docs_quickstart: every code block of docs/quickstart.md compiles and runs.

  - a ```c block must be examples/quickstart.c verbatim, a ```python block
    bindings/python/examples/quickstart.py, a ```cmake block
    test/package/consumer/CMakeLists.txt (built by the package test);
  - the ```sh blocks run in order, in one bash (-eu), in a temporary folder that
    links build/ to the build tree and examples/, bindings/, test/ to the
    source tree, with PREFIX set to a temporary install prefix; so the
    install, pkg-config compile, C program and Python program really run;
  - both programs must print their accuracy line, and it must be the same.

Usage: check_quickstart.py <source dir> <build dir>
"""
import os
import re
import subprocess
import sys
import tempfile

FILES = {"c": "examples/quickstart.c", "python": "bindings/python/examples/quickstart.py",
         "cmake": "test/package/consumer/CMakeLists.txt"}


def main():
    src, build = (os.path.abspath(p) for p in sys.argv[1:3])
    text = open(os.path.join(src, "docs/quickstart.md")).read()
    blocks = re.findall(r"^```(\w*)\n(.*?)^```\s*$", text, re.M | re.S)
    problems, shell = [], []
    for lang, body in blocks:
        if lang == "sh":
            shell.append(body)
        elif lang in FILES:
            if body != open(os.path.join(src, FILES[lang])).read():
                problems.append("the %s block is not %s verbatim" % (lang, FILES[lang]))
        else:
            problems.append("a code block with no tested language: ```%s" % lang)
    seen = {lang for lang, _ in blocks}
    for lang in ("c", "python", "sh"):
        if lang not in seen:
            problems.append("no ```%s block" % lang)
    if problems:
        for p in problems:
            print("FAIL " + p)
        return 1
    with tempfile.TemporaryDirectory(prefix="gtl-quickstart-") as tmp:
        os.symlink(build, os.path.join(tmp, "build"))
        for d in ("examples", "bindings", "test"):
            os.symlink(os.path.join(src, d), os.path.join(tmp, d))
        env = dict(os.environ, PREFIX=os.path.join(tmp, "prefix"), OMP_WAIT_POLICY="PASSIVE",
                   PYTHONDONTWRITEBYTECODE="1")
        env.pop("GTL_LIBRARY", None)
        script = "set -eu\n" + "\n".join(shell)
        p = subprocess.run(["bash", "-c", script], cwd=tmp, env=env, capture_output=True,
                           text=True, timeout=600)
        sys.stdout.write(p.stdout)
        sys.stderr.write(p.stderr)
        if p.returncode != 0:
            print("FAIL the shell blocks exited with %d" % p.returncode)
            return 1
        acc = re.findall(r"^accuracy (\S+) on (\d+) queries$", p.stdout, re.M)
        if len(acc) != 2 or acc[0] != acc[1]:
            print("FAIL expected the same accuracy line from C and Python, got %s" % acc)
            return 1
    print("quickstart: %d code blocks checked, both programs ran (%s)" % (len(blocks), acc[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
