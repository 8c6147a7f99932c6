"""predict's speed over network and batch shapes: median milliseconds per call.

    python bench/predict.py                    # this checkout
    PYTHONPATH=/path/to/other/checkout python bench/predict.py   # another version, to compare

Also checks, for each shape, that every 97th row predicted alone has the same bits as in the
full batch (``invariant``).
"""

import time

import numpy as np

import fastbp

SHAPES = [  # (rows, inputs, hidden layers, outputs)
    (1, 30, [64, 64], 2),
    (32, 30, [64, 64], 2),
    (1000, 30, [64, 64], 2),
    (10000, 30, [64, 64], 2),
    (10000, 100, [256, 256], 10),
    (10000, 784, [512, 512], 10),
    (2000, 256, [1024, 1024], 10),
]


def median_ms(fn, budget=0.5):
    fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    calls = max(1, int(budget / max(once, 1e-6)))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times)) * 1e3


def main():
    rng = np.random.default_rng(0)
    print(f"fastbp from {fastbp.__file__}, {fastbp.get_num_threads()} threads")
    print(f"{'rows':>6} {'network':<22}{'ms per predict':>15}  invariant")
    for rows, n_in, hidden, k in SHAPES:
        layers = [fastbp.Input((n_in,))] + [fastbp.Dense(h, activation="relu") for h in hidden]
        model = fastbp.Sequential(layers + [fastbp.Dense(k, activation="softmax")], seed=0)
        X = rng.standard_normal((rows, n_in)).astype(np.float32)
        ms = median_ms(lambda: model.predict(X))
        full = model.predict(X)
        same = all(np.array_equal(model.predict(X[r:r + 1])[0], full[r])
                   for r in range(0, rows, 97))
        net = "-".join(map(str, [n_in] + hidden + [k]))
        print(f"{rows:>6} {net:<22}{ms:>15.3f}  {same}")


if __name__ == "__main__":
    main()
