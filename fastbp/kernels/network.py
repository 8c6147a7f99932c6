"""The operation-table interpreter: forward and backward passes of a block of rows.

The network arrives as two small tables (see ``fastbp.layout``), one row per operation:

* ``ops`` int64 (K, N_OC): kind (dense, batch norm, dropout), input and output width,
  offset of its parameters in the flat float32 vector ``params``, activation, offset of its
  running statistics in ``aux``, offset of its blocks in the work buffers, ...;
* ``opf`` float64 (K, N_OF): activation parameter, dropout rate, batch-norm momentum and eps.

Work buffers are flat float32 vectors allocated once per fit: op k's output (and dL/d output)
is the (rows, width) block at ``ops[k, OC_BUF]`` of ``acts`` (and ``deltas``).

NumPy twin: ``fastbp.reference.network``.
"""

import numpy as np

from .._jit import jit
from ..codes import (
    ACC_SKIP, LINEAR, LP_NORM_BY_WEIGHT, OC_ACT, OC_ALIVE, OC_AUX, OC_BUF, OC_IN, OC_KIND, OC_OUT,
    OC_PARAM, OC_SCRATCH, OC_XHAT, OF_ALPHA, OF_EPS, OF_MOMENTUM, OF_RATE, OP_BATCHNORM, OP_DENSE,
    OP_DROPOUT,
)
from .activations import act_backward
from .batchnorm import batchnorm_backward, batchnorm_infer, batchnorm_train
from .dense import dense_backward, dense_forward, dense_forward_by_rows, dense_grad
from .dropout import dropout_mask_apply
from .losses import is_fused, loss_delta, output_stats
from .sparse import sparse_dense_forward, sparse_dense_grad
from .views import copy_to, flat, matrix, readonly


@jit(inline="always")
def block(buf, offset, rows, cols):
    """``buf[offset : offset + rows * cols]`` as a C-contiguous (rows, cols) view."""
    return matrix(buf, offset, rows, cols)


@jit(inline="always")
def split(n, parts, k):
    """Bounds of part k when ``range(n)`` is cut into ``parts`` nearly equal runs."""
    size = (n + parts - 1) // parts
    lo = min(k * size, n)
    return lo, min(lo + size, n)


@jit
def gather_rows(X, rows, out):
    """``out[i] = X[rows[i]]``: copy a block's rows into a contiguous buffer.

    X : float32 (n, f); rows : int64 (m,); out : float32 (>= m, f), rows 0..m-1 overwritten.
    """
    f = X.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(f):
            out[i, j] = X[r, j]


@jit
def loss_norm(rows, sw, loss_param):
    """The batch loss's normaliser: the row count, or the sum of the rows' sample weights."""
    if sw.shape[0] == 0 or loss_param[LP_NORM_BY_WEIGHT] == 0.0:
        return float(rows.shape[0])
    total = 0.0
    for i in range(rows.shape[0]):
        total += sw[rows[i]]
    return total


@jit(inline="always")
def op_input(x, ops, k, acts, m):
    """The input of op k: the block itself for the first op, else the previous op's output."""
    return x if k == 0 else block(acts, ops[k - 1, OC_BUF], m, ops[k, OC_IN])


@jit
def mark_alive(a, flags):
    """``flags[j] = 1`` for every unit j with a positive output in some row of ``a`` (m, n)."""
    m, n = a.shape
    for i in range(m):
        for j in range(n):
            if a[i, j] > 0.0:
                flags[j] = 1.0


