"""Compiled dense layer: forward pass, weight gradient, and the gradient of its input.

Matrix products go through ``np.dot(..., out)``, which Numba lowers to a BLAS sgemm call on
contiguous float32 operands (transposed views are passed as BLAS transpose flags, so
nothing is copied). Measured on this project's workloads, sgemm from compiled code beats
hand-written loop nests at every layer shape, small ones included (bench/bench_kernels.py).
The elementwise work around each product is one fused pass.

NumPy twin: ``fastbp.reference.dense``.
"""

import numpy as np

from .._jit import jit
from .activations import act_forward


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
    act_forward(a_out, b, code, alpha, a_out)


@jit
def matmul_rows(a_in, W, z):
    """``z = a_in @ W`` with every output row computed on its own, in a fixed order.

    Each element accumulates ``a[i, k] * W[k, j]`` for k = 0, 1, ... in turn, whatever the
    number of rows, so a row's result does not depend on the rows computed with it (BLAS's
    blocking does make it depend on them, in the last bits). Four rows share each row of W
    while it is in registers; the loop over the contiguous output columns vectorises.

    a_in : float32 (m, n_in); W : float32 (n_in, n_out); z : float32 (m, n_out), overwritten.
    """
    m, n_in = a_in.shape
    n_out = W.shape[1]
    i = 0
    while i + 4 <= m:
        z0 = z[i]
        z1 = z[i + 1]
        z2 = z[i + 2]
        z3 = z[i + 3]
        for j in range(n_out):
            z0[j] = 0.0
            z1[j] = 0.0
            z2[j] = 0.0
            z3[j] = 0.0
        for k in range(n_in):
            a0 = a_in[i, k]
            a1 = a_in[i + 1, k]
            a2 = a_in[i + 2, k]
            a3 = a_in[i + 3, k]
            w = W[k]
            for j in range(n_out):
                wj = w[j]
                z0[j] += a0 * wj
                z1[j] += a1 * wj
                z2[j] += a2 * wj
                z3[j] += a3 * wj
        i += 4
    while i < m:
        zi = z[i]
        for j in range(n_out):
            zi[j] = 0.0
        for k in range(n_in):
            a = a_in[i, k]
            w = W[k]
            for j in range(n_out):
                zi[j] += a * w[j]
        i += 1


@jit
def dense_forward_rows(a_in, W, b, code, alpha, a_out):
    """``dense_forward`` for inference: the product by ``matmul_rows``, so that each row's
    output is the same whichever rows are predicted together. Shapes as ``dense_forward``."""
    matmul_rows(a_in, W, a_out)
    act_forward(a_out, b, code, alpha, a_out)


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


@jit
def dense_backward(delta, W, delta_in):
    """Propagate the delta to the layer's input: ``delta_in = delta @ W.T``.

    delta : float32 (m, n_out), dL/dz of this layer; W : float32 (n_in, n_out);
    delta_in : float32 (m, n_in), overwritten with dL/d(input).
    """
    np.dot(delta, W.T, delta_in)
