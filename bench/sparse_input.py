"""Sparse input: training on the CSR rows against densifying first, and against scikit-learn.

    python bench/sparse_input.py            # writes bench/results/sparse.md and prints it

One-hot-like data: ``n`` rows, 10,000 columns, 1% and 5% of the entries stored (random 0/1
features, a target from a random linear rule). ``MLPClassifier(hidden_layer_sizes=(64,),
batch_size=200, max_iter=3)`` (Adam, 3 epochs, one untimed fit first), fit wall time, median
of 3: fastbp on the CSR matrix, fastbp on ``X.toarray()`` (the densification's own time
given apart), and scikit-learn's MLP on the CSR matrix.
"""

import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

RESULTS = Path(__file__).resolve().parent / "results" / "sparse.md"


def data(n, f, density, seed=0):
    rng = np.random.default_rng(seed)
    nnz_row = max(1, int(round(density * f)))
    indices = np.stack([rng.choice(f, nnz_row, replace=False) for _ in range(n)])
    X = sp.csr_matrix((np.ones(n * nnz_row, np.float32), indices.ravel(),
                       np.arange(0, n * nnz_row + 1, nnz_row)), shape=(n, f))
    w = rng.standard_normal(f)
    y = (X @ w > 0).astype(int)
    return X, y


def median_fit(make, X, y, repeats=3):
    make().fit(X, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        make().fit(X, y)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    import fastbp
    from sklearn.neural_network import MLPClassifier as SkMLP
    warnings.simplefilter("ignore")
    settings = dict(hidden_layer_sizes=(64,), batch_size=200, max_iter=3, random_state=0)
    lines = [f"Sparse input, {time.strftime('%Y-%m-%d')} (`python bench/sparse_input.py`): fit of "
             f"3 epochs, median of 3, seconds.", "",
             "| rows x columns, stored | fastbp on CSR | fastbp on dense (+ toarray) | "
             "scikit-learn on CSR | dense / CSR | scikit-learn / CSR |", "|---|---|---|---|---|---|"]
    for n, density in ((5000, 0.01), (5000, 0.05)):
        X, y = data(n, 10_000, density)
        start = time.perf_counter()
        dense = X.toarray()
        to_dense = time.perf_counter() - start
        ours = median_fit(lambda: fastbp.MLPClassifier(**settings), X, y)
        ours_dense = median_fit(lambda: fastbp.MLPClassifier(**settings), dense, y)
        theirs = median_fit(lambda: SkMLP(**settings), X, y)
        lines.append(f"| {n:,} x 10,000, {density:.0%} | {ours:.3f} | {ours_dense:.3f} "
                     f"(+ {to_dense:.3f}) | {theirs:.3f} | {(ours_dense + to_dense) / ours:.2f}x "
                     f"| {theirs / ours:.2f}x |")
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
