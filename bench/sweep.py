"""Epoch time over a grid of network and batch shapes: fastbp against PyTorch eager and JAX
(one jit per step, and one per epoch with ``lax.scan``) and scikit-learn, each library in a
process of its own, on 2 threads and on 1 (the process pinned to one core).

    python bench/sweep.py --quick            # 32 cells, about 11 minutes
    python bench/sweep.py                    # the full grid (depth 1-6, widths 16-1024, ...)
    python bench/sweep.py --quick --avx2     # every library held to AVX2 (AVX-512 masked)
    python bench/sweep.py --quick --rounds 2 # every cell measured twice, its best kept

Each cell trains a ReLU (or tanh) MLP with Adam on 8,192 random rows (10 classes, or one
regression target) for 4 epochs (12 where an epoch is under 2 GFLOP); the median of the
epochs after the first is the cell's figure. One worker process per library and thread count
stays up for the whole sweep, and the cells are measured one at a time, every worker in turn
on the same cell before the next (one worker runs at a time; the others wait on their
input). So every library's figure for a cell is taken within the same minute: on a shared
machine, another tenant's burst slows a cell, not one library's whole stretch of cells. With
``--rounds N`` each cell is measured N times over (the workers' order reversed every other
round) and keeps each library's fastest. Writes ``bench/results/sweep.md`` (the table: ms per
epoch per library and thread count, and fastbp's speed-up over the fastest peer) and
``bench/results/sweep.png`` (that speed-up as a heat map, 2 threads). Peers that are not
installed are left out (``pip install torch==2.13.0 jax``).
"""

import argparse
import importlib
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np

from workloads import epoch_clock

ROWS = 8192


def cell_flops(cell):
    """Floating-point operations of one epoch's matrix products: 6 per weight and row
    (forward, weight gradient, input gradient), the output layer's included."""
    sizes = [cell["inputs"], *hidden(cell), 10 if cell["task"] == "classification" else 1]
    return 6 * ROWS * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def machine_rate():
    """This process's float32 matrix-product rate, GFLOP/s: NumPy's 2048 x 2048 product,
    best of 5 (the limit the cells' rates are read against)."""
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    b = a.copy()
    a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 2048 ** 3 / best / 1e9


def epochs(cell):
    """Epochs per cell: 4, or 12 where an epoch is short (under 2 GFLOP: milliseconds), so
    that the median of the epochs after the first holds against the machine's noise."""
    return 12 if cell_flops(cell) < 2e9 else 4


HERE = os.path.dirname(os.path.abspath(__file__))


def grid(quick):
    if quick:
        cells = [dict(depth=d, width=w, batch=b, inputs=i, act="relu", task="classification")
                 for d, w, b, i in itertools.product((1, 3), (16, 128, 512), (32, 256),
                                                     (32, 256))]
        # and the grid's other corners: depth 6, width 1024, tapering, batches 16 and 2048,
        # 8 and 1024 inputs, tanh, regression
        for d, w, b, i, act, task, taper in (
                (6, 64, 128, 64, "tanh", "regression", 1),
                (6, 256, 64, 32, "relu", "classification", 1),
                (2, 1024, 2048, 1024, "relu", "classification", 1),
                (2, 1024, 64, 512, "tanh", "classification", 1),
                (4, 512, 128, 128, "relu", "classification", 2),
                (3, 256, 32, 1024, "relu", "regression", 2),
                (1, 256, 16, 8, "tanh", "regression", 1),
                (3, 32, 2048, 8, "relu", "regression", 1)):
            cells.append(dict(depth=d, width=w, batch=b, inputs=i, act=act, task=task,
                              taper=taper))
        return cells
    cells = []
    for d, w, b, i, act, task in itertools.product((1, 2, 4, 6), (16, 64, 256, 1024),
                                                   (16, 128, 2048), (8, 128, 1024),
                                                   ("relu", "tanh"),
                                                   ("classification", "regression")):
        cells.append(dict(depth=d, width=w, batch=b, inputs=i, act=act, task=task))
    return cells


