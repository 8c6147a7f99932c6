"""The operation-table interpreter in plain NumPy: the oracle for ``fastbp.kernels.network``.

Same functions, same arguments, same buffers as the compiled code. Works in any float dtype:
give it float64 arrays for gradient checks. Read ``forward_pass`` and ``backward_pass`` for
backpropagation written out one operation at a time.
"""

import numpy as np

from ..codes import (
    ACC_SKIP, LINEAR, LP_NORM_BY_WEIGHT, OC_ACT, OC_ALIVE, OC_AUX, OC_BUF, OC_IN, OC_KIND, OC_OUT,
    OC_PARAM, OC_XHAT, OF_ALPHA, OF_EPS, OF_MOMENTUM, OF_RATE, OP_BATCHNORM, OP_DENSE, OP_DROPOUT,
)
from .activations import act_backward
from .batchnorm import batchnorm_backward, batchnorm_infer, batchnorm_train
from .dense import dense_backward, dense_forward, dense_grad
from .dropout import dropout_mask_apply
from .losses import is_fused, loss_delta, output_stats
from .sparse import sparse_dense_forward, sparse_dense_grad


def block(buf, offset, rows, cols):
    """View ``buf[offset : offset + rows * cols]`` as a (rows, cols) matrix."""
    return buf[offset:offset + rows * cols].reshape(rows, cols)


