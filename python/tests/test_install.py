"""End to end: `cmake --install` of this build into a staged prefix, then the
example of docs/python.md (and the README's) run by Debian's /usr/bin/python3
with no LD_LIBRARY_PATH and no VMFMM_LIBRARY: the installed package finds the
installed library by itself."""

import os
import re
import subprocess
import sys

import pytest

from conftest import BUILD_DIR, SOURCE_DIR, Vmfd

PREFIX = "/usr/local"
PYVER = "%d.%d" % sys.version_info[:2]


def example(path):
    text = open(os.path.join(SOURCE_DIR, path)).read()
    m = re.search(r"<!-- python-example -->\n```python\n(.*?)```", text, re.S)
    assert m, f"{path} has no marked Python example"
    return m.group(1)


def stage(root, prefix):
    env = dict(os.environ, DESTDIR=str(root))
    subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return root


def site_of(prefix):
    """Where Debian's python3 looks for packages of that prefix."""
    if prefix == "/usr":
        return "lib/python3/dist-packages"
    return f"lib/python{PYVER}/dist-packages"


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    return stage(tmp_path_factory.mktemp("stage"), PREFIX)


def clean_env(site):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "VMFMM_LIBRARY", "PYTHONPATH", "LD_PRELOAD")}
    env["PYTHONPATH"] = site  # the staged prefix is not on Python's path
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_debian_python_searches_the_site_of_usr_local():
    r = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.path)"],
                       capture_output=True, text=True, check=True,
                       env={"PATH": "/usr/bin:/bin"})
    assert f"/usr/local/{site_of('/usr/local')}" in r.stdout
    assert f"/usr/{site_of('/usr')}" in r.stdout


@pytest.mark.parametrize("prefix", ["/usr/local", "/usr", "/opt/vmfmm"])
def test_layout_and_library_found(tmp_path, prefix):
    root = stage(tmp_path / "root", prefix)
    site = root / prefix.lstrip("/") / site_of(prefix)
    pkg = site / "vmfmm"
    names = sorted(p.name for p in pkg.iterdir())
    for n in ("__init__.py", "_lib.py", "mixture.py", "classifier.py", "client.py",
              "_install.py"):
        assert n in names
    rec = {}
    exec((pkg / "_install.py").read_text(), rec)
    assert rec["LIBRARY"].startswith(prefix + "/")
    lib = os.path.normpath(pkg / rec["LIBRARY_RELATIVE"])
    assert os.path.exists(lib)
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import vmfmm; print(vmfmm.__file__); print(vmfmm.library_path)"],
                       env=clean_env(str(site)), capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    got_pkg, got_lib = r.stdout.split()
    assert got_pkg.startswith(str(site))
    assert os.path.realpath(got_lib) == os.path.realpath(lib)


@pytest.mark.parametrize("doc", ["docs/python.md", "README.md"])
def test_docs_example_runs(staged, tmp_path, doc):
    site = str(staged / "usr/local" / site_of(PREFIX))
    work = tmp_path / "work"
    (work / "tests").mkdir(parents=True)
    os.symlink(os.path.join(SOURCE_DIR, "tests", "data"), work / "tests" / "data")
    d = Vmfd(tmp_path / "state")
    try:
        env = clean_env(site)
        env["VMFD_URL"] = d.url
        r = subprocess.run(["/usr/bin/python3", "-c", example(doc)], env=env, cwd=work,
                           capture_output=True, text=True, timeout=240)
    finally:
        d.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    if doc == "docs/python.md":
        assert re.search(r"EM converged=True after \d+ iterations", out)
        assert "-> K =" in out
        acc = float(re.search(r"day 200: .* test accuracy ([0-9.]+)", out).group(1))
        assert acc > 0.85
        assert re.search(r"vmfd: \d+ rows, \d+ classes", out)
        assert (work / "fmnist-k10.json").read_text().startswith('{"format":"vmfmm-model"')
    else:
        assert "accuracy" in out
