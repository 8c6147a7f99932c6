"""Central-difference gradient checks in float64, for every activation x loss.

The analytic gradient of the NumPy reference (backpropagation, float64) must match central
differences of its own loss to a relative error of 1e-6. The compiled kernels are tied to the
reference by ``test_kernels.py`` and ``test_training.py``; the last test here checks the
compiled gradient against central differences too, at float32 precision.
"""

import numpy as np
import pytest

from conftest import (
    ACTIVATION_NAMES, LOSS_NAMES, Net, dense_spec, loss_param, objective as batch_objective,
    targets_for,
)
from fastbp.layers import BatchNormalization, Dense, Dropout


def objective(net, x, Y, labels, rows, sw, loss, p, backend="numpy"):
    """Training-mode objective of the rows of x as one batch (``conftest.objective``)."""
    return batch_objective(net, x[rows], Y[rows] if len(Y) else Y, labels[rows] if len(labels)
                           else labels, sw[rows] if len(sw) else sw, loss, p, backend)


def central_differences(net, f, h):
    grad = np.empty_like(net.params)
    for i in range(net.params.size):
        saved = net.params[i]
        net.params[i] = saved + h
        up = f()
        net.params[i] = saved - h
        down = f()
        net.params[i] = saved
        grad[i] = (up - down) / (2 * h)
    return grad


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


def problem(act, loss, rng, weighted, dtype=np.float64):
    m, k = 6, 3
    hidden = "tanh" if act == "exponential" else act  # exp(exp(exp(.))) overflows
    net = Net(4, dense_spec([5, 4, k], [hidden, hidden, act]), rng, dtype=dtype, rows=m,
              alpha=0.3 if act in ("leaky_relu", "elu") else None,
              l1=1e-3 if weighted else 0.0, l2=1e-2 if weighted else 0.0)
    x = rng.standard_normal((m, 4)).astype(dtype)
    Y, labels = targets_for(loss, act, m, k, rng, dtype=dtype)
    if loss == "binary_crossentropy" or loss == "categorical_crossentropy":
        # soft targets exercise every term of the cross-entropies
        Y = np.clip(Y + rng.uniform(0.05, 0.3, Y.shape), 0, 1).astype(dtype)
    rows = np.arange(m, dtype=np.int64)
    sw = rng.uniform(0.2, 2.0, m).astype(dtype) if weighted else np.zeros(0, dtype)
    p = loss_param(loss, k, norm_by_weight=float(weighted), per_sample_penalty=float(weighted))
    return net, x, Y, labels, rows, sw, p


@pytest.mark.parametrize("act", ACTIVATION_NAMES)
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights+penalty"])
def test_gradient_check_float64(act, loss, weighted, rng):
    net, x, Y, labels, rows, sw, p = problem(act, loss, rng, weighted)
    objective(net, x, Y, labels, rows, sw, loss, p)
    analytic = net.grads.copy()
    scratch = net.astype(np.float64)

    def f():
        scratch.params = net.params
        return objective(scratch, x, Y, labels, rows, sw, loss, p)

    numeric = central_differences(net, f, h=1e-6)
    assert np.abs(analytic).max() > 0
    assert relative_error(analytic, numeric) <= 1e-6


def test_gradient_check_sparse_labels(rng):
    net, x, _, _, rows, sw, p = problem("softmax", "categorical_crossentropy", rng, False)
    Y = np.zeros((0, 3))
    labels = rng.integers(0, 3, len(rows)).astype(np.int64)
    objective(net, x, Y, labels, rows, sw, "categorical_crossentropy", p)
    analytic = net.grads.copy()
    scratch = net.astype(np.float64)

    def f():
        scratch.params = net.params
        return objective(scratch, x, Y, labels, rows, sw, "categorical_crossentropy", p)

    assert relative_error(analytic, central_differences(net, f, 1e-6)) <= 1e-6


@pytest.mark.parametrize("act, loss", [("tanh", "squared_error"), ("softmax",
                                                                   "categorical_crossentropy"),
                                       ("sigmoid", "binary_crossentropy"), ("elu", "huber")])
def test_compiled_gradient_against_central_differences(act, loss, rng):
    """The float32 kernels' gradient against float64 central differences of the reference."""
    net, x, Y, labels, rows, sw, p = problem(act, loss, rng, True)
    comp_net = net.astype(np.float32)
    objective(comp_net, x.astype(np.float32), Y.astype(np.float32), labels, rows,
              sw.astype(np.float32), loss, p, backend="numba")
    scratch = net.astype(np.float64)

    def f():
        scratch.params = net.params
        return objective(scratch, x, Y, labels, rows, sw, loss, p)

    numeric = central_differences(net, f, 1e-6)
    assert relative_error(comp_net.grads, numeric) <= 1e-5


@pytest.mark.parametrize("spec", ["bn_then_act", "bn_after_act", "dropout", "bn_output"])
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "squared_error"])
def test_gradient_check_batchnorm_and_dropout(spec, loss, rng):
    """Batch norm (training mode) and dropout (a fixed mask for a fixed seed and step) are
    differentiable functions of the parameters too."""
    layers = {
        "bn_then_act": [Dense(5), BatchNormalization(), Dense(3, activation="softmax")],
        "bn_after_act": [Dense(5, activation="tanh"), BatchNormalization(momentum=0.5),
                         Dense(3, activation="sigmoid")],
        "dropout": [Dropout(0.3), Dense(6, activation="elu"), Dropout(0.5),
                    Dense(3, activation="softmax")],
        "bn_output": [Dense(5, activation="relu"), Dense(3), BatchNormalization()],
    }[spec]
    m = 8
    net = Net(4, layers, rng, dtype=np.float64, rows=m)
    x = rng.standard_normal((m, 4))
    Y, labels = targets_for(loss, "softmax", m, 3, rng, dtype=np.float64)
    rows = np.arange(m, dtype=np.int64)
    sw = np.zeros(0)
    p = loss_param(loss, 3)
    objective(net, x, Y, labels, rows, sw, loss, p)
    analytic = net.grads.copy()
    scratch = net.astype(np.float64)

    def f():
        scratch.params = net.params
        return objective(scratch, x, Y, labels, rows, sw, loss, p)

    assert relative_error(analytic, central_differences(net, f, 1e-6)) <= 1e-6
