"""Compiled dense layer: forward pass, weight gradient, and the gradient of its input.

Matrix products go through ``np.dot(..., out)``, which Numba lowers to a BLAS sgemm call on
contiguous float32 operands (transposed views are passed as BLAS transpose flags, so
nothing is copied). Measured on this project's workloads, sgemm from compiled code beats
hand-written loop nests at every layer shape, small ones included (bench/bench_kernels.py).
One product is taken another way round: for shards of 16 to 32 rows, sgemm with a transposed
right operand is slow, so the input gradient goes through ``W @ delta.T`` instead
(``backward_by_transpose``). The elementwise work around each product is one fused pass.

NumPy twin: ``fastbp.reference.dense``.
"""

import numpy as np

from .._jit import jit
from .activations import act_forward
from .views import matrix


@jit
def dense_forward(a_in, W, b, code, alpha, a_out):
    """``a_out = f(a_in @ W + b)``.

    Parameters
    ----------
    a_in : float32 array of shape (m, n_in)
    W : float32 array of shape (n_in, n_out)
    b : float32 array of shape (n_out,)
    code : int
        Activation code.
    alpha : float
        Activation parameter.
    a_out : float32 array of shape (m, n_out)
        Overwritten with the layer's output.
    """
    np.dot(a_in, W, a_out)
    act_forward(a_out, b, code, alpha)


@jit
def dense_grad(a_in, delta, grad_w, grad_b):
    """Gradients of the batch loss with respect to W and b.

    Parameters
    ----------
    a_in : float32 array of shape (m, n_in)
        The layer's input.
    delta : float32 array of shape (m, n_out)
        dL/dz of the layer.
    grad_w : float32 array of shape (n_in, n_out)
        Overwritten with ``a_in.T @ delta``.
    grad_b : float32 array of shape (n_out,)
        Overwritten with the column sums of ``delta``.
    """
    np.dot(a_in.T, delta, grad_w)
    m, n = delta.shape
    for j in range(n):
        grad_b[j] = 0.0
    for i in range(m):
        for j in range(n):
            grad_b[j] += delta[i, j]


@jit(inline="always")
def backward_by_transpose(m, n_in, n_out):
    """Whether ``dense_backward`` computes ``(W @ delta.T).T`` rather than ``delta @ W.T``.

    For shards of 16 to 32 rows, OpenBLAS's sgemm with a transposed right operand runs at half
    the rate of the plain product on this project's machine: 16x128 @ (128x128).T takes 9.8 us,
    while transposing delta, ``W @ delta.T`` and transposing back take 5.8 us (32x64 @ (64x64).T:
    4.0 against 3.5 us; 32x1024 @ (1024x1024).T: 1,413 against 824 us). Outside this band, or
    with a layer narrower than 64, the plain product is as fast or faster
    (``python -m pytest bench/bench_kernels.py -k dense_backward``).
    """
    return 16 <= m <= 32 and n_in >= 64 and n_out >= 64


def transpose_scratch(rows, n_in, n_out):
    """Length of the float32 workspace ``dense_backward`` needs for blocks of up to ``rows``
    rows (0 where it never transposes)."""
    m = min(rows, 32)
    return m * (n_in + n_out) if backward_by_transpose.py_func(m, n_in, n_out) else 0


@jit(inline="always")
def transpose_into(a, out):
    """``out = a.T``; a (m, n), out (n, m)."""
    m, n = a.shape
    for i in range(m):
        for j in range(n):
            out[j, i] = a[i, j]


@jit
def dense_backward(delta, W, delta_in, scratch):
    """Propagate the delta to the layer's input: ``delta_in = delta @ W.T``.

    Parameters
    ----------
    delta : float32 array of shape (m, n_out)
        dL/dz of this layer.
    W : float32 array of shape (n_in, n_out)
    delta_in : float32 array of shape (m, n_in)
        Overwritten with dL/d(input).
    scratch : float32 array of shape (>= 0,)
        Workspace: where ``backward_by_transpose`` holds and it has room for
        ``m * (n_in + n_out)`` values, the product is taken as ``W @ delta.T`` through it
        (see ``backward_by_transpose``); otherwise it is not touched.
    """
    m, n_out = delta.shape
    n_in = W.shape[0]
    if backward_by_transpose(m, n_in, n_out) and scratch.size >= m * (n_in + n_out):
        delta_t = matrix(scratch, 0, n_out, m)
        delta_in_t = matrix(scratch, n_out * m, n_in, m)
        transpose_into(delta, delta_t)
        np.dot(W, delta_t, delta_in_t)
        transpose_into(delta_in_t, delta_in)
    else:
        np.dot(delta, W.T, delta_in)
