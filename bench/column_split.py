"""One thread's share of a batch's products, split by rows (fastbp's row shards) or by
columns (each thread all the rows, half of the units), one BLAS thread.

    python bench/column_split.py

For widths n = 256, 512, 1024 and batches of 32 and 64 rows, two threads: by rows a thread
multiplies its half of the rows, (m/2, n) @ (n, n); by columns all m rows by half of W's
columns (forward), rows (input gradient) or the layer input's columns (weight gradient), as
strided views that BLAS takes with leading dimensions, no copy. The same multiply-adds each
way; GFLOP/s (mean of 3,000 calls after one warm-up). Used in docs/engineering.md ("Where two
threads lose").
"""

import time

import numpy as np
from threadpoolctl import threadpool_limits


def rate(f, flops, reps=3000):
    f()
    start = time.perf_counter()
    for _ in range(reps):
        f()
    return flops * reps / (time.perf_counter() - start) / 1e9


def main():
    rng = np.random.default_rng(0)
    print("| n | batch | forward rows / columns | input gradient rows / columns | "
          "weight gradient rows / columns |")
    print("|---|---|---|---|---|")
    with threadpool_limits(1):
        for n in (256, 512, 1024):
            W = rng.standard_normal((n, n)).astype(np.float32)
            half = n // 2
            for m in (32, 64):
                a = rng.standard_normal((m, n)).astype(np.float32)
                g = rng.standard_normal((m, n)).astype(np.float32)
                rows = m // 2
                flops = 2 * rows * n * n  # one thread's share, either way
                cells = [(rate(lambda: a[:rows] @ W, flops), rate(lambda: a @ W[:, :half], flops)),
                         (rate(lambda: g[:rows] @ W.T, flops),
                          rate(lambda: g @ W[:half].T, flops)),
                         (rate(lambda: a[:rows].T @ g[:rows], flops),
                          rate(lambda: a[:, :half].T @ g, flops))]
                print(f"| {n} | {m} | " + " | ".join(f"{r:.0f} / {c:.0f}" for r, c in cells)
                      + " |")


if __name__ == "__main__":
    main()
