"""First contact: process start to the end of a first fit, as a new user meets it.

    python bench/first_contact.py            # writes bench/results/first_contact.md and prints it

Each figure is one fresh process with every user cache empty (``HOME``, ``XDG_CACHE_HOME``,
``NUMBA_CACHE_DIR`` and ``FASTBP_CACHE_DIR`` pointed at empty folders), timing from process
start: ``import fastbp``, then a 64-64 ReLU network trained on 2,000 rows of 32 features for 2
epochs (Adam, cross-entropy, batch 64), then ``predict`` and ``evaluate``.

* wheel: a wheel built from this checkout (``pip wheel . --no-build-isolation``, so with this
  environment's numba; the kernels are compiled for x86-64-v3 during the build) and unpacked
  into an empty folder: what ``pip install .`` leaves;
* sources: the checkout itself, nothing compiled: the kernels compile at the first fit;
* warmup: the whole kernel set compiled from the sources (``python -m fastbp warmup``).
"""

import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "first_contact.md"

SCRIPT = """
import time
start = time.perf_counter()
import numpy as np, fastbp
imported = time.perf_counter() - start
rng = np.random.default_rng(0)
X = rng.standard_normal((2000, 32)).astype(np.float32)
y = rng.integers(0, 10, 2000)
model = fastbp.Sequential([fastbp.Dense(64, activation="relu"), fastbp.Dense(64, activation="relu"),
                           fastbp.Dense(10, activation="softmax")], seed=0)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(X, y, epochs=2, batch_size=64, verbose=0)
fit = time.perf_counter() - start
model.predict(X)
model.evaluate(X, y, verbose=0)
print(imported, fit, time.perf_counter() - start)
"""


def empty_caches(folder):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    for name in ("home", "xdg", "numba", "fastbp"):
        (folder / name).mkdir(parents=True)
    env.update(HOME=str(folder / "home"), XDG_CACHE_HOME=str(folder / "xdg"),
               NUMBA_CACHE_DIR=str(folder / "numba"), FASTBP_CACHE_DIR=str(folder / "fastbp"),
               FASTBP_QUIET_COMPILE="1")
    return env


def timed(args, env, cwd):
    """Wall seconds of a whole process, and its stdout."""
    start = time.perf_counter()
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, result.stdout


def first_fit(site, folder):
    """(import, end of fit, end of predict + evaluate) from process start, and the process's
    whole wall time, with ``site`` first on the path."""
    env = empty_caches(folder)
    env["PYTHONPATH"] = str(site)
    wall, out = timed([sys.executable, "-c", SCRIPT], env, folder)
    return [float(x) for x in out.split()] + [wall]


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build = timed([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                       "--no-build-isolation", "-q", "-w", str(tmp / "wheels")],
                      dict(os.environ), tmp)[0]
        wheel, = (tmp / "wheels").glob("fastbp-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tmp / "site")
            shipped = any("_prebuilt/" in n for n in archive.namelist())
        rows.append(("wheel (kernels shipped)" if shipped else "wheel (no kernels shipped)",
                     first_fit(tmp / "site", tmp / "run-wheel"), f"build {build:.0f} s"))
        rows.append(("sources, every cache empty", first_fit(ROOT, tmp / "run-src"), ""))
        env = empty_caches(tmp / "run-warmup")
        env["PYTHONPATH"] = str(ROOT)
        warm = timed([sys.executable, "-m", "fastbp", "warmup"], env, tmp)[0]
    lines = [f"First contact, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores "
             f"(`python bench/first_contact.py`): seconds from process start.", "",
             "| from | import | end of 2-epoch fit | + predict, evaluate | process | note |",
             "|---|---|---|---|---|---|"]
    for name, (imported, fit, done, wall), note in rows:
        lines.append(f"| {name} | {imported:.2f} | {fit:.2f} | {done:.2f} | {wall:.2f} | "
                     f"{note} |")
    lines.append(f"| sources: `python -m fastbp warmup` (whole kernel set) | | | | {warm:.1f} | |")
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
