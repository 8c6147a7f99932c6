"""Batches split by units against row shards: epoch times of the same fits, one way then the
other, alternating in one process so that the shared machine's noise hits both.

    python bench/units.py                       # the sweep's cells with small batches
    python bench/units.py --rounds 5 --threads 1

For each cell (the sweep's network, data and Adam; ``bench/sweep.py``), ``--rounds`` rounds
of one fit each way; each fit's figure is the median of its epochs after the first. Prints
the median over rounds of each way and the ratio rows / units (above 1: units faster), on
``--threads`` threads (2: the two ways' parallel batches; 1: their serial ones, both the
same bits as their parallel ones). Split by units is forced on or off
(``trainer.split_by_units`` replaced), whatever the cell's shape; the last column says
whether the rule would choose units there.
"""

import argparse
import time

import numpy as np

import sweep
from fastbp import trainer

RULE = trainer.split_by_units

CELLS = [  # depth, width, batch, inputs, act, taper
    (1, 128, 32, 256, "relu", 1),
    (1, 512, 32, 32, "relu", 1),
    (1, 512, 32, 256, "relu", 1),
    (3, 128, 32, 32, "relu", 1),
    (3, 512, 32, 32, "relu", 1),
    (3, 256, 32, 1024, "relu", 2),
    (3, 512, 32, 256, "relu", 1),
    (1, 256, 16, 8, "tanh", 1),
    (6, 256, 64, 32, "relu", 1),
    (2, 1024, 64, 512, "tanh", 1),
    (1, 512, 64, 256, "relu", 1),
    (3, 512, 128, 32, "relu", 1),
    (4, 512, 128, 128, "relu", 2),
    (1, 128, 256, 256, "relu", 1),
    (3, 512, 256, 256, "relu", 1),
    (2, 1024, 256, 1024, "relu", 1),
    (2, 256, 32, 32, "relu", 1),
    (1, 1024, 32, 32, "relu", 1),
    (2, 128, 64, 128, "relu", 1),
    (3, 64, 32, 64, "relu", 1),
    (6, 256, 32, 32, "relu", 1),
    (2, 512, 64, 64, "tanh", 1),
]


def one_fit(cell, units):
    trainer.split_by_units = lambda layout, batch_size, shards, X, diagnostics=False: (
        units and shards > 1 and layout.splits_by_units)
    times = sweep.epochs_fastbp(cell)
    return float(np.median(times[1:])) * 1e3


def chosen_by_rule(cell):
    import fastbp
    from fastbp.layout import Layout
    layers = [fastbp.Dense(h, activation=cell["act"]) for h in sweep.hidden(cell)]
    layout = Layout(cell["inputs"], layers + [fastbp.Dense(10)])
    return RULE(layout, cell["batch"], 2, np.zeros((1, 1)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cells", type=int, nargs="*", help="indices into CELLS (default all)")
    args = parser.parse_args()
    import fastbp
    fastbp.set_num_threads(args.threads)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {args.threads} threads, {args.rounds} rounds\n")
    print("| depth | width | batch | inputs | act | rows ms | units ms | rows / units | rule |")
    print("|---|---|---|---|---|---|---|---|---|")
    chosen = [CELLS[i] for i in args.cells] if args.cells else CELLS
    for depth, width, batch, inputs, act, taper in chosen:
        cell = dict(depth=depth, width=width, batch=batch, inputs=inputs, act=act,
                    task="classification", taper=taper)
        one_fit(cell, True)  # load the kernels
        rows, units = [], []
        for _ in range(args.rounds):
            rows.append(one_fit(cell, False))
            units.append(one_fit(cell, True))
        r, u = np.median(rows), np.median(units)
        print(f"| {depth} | {sweep.width_label(cell)} | {batch} | {inputs} | {act} | {r:.1f} | "
              f"{u:.1f} | {r / u:.2f}x | {'units' if chosen_by_rule(cell) else 'rows'} |",
              flush=True)


if __name__ == "__main__":
    main()