def hidden(cell):
    """The hidden widths of a cell: ``depth`` layers of ``width``, or tapering from
    ``width`` by ``taper`` per layer."""
    taper = cell.get("taper", 1)
    return tuple(max(1, cell["width"] // taper ** i) for i in range(cell["depth"]))


def width_label(cell):
    return "-".join(map(str, hidden(cell))) if cell.get("taper", 1) > 1 else str(cell["width"])


def data(cell):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((ROWS, cell["inputs"])).astype(np.float32)
    if cell["task"] == "classification":
        return X, rng.integers(0, 10, ROWS)
    return X, rng.standard_normal(ROWS).astype(np.float32)


def epochs_fastbp(cell):
    import fastbp
    X, y = data(cell)
    k = 10 if cell["task"] == "classification" else 1
    layers = [fastbp.Input((cell["inputs"],))] + [
        fastbp.Dense(h, activation=cell["act"]) for h in hidden(cell)]
    model = fastbp.Sequential(layers + [fastbp.Dense(k, activation="softmax" if k > 1
                                                     else None)], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy" if k > 1 else "mse")
    times = []
    model.fit(X, y, batch_size=cell["batch"], epochs=epochs(cell), verbose=0,
              callbacks=[epoch_clock(times)()])
    return times


def epochs_torch(cell):
    import torch
    X, y = data(cell)
    k = 10 if cell["task"] == "classification" else 1
    modules, width = [], cell["inputs"]
    for h in hidden(cell):
        modules += [torch.nn.Linear(width, h),
                    torch.nn.ReLU() if cell["act"] == "relu" else torch.nn.Tanh()]
        width = h
    net = torch.nn.Sequential(*modules, torch.nn.Linear(width, k))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y) if k > 1 else torch.from_numpy(y).reshape(-1, 1)
    loss_fn = torch.nn.functional.cross_entropy if k > 1 else torch.nn.functional.mse_loss
    times = []
    for _ in range(epochs(cell)):
        start = time.perf_counter()
        order = torch.randperm(ROWS)
        for lo in range(0, ROWS, cell["batch"]):
            rows = order[lo:lo + cell["batch"]]
            opt.zero_grad()
            loss_fn(net(Xt[rows]), yt[rows]).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def jax_network(cell):
    """The cell's network in JAX: ``(params, adam_step)``, ``adam_step(p, m, v, t, xb, yb)``
    one Adam step (lr 1e-3) returning ``(p, m, v)``, to be jitted by the caller."""
    import jax
    import jax.numpy as jnp
    k = 10 if cell["task"] == "classification" else 1
    key = jax.random.PRNGKey(0)
    sizes = [cell["inputs"], *hidden(cell), k]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (a, b)) * jnp.sqrt(2.0 / a), jnp.zeros(b)))
    act = jax.nn.relu if cell["act"] == "relu" else jnp.tanh

    def loss(p, xb, yb):
        h = xb
        for W, b in p[:-1]:
            h = act(h @ W + b)
        out = h @ p[-1][0] + p[-1][1]
        if k > 1:
            return -jnp.mean(jax.nn.log_softmax(out)[jnp.arange(xb.shape[0]), yb])
        return jnp.mean((out[:, 0] - yb) ** 2)

    def adam_step(p, m, v, t, xb, yb):
        g = jax.grad(loss)(p, xb, yb)
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
        scale = 1e-3 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        p = jax.tree_util.tree_map(lambda a, b, c: a - scale * b / (jnp.sqrt(c) + 1e-7), p, m, v)
        return p, m, v

    return params, adam_step


