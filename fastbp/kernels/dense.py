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


@jit
def dense_backward(delta, W, delta_in):
    """Propagate the delta to the layer's input: ``delta_in = delta @ W.T``.

    delta : float32 (m, n_out), dL/dz of this layer; W : float32 (n_in, n_out);
    delta_in : float32 (m, n_in), overwritten with dL/d(input).
    """
    np.dot(delta, W.T, delta_in)
