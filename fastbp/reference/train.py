"""The training loop in plain NumPy: the oracle for ``fastbp.kernels.train``.

Same functions, same arguments, same buffers as the compiled loop, so a model can train on
either (``backend="numpy"``) and the two can be compared step by step. Works in any float
dtype: give it float64 arrays for gradient checks.
"""

import numpy as np

from ..codes import (
    ACC_SKIP, HP_CLIPNORM, LINEAR, LP_NORM_BY_WEIGHT, LP_PENALTY_PER_SAMPLE, OK, ST_LOSS, ST_ROWS,
)
from .dense import dense_backward, dense_forward, dense_grad
from .losses import is_fused, loss_delta, output_stats
from .optim import clip_scale, grad_sq_norm, optimizer_step, penalty, segments, sum_shards


def block(buf, offset, rows, cols):
    """View ``buf[offset : offset + rows * cols]`` as a (rows, cols) matrix."""
    return buf[offset:offset + rows * cols].reshape(rows, cols)


def gather_rows(X, rows, out):
    """``out = X[rows]``."""
    out[...] = X[rows]


def batch_norm(rows, sw, loss_param):
    """The batch loss's normaliser: the row count, or the sum of the rows' sample weights."""
    if sw.shape[0] == 0 or loss_param[LP_NORM_BY_WEIGHT] == 0.0:
        return float(len(rows))
    return float(sw[rows].astype(np.float64).sum())


def forward_pass(x, sizes, w_off, b_off, act, alpha, out_act, params, acts, act_off):
    """Forward pass; layer l's output goes to ``block(acts, act_off[l], m, sizes[l + 1])``."""
    m = x.shape[0]
    n_layers = len(w_off)
    a_in = x
    for l in range(n_layers):
        W = block(params, w_off[l], sizes[l], sizes[l + 1])
        b = params[b_off[l]:b_off[l] + sizes[l + 1]]
        a_out = block(acts, act_off[l], m, sizes[l + 1])
        code = act[l] if l < n_layers - 1 else out_act
        dense_forward(a_in, W, b, code, alpha[l], a_out)
        a_in = a_out


def backward_pass(x, sizes, w_off, b_off, act, alpha, params, grads, acts, deltas, act_off):
    """Backward pass from the last layer's delta; ``grads`` is overwritten."""
    m = x.shape[0]
    for l in reversed(range(len(w_off))):
        delta = block(deltas, act_off[l], m, sizes[l + 1])
        a_in = x if l == 0 else block(acts, act_off[l - 1], m, sizes[l])
        grad_w = block(grads, w_off[l], sizes[l], sizes[l + 1])
        grad_b = grads[b_off[l]:b_off[l] + sizes[l + 1]]
        dense_grad(a_in, delta, grad_w, grad_b)
        if l > 0:
            W = block(params, w_off[l], sizes[l], sizes[l + 1])
            delta_in = block(deltas, act_off[l - 1], m, sizes[l])
            dense_backward(delta, W, a_in, act[l - 1], alpha[l - 1], delta_in)


def batch_objective(x, Y, labels, rows, sw, sizes, w_off, b_off, act, alpha, l1, l2,
                    loss, loss_param, params, grads, acts, deltas, act_off):
    """Loss of one batch (``sum_i w_i loss_i / norm + penalty``) and its gradient in ``grads``."""
    m = x.shape[0]
    last = len(w_off) - 1
    out_act = LINEAR if is_fused(act[last], loss) else act[last]
    forward_pass(x, sizes, w_off, b_off, act, alpha, out_act, params, acts, act_off)
    norm = batch_norm(rows, sw, loss_param)
    out = block(acts, act_off[last], m, sizes[last + 1])
    delta = block(deltas, act_off[last], m, sizes[last + 1])
    data = loss_delta(loss, act[last], alpha[last], out, Y, labels, rows, sw, loss_param,
                      norm, delta)
    backward_pass(x, sizes, w_off, b_off, act, alpha, params, grads, acts, deltas, act_off)
    scale = 1.0 / norm if loss_param[LP_PENALTY_PER_SAMPLE] != 0.0 else 1.0
    return data / norm + penalty(params, grads, sizes, w_off, l1, l2, scale)


def shard_objective(X, Y, labels, sw, rows, norm, sizes, w_off, b_off, act, alpha, loss,
                    loss_param, acc_kind, params, grad, xb, acts, deltas, act_off, stats):
    """Gather, forward, loss, backward for one shard; ``grad`` (P,) overwritten.
    Returns ``sum_i w_i loss_i`` over the shard's rows."""
    m = len(rows)
    if m == 0:
        grad[:] = 0.0
        return 0.0
    last = len(w_off) - 1
    x = xb[:m]
    gather_rows(X, rows, x)
    out_act = LINEAR if is_fused(act[last], loss) else act[last]
    forward_pass(x, sizes, w_off, b_off, act, alpha, out_act, params, acts, act_off)
    out = block(acts, act_off[last], m, sizes[last + 1])
    delta = block(deltas, act_off[last], m, sizes[last + 1])
    data = loss_delta(loss, act[last], alpha[last], out, Y, labels, rows, sw, loss_param,
                      norm, delta)
    backward_pass(x, sizes, w_off, b_off, act, alpha, params, grad, acts, deltas, act_off)
    if acc_kind != ACC_SKIP:
        output_stats(out, Y, labels, rows, sw, acc_kind, stats)
    return data


