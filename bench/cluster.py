"""fastbp.dask on a local cluster (2 worker processes, 1 thread each), against the same fits
on one machine, in the same run.

    python bench/cluster.py [--rows 200000]

1. Distributed L-BFGS against single-machine L-BFGS on the same rows: final losses, their
   relative difference, seconds per iteration of each (the difference is the cluster's round
   trip: parameters out, losses and gradients back).
2. Data-parallel Adam on 2 workers and on 1 worker (same blocks, so the same model) and the
   local fit: test accuracy after the same epochs, throughput, and the time a synchronisation
   costs (from two runs that differ only in ``sync_every``).

A table 4x a worker's memory limit, streamed with ``keep_blocks=False``:
``bench/cluster_memory.py``.
"""

import argparse
import time
import warnings

import numpy as np


def problem(rows, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 20))
    y = ((X[:, 0] + X[:, 1] ** 2 - X[:, 2] * X[:, 3]) > 0.5).astype(int)
    return X, y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import dask.array as da
    from distributed import Client, LocalCluster

    import fastbp
    import fastbp.dask
    X, y = problem(args.rows)
    cut = int(0.8 * len(X))
    Xt, yt, Xv, yv = X[:cut], y[:cut], X[cut:], y[cut:]
    chunks = cut // 4
    dX, dy = da.from_array(Xt, chunks=(chunks, 20)), da.from_array(yt, chunks=chunks)
    fastbp.MLPClassifier(max_iter=1).fit(Xt[:500], yt[:500])  # kernels ready here
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(lambda: fastbp.MLPClassifier(max_iter=1).fit(Xt[:500], yt[:500]))
        settings = dict(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=60, tol=0.0,
                        random_state=0)
        start = time.perf_counter()
        local = fastbp.MLPClassifier(**settings).fit(Xt, yt)
        t_local = (time.perf_counter() - start) / local.n_iter_
        start = time.perf_counter()
        dist = fastbp.dask.MLPClassifier(**settings).fit(dX, dy)
        t_dist = (time.perf_counter() - start) / dist.n_iter_
        print(f"L-BFGS, {cut} rows in 4 blocks, (32,), 60 iterations: loss local "
              f"{local.loss_:.6f}, 2 workers {dist.loss_:.6f} (relative difference "
              f"{abs(dist.loss_ - local.loss_) / local.loss_:.1e}; weights identical: "
              f"{all(np.array_equal(a, b) for a, b in zip(dist.coefs_, local.coefs_))}); "
              f"per iteration local "
              f"{t_local * 1e3:.1f} ms, distributed {t_dist * 1e3:.1f} ms "
              f"({dist.n_evaluations_} evaluations)")

        settings = dict(hidden_layer_sizes=(32,), solver="adam", max_iter=5, tol=0.0,
                        random_state=0)
        start = time.perf_counter()
        local = fastbp.MLPClassifier(**settings).fit(Xt, yt)
        t_local = time.perf_counter() - start
        timings = {}
        for sync in (10, 40):
            start = time.perf_counter()
            dist = fastbp.dask.MLPClassifier(**settings).fit(dX, dy, sync_every=sync)
            timings[sync] = (time.perf_counter() - start, dist.n_rounds_, dist.score(Xv, yv))
        per_sync = (timings[10][0] - timings[40][0]) / (timings[10][1] - timings[40][1])
        with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as one, \
                Client(one) as single:
            with single.as_current():
                single.run(lambda: fastbp.MLPClassifier(max_iter=1).fit(Xt[:500], yt[:500]))
                start = time.perf_counter()
                alone = fastbp.dask.MLPClassifier(**settings).fit(dX, dy, sync_every=10)
                t_one = time.perf_counter() - start
        print(f"Adam, 5 epochs, sync_every=10: test accuracy local {local.score(Xv, yv):.4f}, "
              f"2 workers {timings[10][2]:.4f}, 1 worker {alone.score(Xv, yv):.4f}; "
              f"seconds local {t_local:.2f}, 2 workers {timings[10][0]:.2f}, 1 worker "
              f"{t_one:.2f} ({t_one / timings[10][0]:.2f}x from the second worker); "
              f"a synchronisation costs {per_sync * 1e3:.1f} ms ({timings[10][1]} rounds at "
              f"sync_every=10, {timings[40][1]} at 40)")


if __name__ == "__main__":
    main()
