"""What the compiled engine promises about itself: one signature for every model and every
input, nothing compiled after ``warmup``, and no allocation inside the epoch loop."""

import os
import subprocess
import sys

import numpy as np

import fastbp
from fastbp.kernels import epoch as k_epoch
from fastbp.kernels import inference as k_inference

ALLOCATIONS = """
import numpy as np, fastbp
from numba import types
from numba.core.runtime import rtsys
from fastbp.kernels import epoch
rng = np.random.default_rng(0)
for middle in (fastbp.Dropout(0.2), fastbp.BatchNormalization()):
    counts = []
    for n in (640, 6400):  # 10 and 100 mini-batches per epoch
        X = rng.standard_normal((n, 12)).astype(np.float32)
        y = (X[:, 0] > X[:, 1]).astype(int) + (X[:, 2] > 0)
        model = fastbp.Sequential([fastbp.Dense(32, activation="relu"), middle,
                                   fastbp.Dense(3, activation="softmax")], seed=0)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        model.fit(X, y, epochs=1, batch_size=64, verbose=0)  # compiles or loads the cache; makes buffers
        before = rtsys.get_allocation_stats().alloc
        model.fit(X, y, epochs=3, batch_size=64, verbose=0)
        counts.append(rtsys.get_allocation_stats().alloc - before)
    print(*counts, end=" ")
arrays = sum(isinstance(a, types.Array) + sum(isinstance(b, types.Array) for b in
             getattr(a, "types", ())) for a in epoch.train_epoch.signatures[0])  # csr: a tuple
print(arrays)
"""


def test_no_allocation_in_the_epoch_loop():
    """Numba's runtime counts what compiled code allocates, plus one record per array
    argument of a call from Python (a wrapper around the NumPy array, not a copy). Three epochs
    of 10 mini-batches and three of 100, sharded (dropout) or not (batch norm), count exactly
    three times the array arguments of ``train_epoch``: nothing is allocated inside."""
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    result = subprocess.run([sys.executable, "-c", ALLOCATIONS], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    *counts, arrays = map(int, result.stdout.split())
    assert counts == [3 * arrays] * 4, (counts, arrays)


def test_one_compiled_signature_serves_every_model():
    """Different depths, widths, activations, losses, layers and optimizers reuse the one
    compiled ``train_epoch``: the network reaches it as integer tables, not as types."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    models = [
        ([fastbp.Dense(8, activation="tanh"), fastbp.Dense(2, activation="softmax")],
         "categorical_crossentropy", "adam", y),
        ([fastbp.Dense(16, activation="relu"), fastbp.Dropout(0.3), fastbp.Dense(4, activation="elu"),
          fastbp.Dense(1, activation="sigmoid")], "binary_crossentropy", "sgd", y),
        ([fastbp.Dense(5, activation="leaky_relu"), fastbp.BatchNormalization(), fastbp.Dense(1)],
         "huber", "rmsprop", X[:, 1]),
    ]
    for layers, loss, optimizer, target in models:
        model = fastbp.Sequential(layers, seed=1)
        model.compile(optimizer=optimizer, loss=loss)
        model.fit(X, target, epochs=1, batch_size=32, verbose=0)
        model.predict(X)
    assert len(k_epoch.train_epoch.signatures) == 1
    assert len(k_inference.infer.signatures) == 1


def test_layout_tables_are_cached_per_chunk_size_and_read_only():
    """``predict`` asks for the same tables on every call; they are computed once per chunk
    size and handed out read-only, so no caller can spoil the next caller's."""
    import pytest
    from fastbp.layout import Layout
    layout = Layout(5, [fastbp.Dense(7, activation="relu"), fastbp.BatchNormalization(),
                        fastbp.Dense(3)])
    ops, size = layout.tables(4)
    with pytest.raises(ValueError):
        ops[:] = -1
    again, size_again = layout.tables(4)
    assert again is ops and size_again == size
    other, other_size = layout.tables(9)
    assert other_size > size and not np.array_equal(other, ops)


def test_predict_chunk_rows_follow_the_network_shape():
    from fastbp import inference
    from fastbp.layout import Layout
    small = Layout(32, [fastbp.Dense(64), fastbp.Dense(64), fastbp.Dense(10)])
    wide = Layout(512, [fastbp.Dense(1024), fastbp.Dense(1024), fastbp.Dense(10)])
    huge = Layout(4096, [fastbp.Dense(8192), fastbp.Dense(8192)])
    assert inference.chunk_rows(small, 10 ** 6) == inference.CHUNK_FLOATS // 138  # activations in cache
    assert inference.chunk_rows(wide, 10 ** 6) == 2 * wide.n_params // 2058  # weights amortised
    assert inference.chunk_rows(huge, 10 ** 6) == inference.MAX_CHUNK_FLOATS // 16384  # memory cap
    assert inference.chunk_rows(wide, 100) == 100 and inference.chunk_rows(wide, 10 ** 6, 7) == 7


NOTHING_COMPILED = """
import warnings, numpy as np, pandas as pd, fastbp
from numba.core import event
fastbp.warmup()
compiled = []

class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(str(ev.data["dispatcher"].py_func.__qualname__))

    def on_end(self, ev):
        pass

event.register("numba:compile", Listener())
rng = np.random.default_rng(0)
X = rng.standard_normal((300, 5)).astype(np.float32)
y = (X[:, 0] > 0).astype(int)
np.save(PATH, X)
inputs = [X, np.load(PATH, mmap_mode="r"), np.asfortranarray(X), X.astype(np.float64),
          pd.DataFrame(X), X[::-1]]
model = fastbp.Sequential([fastbp.Dense(8, activation="relu"),
                           fastbp.Dense(2, activation="softmax")], seed=0)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
fastbp.scheduler.MIN_PARALLEL_FLOPS = 0  # the threaded epoch too
for data in inputs:
    model.fit(data, y, epochs=1, batch_size=64, validation_data=(data, y), verbose=0)
    model.predict(data)
    model.evaluate(data, y, verbose=0)
    model.optimizer.apply_gradients(zip(model.gradients(data, y), model.trainable_variables))
    model.fit([(data, y)], epochs=1, verbose=0)  # chunks
frozen = X.copy()
frozen.flags.writeable = False
model.predict(frozen)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for solver in ("adam", "lbfgs"):
        clf = fastbp.MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=3)
        clf.fit(X, y).predict_proba(X)
        clf.score(X, y)
    clf = fastbp.MLPClassifier(hidden_layer_sizes=(8,)).partial_fit(X, y, classes=[0, 1])
    fastbp.MLPRegressor(hidden_layer_sizes=(8,), max_iter=3).fit(X, X[:, 1]).predict(X)
print(len(compiled), *compiled)
"""


def test_nothing_is_compiled_after_warmup(tmp_path):
    """After ``fastbp.warmup()``, training (serial, threaded, on chunks), a hand-written
    loop's step, predicting and evaluating,
    the scikit-learn estimators (Adam, L-BFGS, partial_fit), on every kind of input (read-only
    memory maps, Fortran order, float64, pandas frames, reversed views) compile nothing: the
    arrays cross into compiled code with one type each (``fastbp.engine``)."""
    script = NOTHING_COMPILED.replace("PATH", repr(str(tmp_path / "X.npy")))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "0", result.stdout
