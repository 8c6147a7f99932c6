"""Compiled dense layer: forward pass, weight gradient, and the gradient of its input.

Matrix products go through ``np.dot(..., out)``, which Numba lowers to a BLAS sgemm call on
contiguous float32 operands (transposed views are passed as BLAS transpose flags, so
nothing is copied). Measured on this project's workloads, sgemm from compiled code beats
hand-written loop nests at every layer shape, small ones included (bench/bench_kernels.py).
One product is taken another way round: for shards of 16 to 32 rows, sgemm with a transposed
right operand is slow, so the input gradient goes through ``W @ delta.T`` instead
(``backward_by_transpose``). The elementwise work around each product is one fused pass.

Inference (``predict``, ``evaluate``) takes the product through a kernel of its own,
``product_by_rows``, whose every output is the same chain of fused multiply-adds over the
inputs in order, whatever the number of rows beside it: a row's prediction has the same bits
alone, in any batch, at any chunk boundary and on any thread. (BLAS picks its kernels, and so
its sums' order, by the shape: one row goes through sgemv, and small-matrix kernels differ.)

NumPy twin: ``fastbp.reference.dense``.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

from .._jit import jit
from .activations import act_forward
from .views import matrix

#: the exact float arithmetic of ``product_by_rows``: no reassociation and no contraction
#: beyond the explicit fused multiply-adds (which are exact by definition, on any CPU)
EXACT = {"nsz", "arcp"}
@intrinsic
def fma32(typingctx, x, y, z):
    """``x * y + z`` with one rounding (LLVM's ``llvm.fma.f32``): the same bits on every CPU,
    in vector lanes and in scalar code alike (a hardware FMA where there is one)."""
    if not (x == types.float32 and y == types.float32 and z == types.float32):
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fma = cgutils.get_or_insert_function(builder.module,
                                             ir.FunctionType(f32, [f32, f32, f32]),
                                             "llvm.fma.f32")
        return builder.call(fma, args)
    return types.float32(types.float32, types.float32, types.float32), codegen


@jit(fastmath=EXACT, inline="always")
def fma4(x0, x1, x2, x3, w0, w1, w2, w3, acc):
    """``acc + x0 w0 + x1 w1 + x2 w2 + x3 w3``, four fused multiply-adds in that order."""
    return fma32(x3, w3, fma32(x2, w2, fma32(x1, w1, fma32(x0, w0, acc))))


@jit(fastmath=EXACT)
def product_by_rows(a_in, W, a_out):
    """``a_out = a_in @ W``, each output ``a_out[i, j]`` the fused multiply-adds
    ``(((0 + a_in[i, 0] W[0, j]) + a_in[i, 1] W[1, j]) + ...)`` over k in order, one
    rounding each: the bits of row i depend on row i alone.

    Rows go four at a time (each load of W serves four rows) and k four at a time (each load
    and store of an output serves four terms), vectorised over j; neither changes any
    output's chain of operations, only which loads serve it. (Blocking W for the cache, with
    the j loop starting anywhere but 0, stopped LLVM vectorising it: 8x slower.)

    a_in : float32 (m, n_in); W : float32 (n_in, n_out); a_out : float32 (m, n_out).
    """
    m, n_in = a_in.shape
    n_out = W.shape[1]
    k4 = n_in - n_in % 4
    for i0 in range(0, m, 4):
        i1 = min(i0 + 4, m)
        for i in range(i0, i1):
            for j in range(n_out):
                a_out[i, j] = 0.0
        for k in range(0, k4, 4):
            if i1 - i0 == 4:
                x0, x1, x2, x3 = a_in[i0, k], a_in[i0, k + 1], a_in[i0, k + 2], a_in[i0, k + 3]
                y0, y1, y2, y3 = a_in[i0 + 1, k], a_in[i0 + 1, k + 1], a_in[i0 + 1, k + 2], \
                    a_in[i0 + 1, k + 3]
                u0, u1, u2, u3 = a_in[i0 + 2, k], a_in[i0 + 2, k + 1], a_in[i0 + 2, k + 2], \
                    a_in[i0 + 2, k + 3]
                v0, v1, v2, v3 = a_in[i0 + 3, k], a_in[i0 + 3, k + 1], a_in[i0 + 3, k + 2], \
                    a_in[i0 + 3, k + 3]
                for j in range(n_out):
                    w0, w1, w2, w3 = W[k, j], W[k + 1, j], W[k + 2, j], W[k + 3, j]
                    a_out[i0, j] = fma4(x0, x1, x2, x3, w0, w1, w2, w3, a_out[i0, j])
                    a_out[i0 + 1, j] = fma4(y0, y1, y2, y3, w0, w1, w2, w3, a_out[i0 + 1, j])
                    a_out[i0 + 2, j] = fma4(u0, u1, u2, u3, w0, w1, w2, w3, a_out[i0 + 2, j])
                    a_out[i0 + 3, j] = fma4(v0, v1, v2, v3, w0, w1, w2, w3, a_out[i0 + 3, j])
            else:  # the last rows, one at a time: the same chain per output
                for i in range(i0, i1):
                    x0, x1, x2, x3 = a_in[i, k], a_in[i, k + 1], a_in[i, k + 2], a_in[i, k + 3]
                    for j in range(n_out):
                        a_out[i, j] = fma4(x0, x1, x2, x3, W[k, j], W[k + 1, j], W[k + 2, j],
                                           W[k + 3, j], a_out[i, j])
        for k in range(k4, n_in):  # the last inputs, one at a time
            for i in range(i0, i1):
                x = a_in[i, k]
                for j in range(n_out):
                    a_out[i, j] = fma32(x, W[k, j], a_out[i, j])


@jit
def dense_forward_by_rows(a_in, W, b, code, alpha, a_out):
    """``a_out = f(a_in @ W + b)`` with the product of ``product_by_rows``: inference, where
    a row's outputs must not depend on the rows beside it. Arguments as ``dense_forward``."""
    product_by_rows(a_in, W, a_out)
    act_forward(a_out, b, code, alpha)


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
