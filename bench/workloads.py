"""The workloads of BENCHMARKS.md: seeded synthetic data and the network to train on it.

X ~ standard normal float32 (n, f). Classification labels are argmax(X @ T) for a fixed random
T (f, classes); regression targets are the first column of X @ T plus 0.1 noise. Hidden layers
are ReLU; the output is softmax + cross-entropy or linear + squared error; Adam, lr 1e-3.
"""

import time

import numpy as np

#: name -> (n, features, hidden widths, outputs, batch, task)
WORKLOADS = {
    "small": (50_000, 32, (64, 64), 10, 64, "classification"),
    "medium": (50_000, 100, (256, 256), 10, 256, "classification"),
    "wide": (20_000, 512, (1024, 1024), 10, 512, "classification"),
    "reg": (50_000, 16, (128, 128), 1, 32, "regression"),
}


def data(name, seed=0):
    """(X float32 (n, f), y) of a workload: int64 labels or float32 targets."""
    n, f, _, k, _, task = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, f), dtype=np.float32)
    T = rng.standard_normal((f, max(k, 2)), dtype=np.float32)
    scores = X @ T
    if task == "classification":
        return X, scores[:, :k].argmax(axis=1).astype(np.int64)
    return X, (scores[:, 0] + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)


def sizes(name):
    n, f, hidden, k, _, _ = WORKLOADS[name]
    return [f, *hidden, k]


def flops_per_epoch(name):
    """2 n (3 sum s_i s_{i+1} - s_0 s_1): forward, weight gradient, input gradient (none for
    the first layer)."""
    n = WORKLOADS[name][0]
    s = sizes(name)
    return 2 * n * (3 * sum(a * b for a, b in zip(s[:-1], s[1:])) - s[0] * s[1])


def fastbp_model(name, backend="numba", seed=0):
    """The workload's network as a compiled fastbp Sequential."""
    import fastbp

    _, _, hidden, k, _, task = WORKLOADS[name]
    layers = [fastbp.Dense(h, activation="relu", kernel_initializer="he_uniform") for h in hidden]
    if task == "classification":
        layers.append(fastbp.Dense(k, activation="softmax"))
        loss = "categorical_crossentropy"
    else:
        layers.append(fastbp.Dense(k))
        loss = "mse"
    model = fastbp.Sequential(layers, seed=seed)
    model.compile(optimizer=fastbp.optimizers.Adam(learning_rate=1e-3), loss=loss,
                  backend=backend)
    return model


def epoch_clock(times):
    """A fastbp callback class whose instances append each epoch's wall time to ``times``."""
    import fastbp

    class Clock(fastbp.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)
    return Clock
