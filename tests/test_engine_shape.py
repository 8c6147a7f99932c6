"""What the compiled engine promises about itself: one signature for every model, and no
allocation inside the epoch loop."""

import os
import subprocess
import sys

import numpy as np

import fastbp
from fastbp.kernels import train as k_train

ALLOCATIONS = """
import numpy as np, fastbp
from numba import types
from numba.core.runtime import rtsys
from fastbp import _threads
from fastbp.kernels import train
rng = np.random.default_rng(0)
for middle in (fastbp.Dropout(0.2), fastbp.BatchNormalization()):
    counts = []
    for n in (640, 6400):  # 10 and 100 mini-batches per epoch
        X = rng.standard_normal((n, 12)).astype(np.float32)
        y = (X[:, 0] > X[:, 1]).astype(int) + (X[:, 2] > 0)
        model = fastbp.Sequential([fastbp.Dense(32, activation="relu"), middle,
                                   fastbp.Dense(3, activation="softmax")], seed=0)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        model.fit(X, y, epochs=1, batch_size=64)  # compiles or loads the cache; makes buffers
        before = rtsys.get_allocation_stats().alloc
        model.fit(X, y, epochs=3, batch_size=64)
        counts.append(rtsys.get_allocation_stats().alloc - before)
    print(*counts, end=" ")
arrays = sum(isinstance(a, types.Array) for a in train.train_epoch.signatures[0])
print(arrays, int(_threads.parallel(_threads.n_shards(64))))
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
    *counts, arrays, parallel = map(int, result.stdout.split())
    assert counts == [3 * arrays] * 4, (counts, arrays, parallel)


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
        model.fit(X, target, epochs=1, batch_size=32)
        model.predict(X)
    assert len(k_train.train_epoch.signatures) == 1
    assert len(k_train.predict.signatures) + len(k_train.predict_parallel.signatures) <= 2


def test_layout_tables_are_cached_per_chunk_size_and_handed_out_as_copies():
    """``predict`` asks for the same tables on every call; they are computed once per chunk
    size, and a caller writing into its copy cannot spoil the next caller's."""
    from fastbp.layout import Layout
    layout = Layout(5, [fastbp.Dense(7, activation="relu"), fastbp.BatchNormalization(),
                        fastbp.Dense(3)])
    ops, size = layout.tables(4)
    expected = ops.copy()
    ops[:] = -1
    again, size_again = layout.tables(4)
    np.testing.assert_array_equal(again, expected)
    assert size_again == size
    other, other_size = layout.tables(9)
    assert other_size > size and not np.array_equal(other, expected)


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
