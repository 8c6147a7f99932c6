"""A batch split by units: every thread takes all the batch's rows and a block of each layer's
units, for batches too short to cut into row shards.

Cut into row shards, a batch of 32 rows gives each of two threads products of 16 rows, and
BLAS runs 16-row products at 65-80% of the rate of 32-row ones (``bench/small_products.py``).
Split by units instead, each thread's products keep all the rows:

* forward, hidden layer k: thread s computes its units' outputs ``a_k[:, J] = f(a_{k-1} @
  W_k[:, J] + b_k[J])`` (J = ``units(n_k, S, s)``);
* output layer and loss: by rows (the loss of a row needs its every output; the output layer
  is narrow), thread s its run of rows (``network.split``);
* backward, layer k: thread s computes the rows of the weight gradient of its block I of the
  layer's input units, ``dW_k[I] = a_{k-1}[:, I].T @ g_k``, the bias gradient of its units
  of layer k, and the delta of its input units, ``g_{k-1}[:, I] = (g_k @ W_k[I].T) *
  f'(a_{k-1}[:, I])``: the units it computed forward.

All threads meet after the gather, after each hidden layer, after the loss and after each
layer's backward step but the first's (``n_meetings``). A thread's block of a layer is the
same whichever thread computes it, and the serial way computes the blocks one after the other
in block order: both ways give the same bits. Blocks are whole runs of ``UNIT_GROUP`` units, so
two threads never write the same cache line of a row but at a layer's last group.

The whole batch's gradient lands in ``grad`` (P,) without a reduction; the loss and metric
sums land per thread, in ``shard_loss[s]`` and ``stats[s]``.

For dense layers on dense data only (no batch norm, dropout, sparse input, diagnostics or
hidden softmax: ``fastbp.layout.Layout.splits_by_units``).

NumPy twin: ``fastbp.reference.units``.
"""

from ..codes import ACC_SKIP, LINEAR, OC_ACT, OC_BUF, OC_IN, OC_OUT, OC_PARAM, OF_ALPHA
from .._jit import jit
from .activations import act_backward, act_forward
from .blas import N, T, gemm
from .dense import dense_forward
from .losses import is_fused, loss_delta, output_stats
from .network import block, gather_rows, split
from .shared import meet
from .views import flat, readonly

#: a block of units is a whole number of these: 16 float32 fill a 64-byte cache line
UNIT_GROUP = 16


@jit(inline="always")
def units(n, parts, s):
    """Bounds ``[lo, hi)`` of block s when n units are cut into ``parts`` blocks of whole
    ``UNIT_GROUP`` runs (the last blocks may be short or empty)."""
    groups = (n + UNIT_GROUP - 1) // UNIT_GROUP
    size = (groups + parts - 1) // parts * UNIT_GROUP
    lo = min(s * size, n)
    return lo, min(lo + size, n)


@jit(inline="always")
def n_meetings(n_ops):
    """Barriers of one batch split by units: after the gather, after each hidden layer, after
    the loss, after each layer's backward step but the first's (2 per op)."""
    return 2 * n_ops


@jit
def forward_units(x, ops, opf, k, params, acts, m, s, parts):
    """Block s of hidden layer k's outputs over all m rows, activation included.

    x : float32 (>= m * s0,) the gathered batch, flat; acts : float32 (A,) the work buffer.
    """
    n_in, n_out, p = ops[k, OC_IN], ops[k, OC_OUT], ops[k, OC_PARAM]
    lo, hi = units(n_out, parts, s)
    if hi <= lo:
        return
    a_in = x if k == 0 else acts[ops[k - 1, OC_BUF]:]
    out = ops[k, OC_BUF]
    gemm(N, N, m, hi - lo, n_in, a_in, n_in, params[p + lo:], n_out, acts[out + lo:], n_out)
    bias = params[p + n_in * n_out + lo:p + n_in * n_out + hi]
    for i in range(m):  # row by row: each row's block is contiguous
        act_forward(block(acts, out + i * n_out + lo, 1, hi - lo), bias, ops[k, OC_ACT],
                    opf[k, OF_ALPHA])