def epochs_jax(cell):
    """JAX with one jitted call per step, a Python loop over the batches."""
    import jax
    import jax.numpy as jnp
    X, y = data(cell)
    params, adam_step = jax_network(cell)
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    step = jax.jit(adam_step)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    times, t = [], 0
    rng = np.random.default_rng(0)
    for _ in range(epochs(cell)):
        start = time.perf_counter()
        order = rng.permutation(ROWS)
        for lo in range(0, ROWS - cell["batch"] + 1, cell["batch"]):  # whole batches: one jit
            t += 1
            rows = order[lo:lo + cell["batch"]]
            params, m, v = step(params, m, v, t, Xj[rows], yj[rows])
        jax.block_until_ready(params)
        times.append(time.perf_counter() - start)
    return times


def epochs_jax_scan(cell):
    """JAX with one jitted call per epoch: the step of ``epochs_jax`` inside ``lax.scan`` over
    the epoch's batches (the strongest JAX variant of BENCHMARKS.md on small networks)."""
    import jax
    import jax.numpy as jnp
    X, y = data(cell)
    params, adam_step = jax_network(cell)
    batch = cell["batch"]
    n_batches = ROWS // batch

    def step(carry, batch_data):
        p, m, v, t = carry
        t = t + 1
        p, m, v = adam_step(p, m, v, t, *batch_data)
        return (p, m, v, t), None

    @jax.jit
    def epoch(carry, Xj, yj, order):
        xs = Xj[order].reshape(n_batches, batch, -1)
        ys = yj[order].reshape(n_batches, batch)
        carry, _ = jax.lax.scan(step, carry, (xs, ys))
        return carry

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    carry = (params, zeros, zeros, jnp.float32(0.0))
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    times = []
    rng = np.random.default_rng(0)
    for _ in range(epochs(cell)):
        start = time.perf_counter()
        order = jnp.asarray(rng.permutation(ROWS)[:n_batches * batch])  # whole batches
        carry = epoch(carry, Xj, yj, order)
        jax.block_until_ready(carry)
        times.append(time.perf_counter() - start)
    return times


def epochs_sklearn(cell):
    """scikit-learn's MLP, solver adam, ``partial_fit`` = one epoch."""
    import warnings

    from sklearn.neural_network import MLPClassifier, MLPRegressor
    X, y = data(cell)
    cls = MLPClassifier if cell["task"] == "classification" else MLPRegressor
    model = cls(hidden_layer_sizes=hidden(cell), activation=cell["act"],
                batch_size=cell["batch"], solver="adam", random_state=0)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs(cell)):
            start = time.perf_counter()
            if cls is MLPClassifier:
                model.partial_fit(X, y, classes=np.arange(10))
            else:
                model.partial_fit(X, y)
            times.append(time.perf_counter() - start)
    return times


RUNNERS = {"fastbp": epochs_fastbp, "torch": epochs_torch, "jax": epochs_jax,
           "jax_scan": epochs_jax_scan, "sklearn": epochs_sklearn}


def worker(library, threads, cells):
    """In a fresh process: say "ready" once set up, then read cell indices from stdin, one per
    line, and answer each with the cell's median epoch ms as a JSON line (null where the
    library fails), until stdin closes. One thread: the process is pinned to one core before
    any library loads (JAX's CPU client, told to use one thread by XLA_FLAGS, still ran its
    products on two cores). The library ``machine`` answers with the machine's
    matrix-product rate instead."""
    if threads == 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if library == "torch":
        import torch
        torch.set_num_threads(threads)
    if library == "fastbp":
        import fastbp
        fastbp.set_num_threads(threads)
    # imported before the first cell, not while another worker's cell runs
    for module in {"jax": ["jax"], "jax_scan": ["jax"], "sklearn": ["sklearn.neural_network"]
                   }.get(library, []):
        importlib.import_module(module)
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        value = None
        try:
            if library == "machine":
                value = machine_rate()
            else:
                value = float(np.median(RUNNERS[library](cells[int(line)])[1:])) * 1e3
        except Exception as error:  # noqa: BLE001  (a missing peer, an unsupported shape)
            print(f"{library} {cells[int(line)]}: {type(error).__name__}: {error}",
                  file=sys.stderr)
        print(json.dumps(value), flush=True)


