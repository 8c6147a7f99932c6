"""A mixed-type CSV table end to end: reading and preprocessing, then a whole training run,
fastbp against pandas + scikit-learn doing the same.

    python bench/tabular.py [--rows 1000000] [--epochs 2]

Writes a CSV of ``--rows`` rows and 30 columns (20 numeric with 2% missing, 10 categorical
of 5-50 categories with 2% missing, a 0/1 target) into a temporary folder, then times:

1. reading and preprocessing: ``fastbp.tabular.read_table`` + ``Preprocessor`` (fit and
   transform) against ``pandas.read_csv`` + a ``ColumnTransformer`` (``SimpleImputer`` with
   indicator + ``StandardScaler``; ``SimpleImputer`` + ``OneHotEncoder``);
2. the whole run: ``python -m fastbp train`` (a subprocess: reading, preprocessing, training,
   saving) against a script doing the same with scikit-learn's ``MLPClassifier`` (same
   hidden layers 64, 64, batch 256, Adam, ``--epochs`` epochs, no early stopping).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SKLEARN_SCRIPT = """
import sys, time, warnings
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
frame = pd.read_csv(sys.argv[1])
y = frame.pop("target")
numeric = [c for c in frame.columns if c.startswith("x")]
categorical = [c for c in frame.columns if c.startswith("c")]
pre = ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), numeric),
    ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                          OneHotEncoder(handle_unknown="ignore")), categorical)])
X = pre.fit_transform(frame)
clf = MLPClassifier(hidden_layer_sizes=(64, 64), batch_size=256, max_iter=int(sys.argv[2]),
                    random_state=0, n_iter_no_change=10**6, tol=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf.fit(X, y)
print("training accuracy", clf.score(X, y))
"""


def make_csv(path, rows, seed=0):
    import pandas as pd
    rng = np.random.default_rng(seed)
    data = {}
    logit = np.zeros(rows)
    for i in range(20):
        x = rng.standard_normal(rows)
        logit += x * rng.normal(0, 0.5)
        x[rng.random(rows) < 0.02] = np.nan
        data[f"x{i}"] = x
    for i in range(10):
        k = int(rng.integers(5, 51))
        codes = rng.integers(0, k, rows)
        logit += rng.normal(0, 0.5, k)[codes]
        values = np.array([f"cat{i}_{j}" for j in range(k)], dtype=object)[codes]
        values[rng.random(rows) < 0.02] = None
        data[f"c{i}"] = values
    data["target"] = (logit + rng.logistic(size=rows) > 0).astype(int)
    pd.DataFrame(data).to_csv(path, index=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "table.csv")
        start = time.perf_counter()
        make_csv(path, args.rows)
        print(f"{args.rows} rows x 30 columns: {os.path.getsize(path) / 2**20:.0f} MiB of CSV "
              f"written in {time.perf_counter() - start:.1f} s")

        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        from fastbp.tabular import Preprocessor, read_table
        start = time.perf_counter()
        frame = read_table(path)
        y = frame.pop("target")
        X = Preprocessor().fit(frame).transform(frame)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        frame = pd.read_csv(path)
        frame.pop("target")
        numeric = [c for c in frame.columns if c.startswith("x")]
        categorical = [c for c in frame.columns if c.startswith("c")]
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()),
             numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                  OneHotEncoder(handle_unknown="ignore")), categorical)])
        theirs_X = pre.fit_transform(frame)
        theirs = time.perf_counter() - start
        print(f"read + preprocess: fastbp {ours:.2f} s ({X.shape[1]} features), pandas + "
              f"ColumnTransformer {theirs:.2f} s ({theirs_X.shape[1]} features): "
              f"{theirs / ours:.2f}x")
        del X, theirs_X, frame

        env = dict(os.environ)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fastbp", "train", path, "--target", "target",
                        "--epochs", str(args.epochs), "--batch-size", "256",
                        "--validation-split", "0", "--out", os.path.join(tmp, "m.npz")],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", SKLEARN_SCRIPT, path, str(args.epochs)],
                       check=True, stdout=subprocess.DEVNULL)
        theirs = time.perf_counter() - start
        print(f"whole run ({args.epochs} epochs): fastbp train {ours:.1f} s, pandas + "
              f"scikit-learn {theirs:.1f} s: {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
