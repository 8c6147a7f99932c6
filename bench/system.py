"""Start-up, memory and concurrency of fastbp, each measured in fresh processes.

    python bench/system.py            # writes bench/results/system.md and prints it

* ``import fastbp``: wall time in a fresh process (median of 7).
* First ``fit`` against the second in a fresh process: with the on-disk cache warm (median of
  5 processes), and once with a cold cache (empty ``NUMBA_CACHE_DIR`` and
  ``FASTBP_CACHE_DIR``), after which it counts the kernels compiled for more than one
  signature (there should be none).
* Memory: resident-set growth during ``fit`` of the ``medium`` workload, sampled every
  millisecond by a thread, against the sizes of X, y and the parameters.
* Concurrency: two ``small`` models trained in two Python threads against one after the other,
  with Numba's default thread count (a model alone shards its batches over both cores) and
  with one thread.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

IMPORT = "import time; t = time.perf_counter(); import fastbp; print(time.perf_counter() - t)"

FIRST_FIT = """
import time, numpy as np, fastbp
rng = np.random.default_rng(0)
X = rng.standard_normal((2000, 32)).astype(np.float32); y = rng.integers(0, 10, 2000)
times = []
for _ in range(2):
    model = fastbp.Sequential([fastbp.Dense(64, activation="relu"),
                               fastbp.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    t = time.perf_counter(); model.fit(X, y, epochs=1, batch_size=64, verbose=0)
    times.append(time.perf_counter() - t)
print(*times)
"""

# After a cold start: how many kernels were compiled for more than one tuple of argument types
# (each a second compilation of the kernel and all it calls; tests/test_signatures.py).
SPECIALISATIONS = """
import importlib, pkgutil, fastbp.kernels
from numba.core.registry import CPUDispatcher
extra = 0
for info in pkgutil.iter_modules(fastbp.kernels.__path__):
    module = importlib.import_module("fastbp.kernels." + info.name)
    extra += sum(len(f.signatures) > 1 for f in vars(module).values()
                 if isinstance(f, CPUDispatcher) and f.__module__ == module.__name__)
print(extra)
"""

MEMORY = """
import threading, time, numpy as np, fastbp
from workloads import data, fastbp_model, WORKLOADS
page = __import__("os").sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
X, y = data("medium")
warm = fastbp_model("medium"); warm.fit(X[:512], y[:512], epochs=1, batch_size=256, verbose=0)
del warm
model = fastbp_model("medium")
peak, done = [0], [False]
def sample():
    while not done[0]:
        peak[0] = max(peak[0], rss()); time.sleep(0.001)
base = rss(); thread = threading.Thread(target=sample); thread.start()
model.fit(X, y, epochs=2, batch_size=256, verbose=0)
done[0] = True; thread.join()
print(base, peak[0], X.nbytes, y.nbytes, model.params.nbytes)
"""

CONCURRENT = """
import threading, time, numpy as np, fastbp
from workloads import data, fastbp_model
X, y = data("small")
def train():
    fastbp_model("small").fit(X, y, epochs=4, batch_size=64, verbose=0)
train()  # compile or load the cache
results = {}
for rep in range(5):
    t = time.perf_counter(); train(); train(); results.setdefault("serial", []).append(time.perf_counter() - t)
    threads = [threading.Thread(target=train) for _ in range(2)]
    t = time.perf_counter()
    for th in threads: th.start()
    for th in threads: th.join()
    results.setdefault("threads", []).append(time.perf_counter() - t)
print(np.median(results["serial"]), np.median(results["threads"]))
"""


def python(code, **env):
    full = dict(os.environ, **env)
    full["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), str(HERE), full.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                         cwd=HERE, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return [float(v) for v in out.stdout.split()]


def main():
    python(FIRST_FIT)  # make sure the on-disk cache is warm
    imports = [python(IMPORT)[0] for _ in range(7)]
    warm = np.array([python(FIRST_FIT) for _ in range(5)])
    with tempfile.TemporaryDirectory() as cache:
        *cold, twice = python(FIRST_FIT + SPECIALISATIONS, NUMBA_CACHE_DIR=cache,
                              FASTBP_CACHE_DIR=cache, FASTBP_QUIET_COMPILE="1")
    base, peak, x_bytes, y_bytes, p_bytes = python(MEMORY)
    serial, threaded = python(CONCURRENT)
    serial_1, threaded_1 = python(CONCURRENT, NUMBA_NUM_THREADS="1")
    mb = 2.0 ** 20
    lines = [
        "| measure | figure |", "|---|---|",
        f"| `import fastbp` (fresh process, median of 7) | {np.median(imports) * 1e3:.0f} ms |",
        f"| first `fit` minus second, warm on-disk cache (median of 5 processes) | "
        f"{np.median(warm[:, 0] - warm[:, 1]) * 1e3:.0f} ms |",
        f"| first `fit` minus second, cold cache (compiles the training kernel) | "
        f"{cold[0] - cold[1]:.1f} s |",
        f"| kernels that cold start compiled for more than one signature | {twice:.0f} |",
        f"| `medium` fit, 2 epochs: resident memory growth during fit | "
        f"{(peak - base) / mb:.1f} MiB (X {x_bytes / mb:.1f} MiB, y {y_bytes / mb:.2f} MiB, "
        f"parameters {p_bytes / mb:.2f} MiB) |",
        f"| two `small` models, 4 epochs each: in 2 threads / one after the other | "
        f"{threaded:.2f} s / {serial:.2f} s = {threaded / serial:.2f} |",
        f"| the same with `NUMBA_NUM_THREADS=1` (each model on one core) | "
        f"{threaded_1:.2f} s / {serial_1:.2f} s = {threaded_1 / serial_1:.2f} |",
    ]
    text = "\n".join(lines)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "system.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
