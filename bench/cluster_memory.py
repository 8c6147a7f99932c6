"""A Parquet table 4x larger than a worker's memory limit, trained to the end by streaming
(``fastbp.dask``, ``keep_blocks=False``) on a local cluster of 2 workers.

    python bench/cluster_memory.py [--limit-mib 1024] [--solver adam]

Writes Parquet files of 250,000 rows x 20 float64 features and a 0/1 target into a temporary
folder until the features hold 4x ``--limit-mib``, fits one epoch (Adam) or three L-BFGS
iterations reading every block from its file in every pass, and reports the time, the loss
and whether the nanny restarted a worker for memory. (A worker holds about 315 MiB before any
data: Python, Numba's kernels, scikit-learn, pandas, pyarrow.)
"""

import argparse
import os
import tempfile
import time
import warnings

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit-mib", type=int, default=1024)
    parser.add_argument("--solver", default="adam", choices=["adam", "lbfgs"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, LocalCluster

    import fastbp
    import fastbp.dask
    limit = args.limit_mib * 2**20
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=limit,
                         dashboard_address=None) as cluster, Client(cluster) as client:
        start = time.perf_counter()
        written, files = 0, 0
        while written < 4 * limit:
            rng = np.random.default_rng(files)
            X = rng.standard_normal((250_000, 20))
            y = ((X[:, 0] + X[:, 1] ** 2 - X[:, 2] * X[:, 3]) > 0.5).astype(int)
            frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)]).assign(y=y)
            frame.to_parquet(os.path.join(tmp, f"part{files:04d}.parquet"))
            written += X.nbytes
            files += 1
        print(f"{written / 2**20:.0f} MiB of features in {files} Parquet files "
              f"({files * 250_000} rows), written in {time.perf_counter() - start:.0f} s; "
              f"worker memory limit {args.limit_mib} MiB")
        table = dd.read_parquet(tmp, blocksize=None)  # a partition per file
        before = set(client.run(os.getpid).values())
        start = time.perf_counter()
        clf = fastbp.dask.MLPClassifier(hidden_layer_sizes=(32,), solver=args.solver,
                                        max_iter=1 if args.solver == "adam" else 3,
                                        random_state=0)
        clf.fit(table.drop(columns="y"), table["y"], keep_blocks=False)
        restarted = len(before - set(client.run(os.getpid).values()))
        print(f"{args.solver}: {clf.n_iter_} {'epoch' if args.solver == 'adam' else 'iteration'}"
              f"(s) in {time.perf_counter() - start:.0f} s, loss {clf.loss_:.4f}, workers "
              f"restarted for memory: {restarted}")


if __name__ == "__main__":
    main()