@jit
def forward_pass(x, rows, ops, opf, out_act, params, aux, acts, training, seed, t, alive, csr):
    """Forward pass through every op.

    Parameters
    ----------
    x : float32 array of shape (m, s0), read-only; (m, 0) for sparse data (``csr``)
    rows : int64 array of shape (m,)
        Row indices of the block in the data (dropout's masks depend on them).
    out_act : int
        Activation code used for the last op (LINEAR when a fused loss applies its own).
    aux : float32 array
        Batch-norm running statistics; updated when ``training``.
    acts : float32 array (A,)
        Work buffer: op k's output is written to its block at ``ops[k, OC_BUF]``.
    training : bool
        Dropout active and batch norm on batch statistics.
    seed, t : int
        Dropout's seed and the training step.
    alive : float64 array
        Diagnostics row: dense ReLU ops mark their units with a positive output at
        ``ops[k, OC_ALIVE]``; shape (0,) when diagnostics are off.
    csr : tuple (indptr int64 (n + 1,), indices int64 (nnz,), values float32 (nnz,))
        The data as CSR when it is sparse, then the first op (a dense one) reads rows
        ``rows`` from it (``sparse``); three empty arrays for dense data.
    """
    m = x.shape[0]
    n_ops = ops.shape[0]
    sparse = csr[0].shape[0] > 0
    for k in range(n_ops):
        kind = ops[k, OC_KIND]
        n_in = ops[k, OC_IN]
        n_out = ops[k, OC_OUT]
        p = ops[k, OC_PARAM]
        a_in = op_input(x, ops, k, acts, m)
        a_out = block(acts, ops[k, OC_BUF], m, n_out)
        code = ops[k, OC_ACT] if k < n_ops - 1 else out_act
        if kind == OP_DENSE:
            W = block(params, p, n_in, n_out)
            b = params[p + n_in * n_out:p + n_in * n_out + n_out]
            if k == 0 and sparse:
                sparse_dense_forward(csr[0], csr[1], csr[2], rows, W, b, code, opf[k, OF_ALPHA],
                                     a_out)
            elif training:
                dense_forward(a_in, W, b, code, opf[k, OF_ALPHA], a_out)
            else:  # inference: each row's outputs from its own inputs alone, bit for bit
                dense_forward_by_rows(a_in, W, b, code, opf[k, OF_ALPHA], a_out)
            if alive.shape[0] > 0 and ops[k, OC_ALIVE] >= 0:
                mark_alive(a_out, alive[ops[k, OC_ALIVE]:ops[k, OC_ALIVE] + n_out])
        elif kind == OP_BATCHNORM:
            gamma = params[p:p + n_out]
            beta = params[p + n_out:p + 2 * n_out]
            run_mean = aux[ops[k, OC_AUX]:ops[k, OC_AUX] + n_out]
            run_var = aux[ops[k, OC_AUX] + n_out:ops[k, OC_AUX] + 2 * n_out]
            if training:
                h = ops[k, OC_XHAT]
                batchnorm_train(a_in, gamma, beta, code, opf[k, OF_ALPHA], opf[k, OF_MOMENTUM],
                                opf[k, OF_EPS], block(acts, h + 2 * n_out, m, n_out),
                                acts[h:h + n_out], acts[h + n_out:h + 2 * n_out], run_mean,
                                run_var, a_out)
            else:
                batchnorm_infer(a_in, gamma, beta, code, opf[k, OF_ALPHA], opf[k, OF_EPS],
                                run_mean, run_var, a_out)
        else:  # dropout
            if training and opf[k, OF_RATE] > 0.0:
                dropout_mask_apply(a_in, rows, opf[k, OF_RATE], seed, t, k, a_out)
            else:
                copy_to(flat(a_in), flat(a_out))


@jit(inline="always")
def scratch(buf, offset):
    """The workspace at ``offset`` of a work buffer, to its end (empty for offset -1)."""
    return buf[offset:] if offset >= 0 else buf[:0]


