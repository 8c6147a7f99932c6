"""The compiled-kernel cache: never stale, never in the package, shipped inside a wheel.

Each test runs fastbp in fresh processes from a copy of the package, with its own empty cache
folders, so that nothing depends on what this test process compiled or loaded.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fastbp import _platform

ROOT = Path(__file__).resolve().parent.parent  # the checkout
PACKAGE = ROOT / "fastbp"

SIGMOID_OF_ONE = """
import numpy as np
from fastbp import codes
from fastbp.kernels.activations import act_forward
a = np.ones((1, 8), np.float32)
act_forward(a, np.zeros(8, np.float32), codes.SIGMOID, 0.0)
print(repr(float(a[0, 0])))
"""


def clean_env(**extra):
    """The environment of a process whose caches are all empty (or those given)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTBP_CACHE_DIR", "NUMBA_CACHE_DIR", "PYTHONPATH")}
    env.update(extra)
    return env


def run(code, cwd, **env):
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=clean_env(**env),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return result


def copy_of_package(tmp_path):
    tree = tmp_path / "src"
    shutil.copytree(PACKAGE, tree / "fastbp", ignore=shutil.ignore_patterns(
        "__pycache__", "_prebuilt"))
    return tree


def cache_files(directory):
    return sorted(p.name for p in Path(directory).rglob("*.nb[ic]"))


def test_an_edited_callee_in_another_file_takes_effect(tmp_path):
    """``act_forward`` (activations.py) calls ``exp_inplace`` (fastexp.py). Numba's own cache
    would keep running the cached ``act_forward`` with the old ``exp_inplace`` after an edit of
    fastexp.py alone; fastbp's is keyed on every compiled source, so the edit takes effect in
    the next process, and the files go to the user's cache folder, none into the package."""
    tree = copy_of_package(tmp_path)
    cache = tmp_path / "cache"
    first = run(SIGMOID_OF_ONE, tree, FASTBP_CACHE_DIR=str(cache))
    assert "compiling the kernels" in first.stderr
    again = run(SIGMOID_OF_ONE, tree, FASTBP_CACHE_DIR=str(cache))
    assert again.stdout == first.stdout and "compiling" not in again.stderr  # from the cache
    fastexp = tree / "fastbp" / "kernels" / "fastexp.py"
    source = fastexp.read_text()
    assert "_P5 = np.float32(5.0000001201e-1)" in source
    fastexp.write_text(source.replace("_P5 = np.float32(5.0000001201e-1)",
                                      "_P5 = np.float32(0.25)"))
    edited = run(SIGMOID_OF_ONE, tree, FASTBP_CACHE_DIR=str(cache))
    assert edited.stdout != first.stdout and "compiling the kernels" in edited.stderr
    assert cache_files(tree) == []
    assert len([d for d in cache.iterdir() if d.is_dir()]) == 2  # one folder per source hash


