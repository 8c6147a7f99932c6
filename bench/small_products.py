"""The matrix-product rate of a shard's products by its row count, one BLAS thread.

    python bench/small_products.py

For widths n = 128, 512, 1024 and m = 16, 32, 64 rows: the forward product (m, n) @ (n, n),
the input gradient (m, n) @ (n, n).T and the weight gradient (m, n).T @ (m, n), in GFLOP/s
(mean of 2,000 calls after one warm-up). Two row shards halve a batch's rows: at batch 32 each
product runs at the 16-row rate. Used in docs/engineering.md ("Where two threads lose").
"""

import time

import numpy as np
from threadpoolctl import threadpool_limits


def rate(f, flops, reps=2000):
    f()
    start = time.perf_counter()
    for _ in range(reps):
        f()
    return flops * reps / (time.perf_counter() - start) / 1e9


def main():
    rng = np.random.default_rng(0)
    print("| n | m | forward | input gradient (W.T) | weight gradient |")
    print("|---|---|---|---|---|")
    with threadpool_limits(1):
        for n in (128, 512, 1024):
            W = rng.standard_normal((n, n)).astype(np.float32)
            grad_w = np.empty((n, n), np.float32)
            for m in (16, 32, 64):
                a = rng.standard_normal((m, n)).astype(np.float32)
                g = rng.standard_normal((m, n)).astype(np.float32)
                out = np.empty((m, n), np.float32)
                flops = 2 * m * n * n
                print(f"| {n} | {m} | {rate(lambda: np.dot(a, W, out), flops):.0f} | "
                      f"{rate(lambda: np.dot(g, W.T, out), flops):.0f} | "
                      f"{rate(lambda: np.dot(a.T, g, grad_w), flops):.0f} |")


if __name__ == "__main__":
    main()
