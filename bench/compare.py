"""fastbp side by side with the peers of BENCHMARKS.md, in one run on one machine.

    python bench/compare.py                       # all workloads, every installed peer
    python bench/compare.py --workloads small reg --epochs 5

Each (library, workload) trains in a fresh process with the same thread count (so no two
thread pools share a process), for ``--epochs`` epochs (default 6); the figure is the median
epoch time after the first (which includes compilation, reported apart). Six rather than
the protocol's minimum of four: five measured epochs per run give a steadier median on a
noisy machine than three. Writes
``bench/results/compare.md`` (table) and ``bench/results/compare.png`` (chart), and prints the
table, then a second table of fastbp alone: 1 thread against ``--threads``, and the latency of
a one-row ``predict``. With ``--rounds R`` (default 2) every run is repeated R times, rounds
interleaved, and the epochs of all rounds pooled: on a shared, noisy machine a burst of load
then lands on one round of one library instead of deciding its figure. Peers that are not
installed are named and skipped (PyTorch: pip install torch==2.13.0;
JAX: pip install jax).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import LIBRARIES, REQUIRES  # noqa: E402
from workloads import WORKLOADS, flops_per_epoch  # noqa: E402


def thread_env(threads):
    env = dict(os.environ)
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                        f"intra_op_parallelism_threads={threads}")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), str(HERE), env.get("PYTHONPATH", "")])
    return env


def measure(library, name, epochs, threads):
    """Run one library on one workload in a fresh process; its result dict."""
    code = (f"import json, peers; print('RESULT' + json.dumps(peers.LIBRARIES[{library!r}]"
            f"({name!r}, {epochs}, {threads})))")
    proc = subprocess.run([sys.executable, "-c", code], env=thread_env(threads),
                          capture_output=True, text=True, cwd=HERE, timeout=3600)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT"):])
    raise RuntimeError(f"{library} on {name} failed:\n{proc.stderr[-2000:]}")


def machine_rate(threads):
    """float32 matrix-product rate of this machine: numpy, 2048 x 2048, best of 5 (GFLOP/s)."""
    code = ("import numpy as np, time\n"
            "a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)\n"
            "b = a.copy(); a @ b\nbest = 1e9\n"
            "for _ in range(5):\n    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)\n"
            "print(2 * 2048 ** 3 / best / 1e9)")
    out = subprocess.run([sys.executable, "-c", code], env=thread_env(threads),
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def summarise(results, name):
    """Pool the rounds of one (library, workload): median epoch after each round's first,
    compilation from the first round, best whole-data predict, median one-row latency."""
    first = results[0]
    median = float(np.median(np.concatenate([r["epoch_s"][1:] for r in results])))
    return {
        "epoch_ms": median * 1e3,
        "samples_per_s": first["samples"] / median,
        "gflops": flops_per_epoch(name) * first["samples"] / WORKLOADS[name][0] / median / 1e9,
        "compile_s": float(first["epoch_s"][0] - median),
        "predict_per_s": WORKLOADS[name][0] / min(r["predict_s"] for r in results),
        "one_row_us": float(np.median([r.get("one_row_predict_s", np.nan) for r in results])) * 1e6,
        "quality": first.get("accuracy", first.get("mse")),
        "epochs_measured": sum(len(r["epoch_s"]) - 1 for r in results),
    }


def table(rows, rate, threads, missing, rounds=1, epochs=6):
    lines = [f"Machine float32 matrix-product rate: {rate:.0f} GFLOP/s (numpy 2048x2048, best of 5); "
             f"{threads} threads for every library; each figure the median epoch of {rounds} "
             f"interleaved run(s) of {epochs} epochs, the first epoch of each run left out."]
    if missing:
        lines.append(f"Not installed, not measured: {', '.join(missing)}.")
    lines += ["", "| workload | library | samples/s | epoch ms | GFLOP/s | % of machine | "
              "compile s | predict rows/s | fastbp speed-up |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, per_lib in rows.items():
        ours = per_lib.get("fastbp")
        for lib, s in per_lib.items():
            ratio = "" if lib == "fastbp" or ours is None else \
                f"{ours['samples_per_s'] / s['samples_per_s']:.2f}x"
            lines.append(f"| {name} | {lib} | {s['samples_per_s'] / 1e3:,.0f} k | "
                         f"{s['epoch_ms']:.1f} | {s['gflops']:.1f} | {100 * s['gflops'] / rate:.0f}% | "
                         f"{s['compile_s']:.2f} | {s['predict_per_s'] / 1e3:,.0f} k | {ratio} |")
    return "\n".join(lines)


def scaling_table(rows, single, threads):
    """fastbp with 1 thread against ``threads``, and its one-row predict latency."""
    lines = ["", f"fastbp alone: 1 thread against {threads}; one-row `predict` latency (median of "
             "2,000 calls, validation included).", "",
             f"| workload | 1 thread samples/s | {threads} threads samples/s | speed-up | "
             "one-row predict us |", "|---|---|---|---|---|"]
    for name, s in single.items():
        ours = rows[name]["fastbp"]
        lines.append(f"| {name} | {s['samples_per_s'] / 1e3:,.0f} k | "
                     f"{ours['samples_per_s'] / 1e3:,.0f} k | "
                     f"{ours['samples_per_s'] / s['samples_per_s']:.2f}x | {ours['one_row_us']:.1f} |")
    return "\n".join(lines)


def chart(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    libs = [lib for lib in LIBRARIES if any(lib in rows[n] for n in names)]
    width = 0.8 / len(libs)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, lib in enumerate(libs):
        values = [rows[n][lib]["samples_per_s"] if lib in rows[n] else 0 for n in names]
        ax.bar(np.arange(len(names)) + i * width - 0.4 + width / 2, values, width, label=lib)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_yscale("log")
    ax.set_ylabel("training samples per second (log scale)")
    ax.set_title("One training epoch, median (higher is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=list(LIBRARIES))
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (>= 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2,
                        help="repeat every run this many times, interleaved, and pool the epochs")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--no-scaling", action="store_true",
                        help="skip the 1-thread fastbp runs")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (one is left out as warm-up); got {args.epochs}")
    if args.rounds < 1 or args.threads < 1:
        parser.error(f"--rounds and --threads must be at least 1; got {args.rounds} and "
                     f"{args.threads}")
    missing = [lib for lib in args.libraries
               if lib in REQUIRES and importlib.util.find_spec(REQUIRES[lib]) is None]
    libs = [lib for lib in args.libraries if lib not in missing]
    rate = machine_rate(args.threads)
    scaling = not args.no_scaling and "fastbp" in libs and args.threads > 1
    raw, raw_single = {}, {}
    for round_ in range(args.rounds):
        for name in args.workloads:
            for lib in libs:
                epochs = args.epochs if lib not in ("scikit-learn", "fastbp NumPy reference") or \
                    name != "wide" else max(2, args.epochs - 1)
                start = time.perf_counter()
                result = measure(lib, name, epochs, args.threads)
                raw.setdefault(name, {}).setdefault(lib, []).append(result)
                rate_k = result["samples"] / np.median(result["epoch_s"][1:]) / 1e3
                print(f"round {round_ + 1} {name:>6} {lib:<24} {rate_k:10,.0f} k samples/s"
                      f"  ({time.perf_counter() - start:.0f} s)", flush=True)
                if lib == "fastbp" and scaling:
                    raw_single.setdefault(name, []).append(measure("fastbp", name, args.epochs, 1))
    rows = {name: {lib: summarise(results, name) for lib, results in per_lib.items()}
            for name, per_lib in raw.items()}
    single = {name: summarise(results, name) for name, results in raw_single.items()}
    text = table(rows, rate, args.threads, missing, args.rounds, args.epochs)
    if single:
        text += "\n" + scaling_table(rows, single, args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(text + "\n")
    (out / "compare.json").write_text(json.dumps({"rate": rate, "threads": args.threads,
                                                  "rounds": args.rounds, "rows": rows,
                                                  "one_thread": single}, indent=1))
    try:
        chart(rows, out / "compare.png")
    except ImportError:
        print("matplotlib is not installed: no chart")
    print(text)


if __name__ == "__main__":
    main()
