"""What the second core costs a small-batch update: the cache lines two threads pass back and forth.

    python bench/coherence.py            # reg's 18,817 parameters
    python bench/coherence.py 7434       # small's

Two threads run ``reps`` rounds of the two phases of a parallel batch of fastbp's epoch loop
(``kernels/epoch.py``), meeting at the same spin barrier: first a stand-in for the shard (what
it does to shared memory, without the arithmetic), then the real Adam update
(``optim.update_segment``) of the thread's half of the parameters from both threads'
gradients. Per phase, the mean cycle-counter ticks of each thread:

* ``local``: the first phase does nothing, so every line the update touches is already in the
  updating core's cache;
* ``other reads w``: the first phase reads every weight, as the forward pass does, so the other
  core holds a copy of the lines the update then writes;
* ``other writes g``: the first phase writes the thread's whole gradient row, as the backward
  pass does, so half of the gradient the update reads sits in the other core's cache;
* ``shard``: both, as in training;
* ``replicas``: each thread keeps its own copy of the weights and optimizer state and updates
  all of it from both gradients (no weight is shared; each gradient row is read by both).

On the development machine (AMD EPYC, two vCPUs) with 18,817 parameters, the update took about
8 k ticks ``local``, 8 k with ``other writes g`` and 28-34 k with ``other reads w``: the cost
is in writing lines the other core holds, not in reading the other core's lines. The two
phases together: ``shard`` 48-54 k, ``replicas`` 39-51 k.
"""

import sys
from pathlib import Path

import numpy as np
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastbp.codes import ADAM  # noqa: E402
from fastbp.kernels.clock import ticks  # noqa: E402
from fastbp.kernels.optim import update_segment  # noqa: E402
from fastbp.kernels.shared import SY_LINE, load, store  # noqa: E402
from fastbp.optimizers import Adam  # noqa: E402

MODES = {"local": 0, "other reads w": 1, "other writes g": 2, "shard": 3, "replicas": 4}


@njit(nogil=True)
def barrier(sync, s, step):
    """Thread s has reached ``step``; wait until both threads have."""
    store(sync, (1 + s) * SY_LINE, step)
    for o in range(2):
        while load(sync, (1 + o) * SY_LINE) < step:
            pass


@njit(parallel=True, nogil=True, fastmath=True)
def rounds(reps, mode, hyper, w, g, state, w_own, state_own, sync, out):
    """``reps`` rounds of (first phase, barrier, update, barrier) on two threads; adds each
    thread's ticks per phase into ``out`` (2, 2). w (P,), g (2, P), state (2, P); w_own (2, P)
    and state_own (2, 2, P) are the per-thread copies of ``replicas``."""
    n = w.shape[0]
    for i in prange(2):
        s = np.int64(i)
        lo, hi = (0, n // 2) if s == 0 else (n // 2, n)
        for r in range(reps):
            began = ticks()
            total = np.float32(0.0)
            if mode == 1 or mode == 3:
                for j in range(n):
                    total += w[j]
            if mode == 4:
                for j in range(n):
                    total += w_own[s, j]
            if mode >= 2:
                for j in range(n):
                    g[s, j] = total * np.float32(1e-9) + np.float32(j * 1e-7)
            out[s, 0] += ticks() - began
            barrier(sync, s, 2 * r + 1)
            began = ticks()
            if mode == 4:
                update_segment(ADAM, w_own[s], g[0], g[1], np.bool_(True), state_own[s, 0],
                               state_own[s, 1], 0.0, 0.0, hyper, (1e-3, 0.0, 0.0, 0.0), 1.0)
            else:
                update_segment(ADAM, w[lo:hi], g[0, lo:hi], g[1, lo:hi], np.bool_(True),
                               state[0, lo:hi], state[1, lo:hi], 0.0, 0.0, hyper, (1e-3, 0.0, 0.0, 0.0),
                               1.0)
            out[s, 1] += ticks() - began
            barrier(sync, s, 2 * r + 2)


def main(n=18_817, reps=2_000, repeats=3):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(n, dtype=np.float32) * np.float32(0.1)
    g = rng.standard_normal((2, n), dtype=np.float32)
    state = np.abs(rng.standard_normal((2, n), dtype=np.float32))
    w_own, state_own = np.stack([w, w]), np.stack([state, state])
    hyper = Adam(learning_rate=1e-3).hyper()
    sync = np.zeros(3 * SY_LINE, np.int64)
    print(f"{n:,} parameters, {reps:,} rounds, mean cycle-counter ticks per round "
          f"(thread 0 / thread 1), median of {repeats} repeats")
    print("| first phase | first phase ticks | update ticks |\n|---|---|---|")
    for name, mode in MODES.items():
        runs = []
        for _ in range(repeats + 1):
            out = np.zeros((2, 2))
            sync[:] = 0
            rounds(reps, mode, hyper, w, g, state, w_own, state_own, sync, out)
            runs.append(out / reps)
        med = np.median(np.array(runs[1:]), axis=0)  # the first repeat compiles and warms up
        print(f"| {name} | {med[0, 0]:,.0f} / {med[1, 0]:,.0f} | "
              f"{med[0, 1]:,.0f} / {med[1, 1]:,.0f} |")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
