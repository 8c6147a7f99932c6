"""Denormal floats are flushed to zero inside the training kernels, and only there: every
thread that runs them, the caller's and fastbp's helpers, leaves in the mode it entered."""

import threading

import numpy as np
import pytest
from numba import njit

import fastbp
from fastbp import _threads, scheduler
from fastbp.kernels import fpmode

TINY = np.finfo(np.float32).tiny  # smallest normal float32
FLAGS = 0x3F  # MXCSR's sticky exception flags: set by any arithmetic, not part of the mode
x86_only = pytest.mark.skipif(not fpmode.X86, reason="FTZ/DAZ are set on x86 only")


def mode():
    """The calling thread's floating-point control bits."""
    return int(fpmode.fp_mode()) & ~FLAGS


def assert_mode_is(caller):
    """The calling thread is in the given mode, not flushing denormals (nothing in the test
    process sets those bits but the kernels)."""
    assert mode() == caller and not mode() & fpmode.FTZ_DAZ


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


def fits_of_every_kind():
    """Fits that run on one thread, on two (the shard scheduler tries both ways in its first
    epoch), stop early on a non-finite loss, or go through L-BFGS; then a prediction."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((512, 6)).astype(np.float32)
    y = X[:, 0] - X[:, 1]
    for threads in (1, 2):
        with _threads.limit(threads):
            model = fastbp.Sequential([fastbp.Dense(16, activation="relu"), fastbp.Dense(1)],
                                      seed=0)
            model.compile(optimizer="adam", loss="mse")
            model.fit(X, y, epochs=4, batch_size=32, verbose=0)
    diverging = fastbp.Sequential([fastbp.Dense(16, activation="relu"), fastbp.Dense(1)], seed=0)
    diverging.compile(optimizer=fastbp.optimizers.SGD(learning_rate=1e6), loss="mse")
    with pytest.raises(FloatingPointError):
        diverging.fit(X, y * 1e10, epochs=3, batch_size=32, verbose=0)
    fastbp.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200).fit(X, y)
    model.predict(X)


def test_every_thread_leaves_training_in_the_mode_it_entered(monkeypatch):
    """The caller's thread is back in its own floating-point mode after every kind of fit; so
    is a Python thread that trains (it may be a helper's parent); no thread but fastbp's kept
    helpers (at most one per core but the caller's) outlives the calls."""
    monkeypatch.setattr(scheduler, "MIN_PARALLEL_FLOPS", 0)
    caller = mode()
    assert_mode_is(caller)
    before = others()
    fits_of_every_kind()
    assert_mode_is(caller)
    modes = []

    def in_a_thread():
        entered = mode()
        fits_of_every_kind()
        modes.append((entered, mode()))

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    (entered, left), = modes
    assert entered == left and not left & fpmode.FTZ_DAZ
    assert others() == before
    helpers = [t for t in threading.enumerate() if t.name.startswith("fastbp-")]
    assert len(helpers) <= _threads.cores() - 1


def others():
    """The live threads that are not fastbp's helpers."""
    return sorted(t.ident for t in threading.enumerate() if not t.name.startswith("fastbp-"))