def split(n, parts, k):
    """Bounds of part k when ``range(n)`` is cut into ``parts`` nearly equal runs."""
    size = -(-n // parts)
    lo = min(k * size, n)
    return lo, min(lo + size, n)


def run_shards(X, Y, labels, sw, rows, norm, sizes, w_off, b_off, act, alpha, loss, loss_param,
               acc_kind, params, grads, xb, acts, deltas, act_off, stats, shard_loss):
    """Every shard of a batch: shard s takes the s-th run of ``rows``, writes ``grads[s]``."""
    n_shards = grads.shape[0]
    for s in range(n_shards):
        lo, hi = split(len(rows), n_shards, s)
        shard_loss[s] = shard_objective(X, Y, labels, sw, rows[lo:hi], norm, sizes, w_off, b_off,
                                        act, alpha, loss, loss_param, acc_kind, params, grads[s],
                                        xb[s], acts[s], deltas[s], act_off, stats[s])


run_shards_parallel = run_shards  # the reference has no threads


def chunk_norms(params, grads, sizes, w_off, b_off, l1, l2, pscale, seg, parts, c):
    """Sum the shards over chunk c; return its squared gradient norm (penalty included)."""
    lo, hi = split(len(params), parts, c)
    sum_shards(grads, lo, hi)
    n_seg = segments(sizes, w_off, b_off, l1, l2, pscale, lo, hi, seg[c])
    return grad_sq_norm(params, grads, seg[c], n_seg)


def chunk_update(opt, params, grads, state, hyper, t, sizes, w_off, b_off, l1, l2, pscale,
                 scale, summed, seg, parts, c):
    """Sum the shards (unless already ``summed``) and update chunk c; returns its penalty."""
    lo, hi = split(len(params), parts, c)
    if not summed:
        sum_shards(grads, lo, hi)
    n_seg = segments(sizes, w_off, b_off, l1, l2, pscale, lo, hi, seg[c])
    return optimizer_step(opt, params, grads, state, hyper, t, seg[c], n_seg, scale)


def run_update(opt, params, grads, state, hyper, t, sizes, w_off, b_off, l1, l2, pscale, seg,
               chunk_out):
    """Penalty, clipping and update over the whole vector, chunk by chunk; returns the penalty."""
    parts = seg.shape[0]
    clipnorm = hyper[HP_CLIPNORM]
    scale = 1.0
    if clipnorm > 0.0:
        for c in range(parts):
            chunk_out[c] = chunk_norms(params, grads, sizes, w_off, b_off, l1, l2, pscale, seg,
                                       parts, c)
        scale = clip_scale(chunk_out.sum(), clipnorm)
    for c in range(parts):
        chunk_out[c] = chunk_update(opt, params, grads, state, hyper, t, sizes, w_off, b_off, l1,
                                    l2, pscale, scale, clipnorm > 0.0, seg, parts, c)
    return chunk_out.sum()


run_update_parallel = run_update


def train_epoch(X, Y, labels, sw, order, batch_size, sizes, w_off, b_off, act, alpha, l1, l2,
                loss, loss_param, acc_kind, opt, hyper, state, t,
                params, grads, xb, acts, deltas, act_off, seg, scratch, stats, parallel):
    """One epoch of mini-batch training; returns ``(status, t)`` like the compiled loop."""
    n = len(order)
    shard_loss, chunk_out = scratch[0], scratch[1]
    per_sample = loss_param[LP_PENALTY_PER_SAMPLE] != 0.0
    for batch, start in enumerate(range(0, n, batch_size)):
        rows = order[start:start + batch_size]
        m = len(rows)
        norm = batch_norm(rows, sw, loss_param)
        run_shards(X, Y, labels, sw, rows, norm, sizes, w_off, b_off, act, alpha, loss,
                   loss_param, acc_kind, params, grads, xb, acts, deltas, act_off, stats,
                   shard_loss)
        value = shard_loss.sum() / norm
        if not np.isfinite(value):
            return batch, t
        t += 1
        pscale = 1.0 / norm if per_sample else 1.0
        value += run_update(opt, params, grads, state, hyper, t, sizes, w_off, b_off, l1, l2,
                            pscale, seg, chunk_out)
        if not np.isfinite(value):
            return batch, t
        stats[0, ST_LOSS] += value * m
        stats[0, ST_ROWS] += m
    return OK, t


def evaluate(X, Y, labels, sw, sizes, w_off, b_off, act, alpha, loss, loss_param, acc_kind,
             params, acts, deltas, act_off, chunk, stats):
    """Loss and metric sums over a data set in chunks of ``chunk`` rows (penalty excluded)."""
    n = X.shape[0]
    last = len(w_off) - 1
    out_act = LINEAR if is_fused(act[last], loss) else act[last]
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        m = len(rows)
        forward_pass(X[rows], sizes, w_off, b_off, act, alpha, out_act, params, acts, act_off)
        out = block(acts, act_off[last], m, sizes[last + 1])
        delta = block(deltas, act_off[last], m, sizes[last + 1])
        stats[ST_LOSS] += loss_delta(loss, act[last], alpha[last], out, Y, labels, rows, sw,
                                     loss_param, 1.0, delta)
        stats[ST_ROWS] += batch_norm(rows, sw, loss_param)
        output_stats(out, Y, labels, rows, sw, acc_kind, stats)


def predict(X, sizes, w_off, b_off, act, alpha, params, acts, act_off, chunk, out):
    """Outputs of the network for every row of X (n, s0) into ``out`` (n, sL)."""
    n = X.shape[0]
    last = len(w_off) - 1
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        forward_pass(X[start:stop], sizes, w_off, b_off, act, alpha, act[last], params, acts,
                     act_off)
        out[start:stop] = block(acts, act_off[last], stop - start, sizes[last + 1])
