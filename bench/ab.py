"""fastbp against another version of itself: epoch and predict times of two source trees.

    git worktree add /tmp/base <commit>
    python bench/ab.py /tmp/base . --workloads small reg --pairs 3

Each pair runs every workload once per tree, each run in a fresh process (``peers.run_fastbp``,
``--epochs`` epochs, 2 threads; the first epoch, which loads or compiles the kernels, is left
out), the two trees alternating so that a burst of load on the shared machine hits both. Prints
each run's median epoch, whole-data predict (best of 3) and one-row predict (median of 2000),
then per workload the medians over pairs and the ratios base / new (above 1: the new tree is
faster). Run each tree once beforehand to fill its kernel cache.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

RUN = """
import json, sys
tree = sys.argv[1]
sys.path[:0] = [tree, tree + "/bench"]
import fastbp, peers
assert fastbp.__file__.startswith(tree), fastbp.__file__
print(json.dumps(peers.run_fastbp(sys.argv[2], int(sys.argv[3]), 2)))
"""


def timings_ms(tree, workload, epochs):
    """(median epoch, predict, one-row predict) in ms of one fresh-process run of
    ``workload`` on the fastbp in ``tree``."""
    out = subprocess.run([sys.executable, "-c", RUN, tree, workload, str(epochs)],
                         capture_output=True, text=True, check=True)
    run = json.loads(out.stdout.splitlines()[-1])
    return (float(np.median(run["epoch_s"][1:])) * 1e3, run["predict_s"] * 1e3,
            run["one_row_predict_s"] * 1e3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", help="source tree of the version to compare against")
    parser.add_argument("new", help="source tree of the version under test")
    parser.add_argument("--workloads", nargs="+", default=["small", "reg"])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    trees = {"base": str(Path(args.base).resolve()), "new": str(Path(args.new).resolve())}
    times = {(w, k): [] for w in args.workloads for k in trees}
    for pair in range(args.pairs):
        for workload in args.workloads:
            for key, tree in trees.items():
                times[workload, key].append(timings_ms(tree, workload, args.epochs))
                epoch, whole, one = times[workload, key][-1]
                print(f"pair {pair + 1} {workload:>6} {key:>4} epoch {epoch:7.1f} ms, predict "
                      f"{whole:7.2f} ms, one row {one * 1e3:6.1f} us", flush=True)
    print("\n| workload | epoch base / new ms | ratio | predict base / new ms | ratio "
          "| one row base / new us | ratio |\n|---|---|---|---|---|---|---|")
    for workload in args.workloads:
        base, new = (np.median(np.array(times[workload, k]), axis=0) for k in trees)
        cells = [f"{b * scale:.{digits}f} / {n * scale:.{digits}f} | {b / n:.2f}x"
                 for b, n, scale, digits in zip(base, new, (1, 1, 1e3), (1, 2, 1))]
        print(f"| {workload} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
