"""Cliffs: where a change of batch size or thread count, or the first epoch, costs more than
the trend says.

    python bench/cliffs.py                  # writes bench/results/cliffs.md (about 3 min)
    python bench/cliffs.py --rounds 3       # the best of 3 fits per point (about 8 min)

For six networks of the sweep's kinds (``bench/sweep.py``: its data, 8192 rows, Adam) and
batch sizes 16 to 2048, the epoch time on 1 thread and on 2 (a fit's median epoch after the
first), the two alternating in one process, each point the best of ``--rounds`` fits: other
tenants of a shared machine slow some fits 2x (their 2-thread batches go serial), which
says nothing about the shape. Three checks, each flagged where it exceeds 1.5x:

* **batch size**: an epoch's time against the trend of its neighbours, the geometric mean of
  the epochs at half and at twice the batch (at the ends, the line through the next two,
  extended: epochs grow at small batches, where each step's update costs as much as at
  large ones);
* **thread count**: the 2-thread epoch against the 1-thread one (the shard scheduler runs a
  batch serially where its parallel way is slower, so 2 threads should never lose by much);
* **first epoch**: with the kernels loaded (a warm cache), the first epoch of a fit against
  the median of its later ones (the median ratio over the rounds).
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import sweep  # noqa: E402  (bench/ on the path first)

BATCHES = (16, 32, 64, 128, 256, 512, 1024, 2048)
NETS = [  # depth, width, inputs, act, task, taper
    (1, 16, 8, "relu", "classification", 1),
    (1, 128, 32, "relu", "classification", 1),
    (3, 512, 256, "relu", "classification", 1),
    (2, 1024, 512, "tanh", "classification", 1),
    (6, 64, 64, "tanh", "regression", 1),
    (4, 512, 128, "relu", "classification", 2),
]
LIMIT = 1.5


def cell(net, batch):
    depth, width, inputs, act, task, taper = net
    return dict(depth=depth, width=width, batch=batch, inputs=inputs, act=act, task=task,
                taper=taper)


def fit(net, batch, threads):
    """One fit: (its median epoch after the first in ms, first epoch / that)."""
    import fastbp
    with fastbp._threads.limit(threads):
        times = sweep.epochs_fastbp(cell(net, batch))
    rest = float(np.median(times[1:]))
    return rest * 1e3, times[0] / rest


def measure(net, batch, rounds):
    """{threads: (ms, first-epoch ratio)}: of ``rounds`` fits on 1 and on 2 threads,
    alternating, the fastest fit's epoch and the median first-epoch ratio (a fit's first
    epoch and its later ones meet the same noise)."""
    fits = {1: [], 2: []}
    for _ in range(rounds):
        for threads in (1, 2):
            fits[threads].append(fit(net, batch, threads))
    return {t: (min(ms for ms, _ in fits[t]), float(np.median([r for _, r in fits[t]])))
            for t in fits}


def trend_ratios(ms):
    """Each point's time over its neighbours' trend: the geometric mean of the two beside it,
    or at an end, the line (in logarithms) through the next two, extended."""
    logs = np.log(ms)
    out = []
    for i in range(len(ms)):
        if 0 < i < len(ms) - 1:
            trend = (logs[i - 1] + logs[i + 1]) / 2
        else:
            a, b = (1, 2) if i == 0 else (i - 1, i - 2)
            trend = 2 * logs[a] - logs[b]
        out.append(float(np.exp(logs[i] - trend)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    import fastbp
    fastbp.Sequential([fastbp.Input((4,)), fastbp.Dense(2)]).compile(
        optimizer="adam", loss="mse").fit(np.zeros((8, 4), np.float32), np.zeros((8, 2)),
                                          verbose=0)  # load the kernels: a warm cache
    started = time.strftime("%Y-%m-%d %H:%M")
    flags, sections = [], []
    for net in NETS:
        label = (f"{net[0]} x {sweep.width_label(cell(net, 0))} {net[3]}, {net[2]} inputs, "
                 f"{net[4]}")
        rows = {1: [], 2: []}
        for batch in BATCHES:
            best = measure(net, batch, args.rounds)
            for threads in (1, 2):
                rows[threads].append(best[threads])
            print(label, batch, rows[1][-1], rows[2][-1], flush=True)
        ms = {t: [r[0] for r in rows[t]] for t in rows}
        trend = {t: trend_ratios(ms[t]) for t in ms}
        lines = [f"### {label}", "",
                 "| batch | 1 thread, ms | 2 threads, ms | 2t / 1t | against the batch trend, "
                 "1t / 2t | first epoch / later, 1t / 2t |", "|---|---|---|---|---|---|"]
        for i, batch in enumerate(BATCHES):
            ratio = ms[2][i] / ms[1][i]
            firsts = (rows[1][i][1], rows[2][i][1])
            marks = []
            if ratio > LIMIT:
                marks.append(f"threads {ratio:.2f}x")
            for t in (1, 2):
                if trend[t][i] > LIMIT:
                    marks.append(f"batch trend {trend[t][i]:.2f}x on {t} thread(s)")
                if firsts[t - 1] > LIMIT:
                    marks.append(f"first epoch {firsts[t - 1]:.2f}x on {t} thread(s)")
            flags += [f"{label}, batch {batch}: {m}" for m in marks]
            lines.append(f"| {batch} | {ms[1][i]:.1f} | {ms[2][i]:.1f} | {ratio:.2f} | "
                         f"{trend[1][i]:.2f} / {trend[2][i]:.2f} | {firsts[0]:.2f} / "
                         f"{firsts[1]:.2f} |" + (" **" + "; ".join(marks) + "**" if marks
                                                 else ""))
        sections.append("\n".join(lines))
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    summary = ("No point beyond 1.5x." if not flags else
               f"{len(flags)} point(s) beyond 1.5x:\n\n" + "\n".join(f"* {f}" for f in flags))
    text = (f"# Cliffs: batch size, thread count, first epoch\n\n`python bench/cliffs.py "
            f"--rounds {args.rounds}`, {started}; {sweep.ROWS} rows, Adam; a fit's median "
            f"epoch after the first, the best of {args.rounds} fit(s) "
            f"({', '.join(map(str, BATCHES))} rows a batch); load average at the end {load}.\n\n{summary}\n\n" + "\n\n".join(sections) + "\n")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "cliffs.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