@jit
def backward_pass(x, rows, ops, opf, params, grad, acts, deltas, seed, t, csr):
    """Backward pass from the last op's delta (dL/dz, set by the loss) to the first op.

    Each op finds dL/d(its output) in its block of ``deltas``, applies its activation's
    derivative there (the last op's is applied by the loss), writes its parameters' gradient
    into ``grad`` (P,) and dL/d(its input) into the previous op's block. ``csr``: as in
    ``forward_pass``.
    """
    m = x.shape[0]
    n_ops = ops.shape[0]
    sparse = csr[0].shape[0] > 0
    for k in range(n_ops - 1, -1, -1):
        kind = ops[k, OC_KIND]
        n_in = ops[k, OC_IN]
        n_out = ops[k, OC_OUT]
        p = ops[k, OC_PARAM]
        if kind == OP_DROPOUT and k == 0:
            break  # dropout on the inputs: nothing to learn, nothing to pass on
        g = block(deltas, ops[k, OC_BUF], m, n_out)
        a_in = op_input(x, ops, k, acts, m)
        delta_in = block(deltas, ops[k - 1, OC_BUF], m, n_in) if k > 0 else g  # g: unused
        if k < n_ops - 1 and kind != OP_DROPOUT:
            act_backward(block(acts, ops[k, OC_BUF], m, n_out), ops[k, OC_ACT],
                         opf[k, OF_ALPHA], g)
        if kind == OP_DENSE:
            W = block(params, p, n_in, n_out)
            if k == 0 and sparse:
                sparse_dense_grad(csr[0], csr[1], csr[2], rows, g, block(grad, p, n_in, n_out),
                                  grad[p + n_in * n_out:p + n_in * n_out + n_out])
            else:
                dense_grad(a_in, g, block(grad, p, n_in, n_out),
                           grad[p + n_in * n_out:p + n_in * n_out + n_out])
            if k > 0:
                dense_backward(g, W, delta_in, scratch(deltas, ops[k, OC_SCRATCH]))
        elif kind == OP_BATCHNORM:
            h = ops[k, OC_XHAT]
            batchnorm_backward(g, block(acts, h + 2 * n_out, m, n_out), acts[h:h + n_out],
                               params[p:p + n_out], grad[p:p + n_out],
                               grad[p + n_out:p + 2 * n_out], delta_in, k > 0)
        else:  # dropout: the same mask, applied to the gradient
            if opf[k, OF_RATE] > 0.0:
                # g typed as the forward pass's input: one compiled dropout
                dropout_mask_apply(readonly(g), rows, opf[k, OF_RATE], seed, t, k, delta_in)
            else:
                copy_to(flat(g), flat(delta_in))


@jit(inline="always")
def shard_gradient(X, csr, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind,
                   params, aux, grad, xb, acts, deltas, stats, seed, t, alive):
    """Gather, forward, loss and backward of one shard of a batch, in training mode.

    Parameters
    ----------
    X : float32 array of shape (n, s0), or (n, 0) with ``csr`` the sparse data
    csr : tuple of three arrays (``forward_pass``)
    Y, labels, sw
        Targets, class labels and sample weights of all rows (``losses.loss_delta``).
    rows : int64 array of shape (m,)
        The shard's rows in the data (m may be 0).
    norm : float
        The whole batch's loss normaliser (``loss_norm``).
    grad : float32 array of shape (P,)
        Overwritten with this shard's part of the batch gradient,
        ``d(sum over the shard's rows of w_i loss_i / norm) / d params``, penalty excluded.
    xb : float32 array of shape (>= m, s0); acts, deltas : float32 (A,)
        The shard's work buffers.
    stats : float64 array of shape (N_STATS + 3 k,)
        Receives the shard's metric sums, unless ``acc_kind`` is ``ACC_SKIP``.
    alive : float64 array
        Diagnostics row (``forward_pass``), shape (0,) when off.

    Returns
    -------
    float
        ``sum_i w_i loss_i`` over the shard's rows.
    """
    m = rows.shape[0]
    if m == 0:
        grad[:] = 0.0
        return 0.0
    gather_rows(X, rows, xb)
    x = readonly(xb[:m])  # the type of the data's own rows in ``inference.infer``
    last = ops.shape[0] - 1
    k_out = ops[last, OC_OUT]
    out_act = LINEAR if is_fused(ops[last, OC_ACT], loss) else ops[last, OC_ACT]
    forward_pass(x, rows, ops, opf, out_act, params, aux, acts, np.bool_(True), seed, t, alive,
                 csr)
    out = block(acts, ops[last, OC_BUF], m, k_out)
    data = loss_delta(loss, ops[last, OC_ACT], opf[last, OF_ALPHA], out, Y, labels, rows, sw,
                      loss_param, norm, block(deltas, ops[last, OC_BUF], m, k_out))
    backward_pass(x, rows, ops, opf, params, grad, acts, deltas, seed, t, csr)
    if acc_kind != ACC_SKIP:
        output_stats(out, Y, labels, rows, sw, acc_kind, stats)
    return data
