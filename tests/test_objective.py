"""The full-batch objective of L-BFGS (``trainer.FullBatchObjective``): chunk sums that do not
depend on the thread count nor on how the chunks are grouped, against the float64 reference
and ``math.fsum``."""

import math
import warnings

import numpy as np
import pytest

import fastbp
from fastbp import _threads, engine, trainer


def test_add_exactly_sums_any_grouping_as_fsum_does():
    """Values over 40 orders of magnitude, both signs, added one by one and in random groups:
    hi + lo is the correctly rounded sum (``math.fsum``) every time."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.standard_normal((50, 3)) * 10.0 ** rng.integers(-20, 20, (50, 3))
        one_by_one = np.zeros((2, 3))
        for row in x:
            trainer.add_exactly(one_by_one, row)
        cuts = np.sort(rng.choice(np.arange(1, 50), 5, replace=False))
        grouped = np.zeros((2, 3))
        for part in np.split(x, cuts):
            group = np.zeros((2, 3))
            for row in part:
                trainer.add_exactly(group, row)
            trainer.add_exactly(grouped, group)
        exact = [math.fsum(x[:, j]) for j in range(3)]
        assert (one_by_one[0] + one_by_one[1]).tolist() == exact
        assert (grouped[0] + grouped[1]).tolist() == exact


def _objective(model, X, y, chunk_rows, backend="numba", dtype=np.float32, sw=None):
    X, Y, labels, _ = model._validate_input(X, y, False, False)
    code, loss_param = model._loss()
    sw = np.zeros(0, np.float32) if sw is None else sw.astype(np.float32)
    return trainer.FullBatchObjective(engine.get(backend), model._layout, model._params.copy(),
                                      model._aux, code, loss_param, (X, Y, labels, sw),
                                      dtype=dtype, chunk_rows=chunk_rows), loss_param


@pytest.fixture
def problem():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 6))
    y = (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    model = fastbp.MLPClassifier(hidden_layer_sizes=(24, 12), alpha=1e-2, max_iter=1,
                                 random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (one iteration: not converged)
        model.fit(X, y)
    return model, X, y


def test_blocks_on_chunk_boundaries_give_the_whole_objective(problem):
    """The sums of two blocks of whole chunks, added, are the sums over all the rows, to the
    bit, on any thread count; and the objective is the float64 reference's to float32
    precision."""
    model, X, y = problem
    params = model._params.copy()
    whole, loss_param = _objective(model, X, y, 256)
    with _threads.limit(1):
        one_thread = whole.sums(params)
    with _threads.limit(2):
        two_threads = whole.sums(params)
    np.testing.assert_array_equal(one_thread[0] + one_thread[1], two_threads[0] + two_threads[1])
    total = np.zeros_like(one_thread)
    for lo, hi in [(0, 768), (768, 2000)]:
        block, _ = _objective(model, X[lo:hi], y[lo:hi], 256)
        trainer.add_exactly(total, block.sums(params))
    np.testing.assert_array_equal(total[0] + total[1], one_thread[0] + one_thread[1])
    value, grad = trainer.with_penalty(total, params, model._layout.runs, len(X), loss_param)
    reference, _ = _objective(model, X, y, 2000, backend="numpy", dtype=np.float64)
    ref_value, ref_grad = reference(params)
    assert value == pytest.approx(ref_value, rel=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-3, atol=1e-5 * np.abs(ref_grad).max())


@pytest.mark.parametrize("weighted", [False, True])
def test_chunking_changes_only_summation_order(problem, weighted):
    """The objective in chunks of 128 rows is the objective in one chunk, with and without
    sample weights (each chunk's mean times its weight, over the total weight)."""
    model, X, y = problem
    params = model._params.copy()
    sw = np.random.default_rng(2).uniform(0.1, 3.0, len(X)) if weighted else None
    one, _ = _objective(model, X, y, 2000, sw=sw)
    many, _ = _objective(model, X, y, 128, sw=sw)
    v1, g1 = one(params)
    v2, g2 = many(params)
    assert v2 == pytest.approx(v1, rel=1e-6)
    np.testing.assert_allclose(g2, g1, rtol=1e-4, atol=1e-6 * np.abs(g1).max())


def test_a_non_finite_chunk_gives_an_infinite_loss(problem):
    model, X, y = problem
    objective, _ = _objective(model, X, y, 256)
    params = model._params.copy()
    params[:] = 1e30
    value, grad = objective(params)
    assert value == np.inf and grad is None