class Worker:
    """A ``worker`` process of one library on ``threads`` threads, asked one cell at a time."""

    def __init__(self, library, threads, args):
        self.key = (library, threads)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                   OPENBLAS_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
                   XLA_FLAGS="--xla_cpu_multi_thread_eigen="
                   f"{'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}")
        if args.avx2:
            env.update(AVX2_ONLY)
            env["XLA_FLAGS"] += " --xla_cpu_max_isa=AVX2"
        command = [sys.executable, __file__, "--worker", library, str(threads)]
        if args.quick:
            command.insert(2, "--quick")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)
        self.process.stdout.readline()  # "ready": its imports are done before the next starts
        self.seconds = 0.0

    def measure(self, index):
        """The worker's figure for cell ``index`` (None if it failed or the worker is gone)."""
        if self.process.poll() is not None:
            return None
        start = time.perf_counter()
        try:
            self.process.stdin.write(f"{index}\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except BrokenPipeError:
            return None
        self.seconds += time.perf_counter() - start
        return json.loads(line) if line.strip() else None

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def fmt(value):
    return "-" if value is None else f"{value:.1f}"


def best_of(library, values):
    """The best of a cell's figures over the rounds (None where a round failed): the least
    epoch time, or for the machine's rate the highest."""
    values = [v for v in values if v is not None]
    return (max if library == "machine" else min)(values) if values else None


def installed(library):
    if library in ("fastbp", "machine"):
        return True
    module = {"jax_scan": "jax"}.get(library, library)
    return importlib.util.find_spec(module) is not None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--avx2", action="store_true",
                        help="every library held to AVX2 (AVX-512 masked), as on a CPU "
                             "without it; writes sweep-avx2.md and .png")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every cell this many times over; each library keeps its "
                             "fastest")
    parser.add_argument("--cells", help="comma-separated indices (from 0) of the grid's cells "
                                         "to measure, in that order (default: all); writes "
                                         "sweep-cells.md (or sweep-avx2-cells.md) and .png")
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "THREADS"))
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1; received {args.rounds}")
    cells = grid(args.quick)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), cells)
        return
    try:
        chosen = (range(len(cells)) if not args.cells
                  else [int(i) for i in args.cells.split(",")])
    except ValueError:
        chosen = [-1]
    if any(not 0 <= i < len(cells) for i in chosen):
        parser.error(f"--cells takes indices from 0 to {len(cells) - 1}; received {args.cells}")
    workers = [Worker(library, threads, args)
               for library in [lib for lib in RUNNERS if installed(lib)] for threads in (2, 1)]
    machine = [Worker("machine", threads, args) for threads in (2, 1)]
    results = {w.key: [None] * len(chosen) for w in workers}
    for w in machine:  # the machine's rate: the best of one measurement per round
        results[w.key] = [best_of("machine", [w.measure(0) for _ in range(args.rounds)])]
    for i, index in enumerate(chosen):
        cell = cells[index]
        figures = {w.key: [] for w in workers}
        for round_ in range(args.rounds):
            for w in workers if round_ % 2 == 0 else workers[::-1]:
                figures[w.key].append(w.measure(index))
        for key, values in figures.items():
            results[key][i] = best_of(key[0], values)
        done = ", ".join(f"{lib} {t}t {fmt(results[(lib, t)][i])}" for lib, t in results
                         if lib != "machine")
        print(f"cell {i + 1}/{len(chosen)}, {width_label(cell)} at batch {cell['batch']}: {done}",
              file=sys.stderr, flush=True)
    for w in workers + machine:
        w.close()
    print("seconds per worker: " + ", ".join(f"{lib} {t}t {w.seconds:.0f}"
                                            for w in workers for lib, t in [w.key]),
          file=sys.stderr)
    name = ("sweep-avx2" if args.avx2 else "sweep") + ("-cells" if args.cells else "")
    write([cells[i] for i in chosen], results, name, args.rounds,
          " ".join(["python bench/sweep.py", *sys.argv[1:]]))