def test_an_unwritable_cache_folder_falls_back(tmp_path):
    """``FASTBP_CACHE_DIR`` naming a file (so no folder can be made there): the kernels still
    compile and run, cached in the temporary directory instead."""
    tree = copy_of_package(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    (tmp_path / "tmp").mkdir()
    result = run(SIGMOID_OF_ONE + "from fastbp import _cache; print(_cache.user_dir())", tree,
                 FASTBP_CACHE_DIR=str(blocker), TMPDIR=str(tmp_path / "tmp"))
    value, where = result.stdout.split()
    assert float(value) == pytest.approx(1 / (1 + 2.718281828 ** -1), rel=1e-6)
    assert where.startswith(str(tmp_path / "tmp"))


FIRST_CONTACT = """
import time
start = time.perf_counter()
import warnings, numpy as np, fastbp
from numba.core import event
compiled = []

class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)

    def on_end(self, ev):
        pass

event.register("numba:compile", Listener())
rng = np.random.default_rng(0)
X = rng.standard_normal((2000, 32)).astype(np.float32)
y = rng.integers(0, 10, 2000)
model = fastbp.Sequential([fastbp.Dense(64, activation="relu"), fastbp.Dense(64, activation="relu"),
                           fastbp.Dense(10, activation="softmax")], seed=0)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(X, y, epochs=2, batch_size=64, verbose=0)
first_fit = time.perf_counter() - start
full = model.predict(X)  # on the wheel's portable (AVX2) kernels: rows alone, the same bits
same = all(np.array_equal(model.predict(X[r:r + 1])[0], full[r]) for r in range(0, 2000, 61))
model.evaluate(X, y, verbose=0)
model.optimizer.apply_gradients(zip(model.gradients(X[:64], y[:64]), model.trainable_variables))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fastbp.MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=5).fit(X, y)
    fastbp.MLPClassifier(hidden_layer_sizes=(16,)).partial_fit(X, y, classes=np.arange(10))
print(fastbp.__file__, len(compiled), round(first_fit, 2), same, *compiled)
"""


@pytest.mark.skipif(not _platform.runs_portable_code() and _platform.X86,
                    reason="the wheel's kernels need an x86-64-v3 processor to be built")
def test_an_installed_wheel_compiles_nothing(tmp_path):
    """A wheel built from the checkout carries the kernels; installed into an empty folder and
    run with every user cache empty, a first fit, predict, evaluate, a hand-written loop's
    step, an L-BFGS fit and a partial_fit compile nothing, and nothing is written into the installation. Its portable
    kernels (x86-64-v3: AVX2, no AVX-512) predict a row alone with the bits it has in a
    batch."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(wheels)], check=True,
                   env=clean_env(), timeout=900, capture_output=True)
    wheel, = wheels.glob("fastbp-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    shipped = [n for n in names if n.startswith("fastbp/_prebuilt/")]
    assert {Path(n).name.split("-")[0] for n in shipped} == {
        "epoch.train_epoch", "inference.infer", "optim.optimizer_step"}
    before = sorted(p for p in site.rglob("*") if "__pycache__" not in p.parts)
    home = tmp_path / "home"
    result = run(FIRST_CONTACT, tmp_path, PYTHONPATH=str(site), HOME=str(home),
                 XDG_CACHE_HOME=str(home / ".cache"))
    where, count, seconds, same, *names = result.stdout.split()
    assert where.startswith(str(site))
    assert count == "0", names
    assert same == "True"  # batch-invariant predictions on the x86-64-v3 (AVX2) build too
    assert "compiling" not in result.stderr
    assert sorted(p for p in site.rglob("*") if "__pycache__" not in p.parts) == before
    print(f"first fit from the wheel: {seconds} s after process start")


def test_the_build_has_what_compiling_the_kernels_needs():
    """The wheel's kernels are compiled in pip's isolated build environment, which holds only
    ``build-system.requires``: a run-time dependency missing there leaves a wheel without
    kernels (quietly: the build goes on). scikit-learn is the only one ``warmup`` does not
    import."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())

    def names(requirements):
        return {r.split(">")[0].split("=")[0].split("<")[0].strip() for r in requirements}
    needed = names(project["project"]["dependencies"]) - {"scikit-learn"}
    assert needed <= names(project["build-system"]["requires"])


INTERRUPTED_LOAD = """
import os, signal, threading, time, numpy as np, numba, fastbp
from fastbp import _threads, engine
original = engine.ready
sent = []

def noisy_ready(kernel, args):  # a burst of Ctrl-C while the kernel loads
    stop = threading.Event()

    def burst():
        while not stop.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            sent.append(1)
            time.sleep(0.0005)
    with _threads.interrupts_deferred():
        thread = threading.Thread(target=burst)
        thread.start()
        try:
            original(kernel, args)
        finally:
            stop.set()
            thread.join()

engine.ready = noisy_ready
rng = np.random.default_rng(0)
X = rng.standard_normal((256, 4)).astype(np.float32)
y = (X[:, 0] > 0).astype(int)
model = fastbp.Sequential([fastbp.Dense(8, activation="relu"), fastbp.Dense(2, activation="softmax")])
model.compile(loss="categorical_crossentropy")
try:
    model.fit(X, y, epochs=1, verbose=0)
    interrupted = False
except KeyboardInterrupt:
    interrupted = True
engine.ready = original
model.fit(X, y, epochs=2, verbose=0)  # the same process: fastbp and Numba still work
assert np.isfinite(model.predict(X)).all()
assert numba.njit(lambda a: a + 1)(1) == 2  # and Numba still compiles
print(interrupted, len(sent) > 10)
"""


def test_ctrl_c_while_kernels_load_is_delivered_after_and_breaks_nothing():
    """Hundreds of SIGINTs while ``train_epoch`` loads: one KeyboardInterrupt once the kernel
    is loaded; the process then trains, predicts and compiles as usual. (Before, an interrupt
    inside Numba's loading broke its type registry for the process, and a burst aborted it.)"""
    result = run(INTERRUPTED_LOAD, ROOT)  # the user's cache: loading, or compiling if cold
    assert result.stdout.split() == ["True", "True"], result.stdout
