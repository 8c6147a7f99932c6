"""The matrix-product rate of a shard's products, one BLAS thread: by rows per product, and
split by rows against split by columns.

    python bench/small_products.py

Table 1, for widths n = 128, 512, 1024 and m = 16, 32, 64 rows: the forward product
(m, n) @ (n, n), the input gradient (m, n) @ (n, n).T and the weight gradient
(m, n).T @ (m, n). Two row shards halve a batch's rows: at batch 32 each product runs at the
16-row rate.

Table 2, for widths 256, 512, 1024 and batches of 32 and 64 rows, one thread's share of two:
by rows it multiplies its half of the rows, (m/2, n) @ (n, n); by columns all m rows by half of
W's columns (forward), rows (input gradient) or the layer input's columns (weight gradient),
as strided views that BLAS takes with leading dimensions, no copy. The same multiply-adds each
way.

GFLOP/s, the mean of 2,000-3,000 calls after one warm-up. Used in docs/engineering.md ("Where
two threads lose").
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


def by_rows(rng):
    print("| n | m | forward | input gradient (W.T) | weight gradient |")
    print("|---|---|---|---|---|")
    for n in (128, 512, 1024):
        W = rng.standard_normal((n, n)).astype(np.float32)
        grad_w = np.empty((n, n), np.float32)
        for m in (16, 32, 64):
            a = rng.standard_normal((m, n)).astype(np.float32)
            g = rng.standard_normal((m, n)).astype(np.float32)
            out = np.empty((m, n), np.float32)
            flops = 2 * m * n * n
            print(f"| {n} | {m} | {rate(lambda: np.dot(a, W, out), flops, 2000):.0f} | "
                  f"{rate(lambda: np.dot(g, W.T, out), flops, 2000):.0f} | "
                  f"{rate(lambda: np.dot(a.T, g, grad_w), flops, 2000):.0f} |")


def rows_or_columns(rng):
    print("| n | batch | forward rows / columns | input gradient rows / columns | "
          "weight gradient rows / columns |")
    print("|---|---|---|---|---|")
    for n in (256, 512, 1024):
        W = rng.standard_normal((n, n)).astype(np.float32)
        half = n // 2
        for m in (32, 64):
            a = rng.standard_normal((m, n)).astype(np.float32)
            g = rng.standard_normal((m, n)).astype(np.float32)
            rows = m // 2
            flops = 2 * rows * n * n  # one thread's share, either way
            cells = [(rate(lambda: a[:rows] @ W, flops), rate(lambda: a @ W[:, :half], flops)),
                     (rate(lambda: g[:rows] @ W.T, flops), rate(lambda: g @ W[:half].T, flops)),
                     (rate(lambda: a[:rows].T @ g[:rows], flops),
                      rate(lambda: a[:, :half].T @ g, flops))]
            print(f"| {n} | {m} | " + " | ".join(f"{r:.0f} / {c:.0f}" for r, c in cells) + " |")


def main():
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        by_rows(rng)
        print()
        rows_or_columns(rng)


if __name__ == "__main__":
    main()