def split(n, parts, k):
    """Bounds of part k when ``range(n)`` is cut into ``parts`` nearly equal runs."""
    size = -(-n // parts)
    lo = min(k * size, n)
    return lo, min(lo + size, n)


def gather_rows(X, rows, out):
    """``out[:m] = X[rows]`` (m = len(rows))."""
    out[:len(rows)] = X[rows]


def loss_norm(rows, sw, loss_param):
    """The batch loss's normaliser: the row count, or the sum of the rows' sample weights."""
    if sw.shape[0] == 0 or loss_param[LP_NORM_BY_WEIGHT] == 0.0:
        return float(len(rows))
    return float(sw[rows].astype(np.float64).sum())


def op_input(x, ops, k, acts, m):
    """The input of op k: the batch for the first op, else the previous op's output."""
    return x if k == 0 else block(acts, ops[k - 1, OC_BUF], m, ops[k, OC_IN])


def mark_alive(a, flags):
    """Mark the units (columns of ``a``) with a positive output in some row."""
    flags[(a > 0).any(axis=0)] = 1.0


def forward_pass(x, rows, ops, opf, out_act, params, aux, acts, training, seed, t, alive, csr):
    """Forward pass: op k's output goes to its block ``ops[k, OC_BUF]`` of ``acts``. With
    sparse data (``csr`` = indptr, indices, values), the first op reads rows ``rows`` of it."""
    m = x.shape[0]
    sparse = len(csr[0]) > 0
    n_ops = len(ops)
    for k in range(n_ops):
        kind, n_in, n_out, p = ops[k, OC_KIND], ops[k, OC_IN], ops[k, OC_OUT], ops[k, OC_PARAM]
        a_in = op_input(x, ops, k, acts, m)
        a_out = block(acts, ops[k, OC_BUF], m, n_out)
        code = ops[k, OC_ACT] if k < n_ops - 1 else out_act
        if kind == OP_DENSE:
            W = block(params, p, n_in, n_out)
            b = params[p + n_in * n_out:p + n_in * n_out + n_out]
            if k == 0 and sparse:
                sparse_dense_forward(*csr, rows, W, b, code, opf[k, OF_ALPHA], a_out)
            else:
                dense_forward(a_in, W, b, code, opf[k, OF_ALPHA], a_out)
            if len(alive) and ops[k, OC_ALIVE] >= 0:
                mark_alive(a_out, alive[ops[k, OC_ALIVE]:ops[k, OC_ALIVE] + n_out])
        elif kind == OP_BATCHNORM:
            gamma, beta = params[p:p + n_out], params[p + n_out:p + 2 * n_out]
            a0 = ops[k, OC_AUX]
            run_mean, run_var = aux[a0:a0 + n_out], aux[a0 + n_out:a0 + 2 * n_out]
            if training:
                h = ops[k, OC_XHAT]
                batchnorm_train(a_in, gamma, beta, code, opf[k, OF_ALPHA], opf[k, OF_MOMENTUM],
                                opf[k, OF_EPS], block(acts, h + 2 * n_out, m, n_out),
                                acts[h:h + n_out], acts[h + n_out:h + 2 * n_out], run_mean,
                                run_var, a_out)
            else:
                batchnorm_infer(a_in, gamma, beta, code, opf[k, OF_ALPHA], opf[k, OF_EPS],
                                run_mean, run_var, a_out)
        elif training and opf[k, OF_RATE] > 0.0:
            dropout_mask_apply(a_in, rows, opf[k, OF_RATE], seed, t, k, a_out)
        else:
            a_out[...] = a_in


def backward_pass(x, rows, ops, opf, params, grad, acts, deltas, seed, t, csr):
    """Backward pass from the last op's delta (dL/dz); ``grad`` (P,) is overwritten."""
    m = x.shape[0]
    sparse = len(csr[0]) > 0
    n_ops = len(ops)
    for k in reversed(range(n_ops)):
        kind, n_in, n_out, p = ops[k, OC_KIND], ops[k, OC_IN], ops[k, OC_OUT], ops[k, OC_PARAM]
        if kind == OP_DROPOUT and k == 0:
            break
        g = block(deltas, ops[k, OC_BUF], m, n_out)            # dL/d(output of op k)
        a_in = op_input(x, ops, k, acts, m)
        delta_in = block(deltas, ops[k - 1, OC_BUF], m, n_in) if k > 0 else None
        if k < n_ops - 1 and kind != OP_DROPOUT:               # now dL/d(pre-activation)
            act_backward(block(acts, ops[k, OC_BUF], m, n_out), ops[k, OC_ACT],
                         opf[k, OF_ALPHA], g)
        if kind == OP_DENSE:
            W = block(params, p, n_in, n_out)
            if k == 0 and sparse:
                sparse_dense_grad(*csr, rows, g, block(grad, p, n_in, n_out),
                                  grad[p + n_in * n_out:p + n_in * n_out + n_out])
            else:
                dense_grad(a_in, g, block(grad, p, n_in, n_out),
                           grad[p + n_in * n_out:p + n_in * n_out + n_out])
            if k > 0:
                dense_backward(g, W, delta_in)
        elif kind == OP_BATCHNORM:
            h = ops[k, OC_XHAT]
            batchnorm_backward(g, block(acts, h + 2 * n_out, m, n_out), acts[h:h + n_out],
                               params[p:p + n_out], grad[p:p + n_out],
                               grad[p + n_out:p + 2 * n_out], delta_in, k > 0)
        elif opf[k, OF_RATE] > 0.0:
            dropout_mask_apply(g, rows, opf[k, OF_RATE], seed, t, k, delta_in)
        else:
            delta_in[...] = g


def shard_gradient(X, csr, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind,
                   params, aux, grad, xb, acts, deltas, stats, seed, t, alive):
    """Gather, forward, loss, backward of one shard (training mode): ``grad`` (P,) receives the
    shard's part of the batch gradient (penalty excluded), ``stats`` its metric sums unless
    ``acc_kind`` is ``ACC_SKIP``. Returns ``sum_i w_i loss_i`` over the shard's rows."""
    m = len(rows)
    if m == 0:
        grad[:] = 0.0
        return 0.0
    x = xb[:m]
    gather_rows(X, rows, x)
    last = len(ops) - 1
    k_out = ops[last, OC_OUT]
    out_act = LINEAR if is_fused(ops[last, OC_ACT], loss) else ops[last, OC_ACT]
    forward_pass(x, rows, ops, opf, out_act, params, aux, acts, True, seed, t, alive, csr)
    out = block(acts, ops[last, OC_BUF], m, k_out)
    data = loss_delta(loss, ops[last, OC_ACT], opf[last, OF_ALPHA], out, Y, labels, rows, sw,
                      loss_param, norm, block(deltas, ops[last, OC_BUF], m, k_out))
    backward_pass(x, rows, ops, opf, params, grad, acts, deltas, seed, t, csr)
    if acc_kind != ACC_SKIP:
        output_stats(out, Y, labels, rows, sw, acc_kind, stats)
    return data
