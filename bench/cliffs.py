"""Cliffs: where a change of batch size or thread count, or the first epoch, costs more than
the trend says.

    python bench/cliffs.py                  # writes bench/results/cliffs.md (about 5 min)
    python bench/cliffs.py --rounds 3       # median of 3 fits per point

For six networks of the sweep's kinds (``bench/sweep.py``: its data, 8192 rows, Adam) and
batch sizes 16 to 2048, the epoch time on 1 thread and on 2, the two alternating in one process
so the shared machine's noise hits both. Three checks, each flagged where it exceeds 1.5x:

* **batch size**: an epoch's time against the trend of its neighbours, the geometric mean of
  the epochs at half and at twice the batch (at the ends, the one neighbour's);
* **thread count**: the 2-thread epoch against the 1-thread one (the shard scheduler runs a
  batch serially where its parallel way is slower, so 2 threads should never lose by much);
* **first epoch**: with the kernels loaded (a warm cache), the first epoch of a fit against
  the median of the later ones.
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


def measure(net, batch, threads, rounds):
    """(median later epoch, median first-epoch ratio) in ms over ``rounds`` fits."""
    import fastbp
    later, first = [], []
    with fastbp._threads.limit(threads):
        for _ in range(rounds):
            times = sweep.epochs_fastbp(cell(net, batch))
            rest = float(np.median(times[1:]))
            later.append(rest * 1e3)
            first.append(times[0] / rest)
    return float(np.median(later)), float(np.median(first))


def trend_ratios(ms):
    """Each point's time over the geometric mean of its neighbours' (one neighbour at the
    ends)."""
    out = []
    for i, t in enumerate(ms):
        near = [ms[j] for j in (i - 1, i + 1) if 0 <= j < len(ms)]
        out.append(t / float(np.exp(np.mean(np.log(near)))))
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
            for threads in (1, 2):
                rows[threads].append(measure(net, batch, threads, args.rounds))
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
            f"--rounds {args.rounds}`, {started}; {sweep.ROWS} rows, Adam, the epoch's median "
            f"after the first ({', '.join(map(str, BATCHES))} rows a batch); load average at "
            f"the end {load}.\n\n{summary}\n\n" + "\n\n".join(sections) + "\n")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "cliffs.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