@jit
def backward_units(x, ops, opf, k, params, grad, acts, deltas, m, s, parts):
    """Thread s's share of layer k's backward step, its delta ``g_k`` complete: the weight
    gradient's rows of input block s, the bias gradient of unit block s, and (k > 0) the
    input delta's block s, times the derivative of layer k - 1's activation."""
    n_in, n_out, p = ops[k, OC_IN], ops[k, OC_OUT], ops[k, OC_PARAM]
    g = deltas[ops[k, OC_BUF]:]
    a_in = x if k == 0 else acts[ops[k - 1, OC_BUF]:]
    lo, hi = units(n_in, parts, s)
    # dW[lo:hi] = a_in[:, lo:hi].T @ g
    gemm(T, N, hi - lo, n_out, m, a_in[lo:], n_in, g, n_out, grad[p + lo * n_out:], n_out)
    j0, j1 = units(n_out, parts, s)
    b = p + n_in * n_out
    for j in range(j0, j1):
        grad[b + j] = 0.0
    for i in range(m):
        for j in range(j0, j1):
            grad[b + j] += g[i * n_out + j]
    if k == 0 or hi <= lo:
        return
    # g_{k-1}[:, lo:hi] = g @ W[lo:hi].T, then f'(a_{k-1}) on the block
    below = ops[k - 1, OC_BUF]
    gemm(N, T, m, hi - lo, n_out, g, n_out, params[p + lo * n_out:], n_out,
         deltas[below + lo:], n_in)
    for i in range(m):
        at = below + i * n_in + lo
        act_backward(block(acts, at, 1, hi - lo), ops[k - 1, OC_ACT], opf[k - 1, OF_ALPHA],
                     block(deltas, at, 1, hi - lo))


@jit
def output_rows(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind, params,
                acts, deltas, stats, s, parts):
    """Thread s's run of rows through the output layer and the loss: their outputs, the
    output delta and the metric sums (into ``stats``); returns their ``sum_i w_i loss_i``."""
    m = rows.shape[0]
    lo, hi = split(m, parts, s)
    if hi <= lo:
        return 0.0
    last = ops.shape[0] - 1
    n_in, n_out, p = ops[last, OC_IN], ops[last, OC_OUT], ops[last, OC_PARAM]
    act = ops[last, OC_ACT]
    out_act = LINEAR if is_fused(act, loss) else act
    out = block(acts, ops[last, OC_BUF] + lo * n_out, hi - lo, n_out)
    # (the input read-only, as the row shards' first layer passes it: one compiled
    # dense_forward for both)
    dense_forward(readonly(block(acts, ops[last - 1, OC_BUF] + lo * n_in, hi - lo, n_in)),
                  block(params, p, n_in, n_out),
                  params[p + n_in * n_out:p + n_in * n_out + n_out], out_act,
                  opf[last, OF_ALPHA], out)
    value = loss_delta(loss, act, opf[last, OF_ALPHA], out, Y, labels, rows[lo:hi], sw,
                       loss_param, norm, block(deltas, ops[last, OC_BUF] + lo * n_out, hi - lo,
                                               n_out))
    if acc_kind != ACC_SKIP:
        output_stats(out, Y, labels, rows[lo:hi], sw, acc_kind, stats)
    return value


@jit(inline="always")
def units_gradient(s, together, phase, X, Y, labels, sw, rows, norm, ops, opf, loss,
                   loss_param, acc_kind, params, grad, xb, acts, deltas, shard_loss, stats,
                   sync, arrived):
    """The batch ``rows``'s gradient into ``grad`` (P,), split by units among S =
    ``shard_loss.shape[0]`` threads: thread s's share when ``together`` (all S threads call
    this, meeting ``n_meetings`` times from ``phase``), else every share in block order.

    X : float32 (n, s0); Y, labels, sw, rows, norm, loss, loss_param, acc_kind: as in
    ``network.shard_gradient``; xb : float32 (>= m, s0), acts and deltas (A,): work buffers
    for all m rows, shared by the threads; shard_loss : float64 (S,) receives each share's
    ``sum_i w_i loss_i``, stats (S, N_STATS + 3 k) its metric sums. Returns the new phase.
    """
    parts = shard_loss.shape[0]
    m = rows.shape[0]
    s0 = xb.shape[1]
    x = flat(xb)
    n_ops = ops.shape[0]
    first, last = (s, s + 1) if together else (0, parts)
    # the stages, a meeting after each (one call site each: compile time): the gather, the
    # hidden layers forward, the output rows and loss, the layers backward but the first
    for stage in range(n_meetings(n_ops) + 1):
        for q in range(first, last):
            if stage == 0:
                lo, hi = split(m, parts, q)
                gather_rows(X, rows[lo:hi], block(x, lo * s0, hi - lo, s0))
            elif stage < n_ops:
                forward_units(x, ops, opf, stage - 1, params, acts, m, q, parts)
            elif stage == n_ops:
                shard_loss[q] = output_rows(X, Y, labels, sw, rows, norm, ops, opf, loss,
                                            loss_param, acc_kind, params, acts, deltas,
                                            stats[q], q, parts)
            else:  # layers n_ops - 1 down to 0
                backward_units(x, ops, opf, 2 * n_ops - stage, params, grad, acts, deltas, m,
                               q, parts)
        if stage < n_meetings(n_ops):
            phase = meet(sync, arrived, s, parts, together, phase)
    return phase
