"""Denormal floats are flushed to zero inside the training kernels, and only there: every
thread, the caller's and Numba's pool's, leaves a compiled call in the mode it entered it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit, prange

import fastbp
from fastbp import _threads
from fastbp.kernels import fpmode

TINY = np.finfo(np.float32).tiny  # smallest normal float32
FLAGS = 0x3F  # MXCSR's sticky exception flags: set by any arithmetic, not part of the mode
x86_only = pytest.mark.skipif(not fpmode.X86, reason="FTZ/DAZ are set on x86 only")


def mode():
    """The calling thread's floating-point control bits."""
    return int(fpmode.fp_mode()) & ~FLAGS


@njit(parallel=True)
def modes_in_pool(n):
    """The floating-point mode of the thread running each of n parallel iterations."""
    out = np.zeros(n, np.uint32)
    for i in prange(n):
        out[i] = fpmode.fp_mode()
    return out


def pool_modes():
    return set((modes_in_pool(8) & ~np.uint32(FLAGS)).tolist())


def assert_modes_are(caller, pool):
    """The caller's thread and the pool's threads are in the given modes, none flushing
    denormals (nothing in the test process sets those bits but the kernels)."""
    assert mode() == caller and not mode() & fpmode.FTZ_DAZ
    assert pool_modes() == pool and not any(m & fpmode.FTZ_DAZ for m in pool)


@njit
def products_flushed_then_not(a, b, out):
    """out[0] = a * b with denormals flushed, out[1] = a * b after the mode is restored."""
    mode = fpmode.flush_denormals()
    for i in range(1):
        out[0] = a[i] * b[i]
    fpmode.set_fp_mode(mode)
    for i in range(1):
        out[1] = a[i] * b[i]


def denormals(a):
    return int(((a != 0) & (np.abs(a) < TINY)).sum())


@x86_only
def test_flush_denormals_flushes_results_and_inputs_until_restored():
    out = np.zeros(2, np.float32)
    before = mode()
    products_flushed_then_not(np.float32([1e-20]), np.float32([1e-20]), out)  # result 1e-40
    assert out[0] == 0.0 and out[1] == np.float32(1e-20) * np.float32(1e-20) != 0.0
    products_flushed_then_not(np.float32([1e-40]), np.float32([1e30]), out)  # input 1e-40
    assert out[0] == 0.0 and out[1] > 0.0
    assert mode() == before
    assert before & fpmode.FTZ_DAZ == 0  # Python's thread never had the bits set


def dead_unit_model(optimizer):
    """Dense(4, relu) whose unit 0 never fires (zero weights, bias -1): the weights into and
    out of it get exactly zero gradient, so their optimizer state only ever shrinks."""
    model = fastbp.Sequential([fastbp.Dense(4, activation="relu"), fastbp.Dense(1)], seed=0)
    model.compile(optimizer=optimizer, loss="mse")
    model.build(3)
    W1, b1, W2, b2 = model.get_weights()
    W1[:, 0] = 0.0
    b1[0] = -1.0
    model.set_weights([W1, b1, W2, b2])
    return model


@x86_only
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_training_never_leaves_denormals_in_the_optimizer_state(backend):
    """Adam's moments of the dead unit's weights start denormal (1e-39) and get zero
    gradients: the compiled loop reads them as zero; the NumPy reference keeps them denormal
    (0.9 * 1e-39), which shows the test can fail."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 3)).astype(np.float32)
    y = X.sum(axis=1)
    model = dead_unit_model(fastbp.optimizers.Adam(learning_rate=1e-3))
    model.compile(optimizer=model.optimizer, loss="mse", backend=backend)
    model.optimizer.state = np.full((2, model.layout.n_params), 1e-39, np.float32)
    model.fit(X, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    state = model.optimizer.state
    if backend == "numba":
        assert denormals(state) == 0
        # params: W1 (3, 4) row by row, b1 (4), W2 (4, 1), b2: W1[:, 0], b1[0] and W2[0] are dead
        dead = [0, 4, 8, 12, 16]
        np.testing.assert_array_equal(state[0, dead], 0.0)
        assert np.all(state[0, [1, 2, 3, 13, 17]] != 0.0)
    else:
        assert denormals(state) > 0
    assert np.all(np.isfinite(model.params))


def test_every_thread_leaves_training_in_the_mode_it_entered():
    """After fits that run serially, in parallel (the shard scheduler tries both in its first
    epochs), stop early on a non-finite loss, or go through L-BFGS, the caller's thread and
    every thread of Numba's pool are back in their own floating-point mode."""
    caller, pool = mode(), pool_modes()
    assert_modes_are(caller, pool)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((512, 6)).astype(np.float32)
    y = X[:, 0] - X[:, 1]
    model = fastbp.Sequential([fastbp.Dense(16, activation="relu"), fastbp.Dense(1)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, y, epochs=4, batch_size=32, verbose=0)
    assert_modes_are(caller, pool)

    diverging = fastbp.Sequential([fastbp.Dense(16, activation="relu"), fastbp.Dense(1)], seed=0)
    diverging.compile(optimizer=fastbp.optimizers.SGD(learning_rate=1e6), loss="mse")
    with pytest.raises(FloatingPointError):
        diverging.fit(X, y * 1e10, epochs=3, batch_size=32, verbose=0)
    assert_modes_are(caller, pool)

    fastbp.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200).fit(X, y)
    assert_modes_are(caller, pool)


FRESH_PROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, fastbp
from fastbp.kernels import fpmode
from test_fpmode import modes_in_pool  # compiled at its first call, after the fit

rng = np.random.default_rng(0)
X = rng.standard_normal((2048, 8)).astype(np.float32)
model = fastbp.Sequential([fastbp.Dense(32, activation="relu"), fastbp.Dense(1)], seed=0)
model.compile(optimizer="adam", loss="mse")
model.fit(X, X[:, 0], epochs=4, batch_size=64, verbose=0)  # Numba's pool starts in batch 1
flushed = [int(m) & int(fpmode.FTZ_DAZ) for m in [fpmode.fp_mode(), *modes_in_pool(8)]]
print(len(model._scheduler.samples[True]), max(flushed))  # batches timed in parallel
"""


@x86_only
@pytest.mark.skipif(_threads.LAYER is None or _threads.cores() < 2,
                    reason="no parallel training here")
def test_threads_the_pool_starts_during_training_do_not_keep_the_flushed_mode():
    """A thread starts in the mode of the thread that starts it: in a fresh process, the pool's
    threads start inside the first parallel epoch, and must not start flushed."""
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(Path(__file__).parent)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    parallel_batches, flushed = map(int, result.stdout.split())
    assert parallel_batches > 0 and flushed == 0
