"""Compile the kernels into a package being built, so that an install starts warm.

    python -m fastbp._prebuild DIRECTORY

run by the build (``setup.py``) with the package being built first on ``sys.path``: compiles
(or loads from the user's cache: a rebuild of the same sources compiles nothing) the entry
points (``fastbp._warmup``) and puts their files into ``DIRECTORY``
(``<build>/fastbp/_prebuilt``), filed under the sources' hash like any cache entry
(``fastbp._cache``): what a caller loads (their callees are linked into them).

On x86-64 the code is compiled for the portable baseline ``x86-64-v3`` (AVX2, FMA; the host's
wider vectors, such as AVX-512, are not used), so the wheel serves any processor of the last
decade; it is built only where the build machine can run that code (the compilation runs
the kernels once). Elsewhere it is compiled for the build machine itself, which serves an
install on that machine. Set ``FASTBP_PREBUILD=0`` to build without kernels.
"""

import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

#: the compiled entry points (``module.function``), the files worth shipping
ENTRY_POINTS = ("epoch.train_epoch", "inference.infer", "optim.optimizer_step")


def target_environment():
    """Environment variables that make Numba compile for the portable baseline, or {} to
    compile for this machine; None when this machine cannot run the portable code."""
    from . import _platform
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    if not _platform.runs_portable_code():
        return None
    return {"NUMBA_CPU_NAME": _platform.PORTABLE_CPU, "NUMBA_CPU_FEATURES": ""}


def compile_into(directory, env_extra):
    """Run ``fastbp.warmup`` in a fresh process and copy the entry points' cache files into
    ``directory/<source hash>``. The process uses the user's cache (entries are keyed by the
    target CPU, so portable ones sit beside the host's), so that building a wheel of the same
    sources again compiles nothing; where that cache is not writable, ``directory`` itself."""
    code = ("import fastbp, fastbp._cache as c; fastbp.warmup(verbose=True); "
            "print(c.user_dir() or '')")
    env = dict(os.environ, FASTBP_QUIET_COMPILE="1", **env_extra)
    result = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                            stdout=subprocess.PIPE, text=True)
    lines = result.stdout.strip().splitlines()
    print("\n".join(lines[:-1]))
    source = Path(lines[-1]) if lines and lines[-1] else None
    if source is None or not source.is_dir():  # nowhere to cache: compile into the package
        env["FASTBP_CACHE_DIR"] = str(directory)
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        return
    target = Path(directory) / source.name
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and path.name.startswith(ENTRY_POINTS):
            shutil.copyfile(path, target / path.name)


def keep_entry_points(directory):
    """Delete every cache file but the entry points'."""
    for path in Path(directory).rglob("*"):
        if path.is_file() and not path.name.startswith(ENTRY_POINTS):
            path.unlink()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    directory = Path(argv[0])
    if os.environ.get("FASTBP_PREBUILD", "1") == "0":
        print("fastbp: FASTBP_PREBUILD=0, building without compiled kernels")
        return 0
    env_extra = target_environment()
    if env_extra is None:
        print("fastbp: this machine cannot run x86-64-v3 code; building without compiled "
              "kernels (they are compiled at the first fit instead)")
        return 0
    start = time.perf_counter()
    compile_into(directory, env_extra)
    keep_entry_points(directory)
    target = env_extra.get("NUMBA_CPU_NAME", "this machine")
    print(f"fastbp: kernels compiled for {target} into {directory} in "
          f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
