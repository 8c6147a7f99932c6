"""A batch split by units, in plain NumPy: the oracle for ``fastbp.kernels.units``.

The same blocks and the same order as the compiled code, on one thread: each stage runs
every block (``units``) one after the other. Backpropagation is the same as in
``network.shard_gradient``; only who computes which part of each product changes.
"""

from ..codes import ACC_SKIP, LINEAR, OC_ACT, OC_BUF, OC_IN, OC_OUT, OC_PARAM, OF_ALPHA
from .activations import act_backward, act_forward
from .dense import dense_forward
from .losses import is_fused, loss_delta, output_stats
from .network import block, gather_rows, split

#: a block of units is a whole number of these (a cache line of float32)
UNIT_GROUP = 16


def units(n, parts, s):
    """Bounds ``[lo, hi)`` of block s when n units are cut into ``parts`` blocks of whole
    ``UNIT_GROUP`` runs."""
    groups = -(-n // UNIT_GROUP)
    size = -(-groups // parts) * UNIT_GROUP
    lo = min(s * size, n)
    return lo, min(lo + size, n)


def forward_units(x, ops, opf, k, params, acts, m, s, parts):
    """Block s of hidden layer k's outputs: ``a_k[:, J] = f(a_{k-1} @ W_k[:, J] + b_k[J])``."""
    n_in, n_out, p = ops[k, OC_IN], ops[k, OC_OUT], ops[k, OC_PARAM]
    lo, hi = units(n_out, parts, s)
    a_in = x if k == 0 else block(acts, ops[k - 1, OC_BUF], m, n_in)
    W = block(params, p, n_in, n_out)
    b = params[p + n_in * n_out:p + n_in * n_out + n_out]
    out = block(acts, ops[k, OC_BUF], m, n_out)[:, lo:hi]
    out[...] = a_in @ W[:, lo:hi]
    act_forward(out, b[lo:hi], ops[k, OC_ACT], opf[k, OF_ALPHA])


def backward_units(x, ops, opf, k, params, grad, acts, deltas, m, s, parts):
    """Block s of layer k's backward step: ``dW_k[I] = a_{k-1}[:, I].T @ g_k``, the bias
    gradient of unit block s, and ``g_{k-1}[:, I] = (g_k @ W_k[I].T) f'(a_{k-1}[:, I])``."""
    n_in, n_out, p = ops[k, OC_IN], ops[k, OC_OUT], ops[k, OC_PARAM]
    g = block(deltas, ops[k, OC_BUF], m, n_out)
    a_in = x if k == 0 else block(acts, ops[k - 1, OC_BUF], m, n_in)
    lo, hi = units(n_in, parts, s)
    block(grad, p, n_in, n_out)[lo:hi] = a_in[:, lo:hi].T @ g
    j0, j1 = units(n_out, parts, s)
    grad[p + n_in * n_out + j0:p + n_in * n_out + j1] = g[:, j0:j1].sum(axis=0)
    if k > 0:
        delta_in = block(deltas, ops[k - 1, OC_BUF], m, n_in)[:, lo:hi]
        delta_in[...] = g @ block(params, p, n_in, n_out)[lo:hi].T
        act_backward(block(acts, ops[k - 1, OC_BUF], m, n_in)[:, lo:hi], ops[k - 1, OC_ACT],
                     opf[k - 1, OF_ALPHA], delta_in)


def output_rows(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind, params,
                acts, deltas, stats, s, parts):
    """Row run s through the output layer and the loss; returns its ``sum_i w_i loss_i``."""
    m = len(rows)
    lo, hi = split(m, parts, s)
    if hi <= lo:
        return 0.0
    last = len(ops) - 1
    n_in, n_out, p = ops[last, OC_IN], ops[last, OC_OUT], ops[last, OC_PARAM]
    act = ops[last, OC_ACT]
    out = block(acts, ops[last, OC_BUF], m, n_out)[lo:hi]
    dense_forward(block(acts, ops[last - 1, OC_BUF], m, n_in)[lo:hi],
                  block(params, p, n_in, n_out), params[p + n_in * n_out:p + (n_in + 1) * n_out],
                  LINEAR if is_fused(act, loss) else act, opf[last, OF_ALPHA], out)
    value = loss_delta(loss, act, opf[last, OF_ALPHA], out, Y, labels, rows[lo:hi], sw,
                       loss_param, norm, block(deltas, ops[last, OC_BUF], m, n_out)[lo:hi])
    if acc_kind != ACC_SKIP:
        output_stats(out, Y, labels, rows[lo:hi], sw, acc_kind, stats)
    return value


def units_gradient(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind, params,
                   grad, xb, acts, deltas, shard_loss, stats):
    """The batch's gradient into ``grad`` (P,), block by block in the compiled code's order;
    each row run's loss sum into ``shard_loss`` (S,), its metric sums into ``stats[s]``."""
    parts = len(shard_loss)
    m = len(rows)
    x = xb[:m]
    gather_rows(X, rows, x)
    for k in range(len(ops) - 1):
        for s in range(parts):
            forward_units(x, ops, opf, k, params, acts, m, s, parts)
    for s in range(parts):
        shard_loss[s] = output_rows(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param,
                                    acc_kind, params, acts, deltas, stats[s], s, parts)
    for k in reversed(range(len(ops))):
        for s in range(parts):
            backward_units(x, ops, opf, k, params, grad, acts, deltas, m, s, parts)