#: the environment that holds each library to AVX2 + FMA: Numba's target (fastbp's portable
#: x86-64-v3 code, as its wheel ships), OpenBLAS's kernels (fastbp's products, NumPy's,
#: scikit-learn's), PyTorch's kernels and oneDNN; XLA's through XLA_FLAGS
AVX2_ONLY = {"NUMBA_CPU_NAME": "x86-64-v3", "NUMBA_CPU_FEATURES": "",
             "OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2",
             "DNNL_MAX_CPU_ISA": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def write(cells, results, name, rounds, command):
    peers = sorted({lib for lib, _ in results if lib not in ("fastbp", "machine")})
    rates = {t: results.get(("machine", t), [None])[0] for t in (2, 1)}
    best = f", each library's best of {rounds} rounds" if rounds > 1 else ""
    lines = [f"Epoch time, ms (median of the epochs after the first: 3, or 11 for epochs "
             f"under 2 GFLOP; {ROWS} rows, Adam{best}), "
             f"{time.strftime('%Y-%m-%d')}, `{command}`. The machine's "
             f"float32 matrix-product rate in this run (NumPy 2048 x 2048, best of 5): "
             + ", ".join(f"{rates[t]:.0f} GFLOP/s on {t} thread(s)" for t in (2, 1)
                         if rates[t]) + "; fastbp's share of it is its products' rate "
             "(6 flops per weight and row) over that.",
             "",
             "| depth | width | batch | inputs | act | task | " + " | ".join(
                 f"{lib} {t}t" for lib in ["fastbp"] + peers for t in (2, 1)) +
             " | fastbp / best peer, 2t | 1t | fastbp % of machine, 2t | 1t |",
             "|" + "---|" * (6 + 2 * (1 + len(peers)) + 4)]
    speedups = []
    for i, cell in enumerate(cells):
        row = [str(cell["depth"]), width_label(cell)] + [
            str(cell[k]) for k in ("batch", "inputs", "act", "task")]
        figures = {}
        for lib in ["fastbp"] + peers:
            for t in (2, 1):
                value = results.get((lib, t), [None] * len(cells))[i]
                figures[(lib, t)] = value
                row.append("-" if value is None else f"{value:.1f}")
        ratios = []
        for t in (2, 1):
            best = min((figures[(lib, t)] for lib in peers if figures[(lib, t)]), default=None)
            ours = figures[("fastbp", t)]
            ratios.append(best / ours if best and ours else None)
        speedups.append(ratios[0])
        row += ["-" if r is None else f"{r:.2f}x" for r in ratios]
        for t in (2, 1):
            ours = figures[("fastbp", t)]
            row.append(f"{cell_flops(cell) / (ours / 1e3) / 1e9 / rates[t]:.0%}"
                       if ours and rates[t] else "-")
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", name + ".md"), "w") as handle:
        handle.write(text)
    print(text)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    values = np.array([np.nan if s is None else s for s in speedups])
    labels = [f"d{c['depth']} w{width_label(c)} b{c['batch']} i{c['inputs']} {c['act'][:4]} "
              f"{c['task'][:3]}" for c in cells]
    figure, axes = plt.subplots(figsize=(6, max(3, 0.22 * len(cells))))
    image = axes.imshow(values.reshape(-1, 1), cmap="RdYlGn", vmin=0.5, vmax=2.0,
                        aspect="auto")
    axes.set_yticks(range(len(cells)), labels, fontsize=6)
    axes.set_xticks([0], ["fastbp / best peer, 2 threads"])
    for i, v in enumerate(values):
        if not np.isnan(v):
            axes.text(0, i, f"{v:.2f}x", ha="center", va="center", fontsize=6)
    figure.colorbar(image)
    figure.tight_layout()
    figure.savefig(os.path.join(HERE, "results", name + ".png"), dpi=120)


if __name__ == "__main__":
    main()
