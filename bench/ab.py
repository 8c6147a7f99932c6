"""fastbp against another version of itself: epoch times of two source trees, side by side.

    git worktree add /tmp/base <commit>
    python bench/ab.py /tmp/base . --workloads small reg --pairs 3

Each pair runs every workload once per tree, each run in a fresh process (``peers.run_fastbp``,
``--epochs`` epochs, 2 threads; the first epoch, which loads or compiles the kernels, is left
out), the two trees alternating so that a burst of load on the shared machine hits both. Prints
each run's median epoch, then per workload the median over pairs and the ratio base / new
(above 1: the new tree is faster). Run each tree once beforehand to fill its kernel cache.
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
print(json.dumps(peers.run_fastbp(sys.argv[2], int(sys.argv[3]), 2)["epoch_s"]))
"""


def epoch_ms(tree, workload, epochs):
    """Median epoch (ms) of one fresh-process run of ``workload`` on the fastbp in ``tree``."""
    out = subprocess.run([sys.executable, "-c", RUN, tree, workload, str(epochs)],
                         capture_output=True, text=True, check=True)
    return float(np.median(json.loads(out.stdout.splitlines()[-1])[1:])) * 1e3


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
                times[workload, key].append(epoch_ms(tree, workload, args.epochs))
                print(f"pair {pair + 1} {workload:>6} {key:>4} {times[workload, key][-1]:7.1f} ms",
                      flush=True)
    print("\n| workload | base ms | new ms | base / new |\n|---|---|---|---|")
    for workload in args.workloads:
        base, new = (float(np.median(times[workload, k])) for k in trees)
        print(f"| {workload} | {base:.1f} | {new:.1f} | {base / new:.2f}x |")


if __name__ == "__main__":
    main()
