"""The training loop in plain NumPy: the oracle for ``fastbp.kernels.train``.

Same functions, same arguments, same buffers as the compiled loop, so a model can train on
either (``backend="numpy"``) and the two can be compared step by step. Works in any float
dtype: give it float64 arrays for gradient checks. Read ``forward_pass`` and
``backward_pass`` for backpropagation written out one operation at a time.
"""

import numpy as np

from ..codes import (
    ACC_SKIP, HP_CLIPNORM, HP_LR, LINEAR, LP_NORM_BY_WEIGHT, LP_PENALTY_PER_SAMPLE, OC_ACT,
    OC_ALIVE, OC_AUX, OC_BUF, OC_IN, OC_KIND, OC_OUT, OC_PARAM, OC_XHAT, OF_ALPHA, OF_EPS,
    OF_MOMENTUM, OF_RATE, OK, OP_BATCHNORM, OP_DENSE, OP_DROPOUT, SC_PER_STEP, ST_LOSS, ST_PENALTY,
    ST_ROWS,
)
from .activations import act_backward
from .batchnorm import batchnorm_backward, batchnorm_infer, batchnorm_train
from .dense import dense_backward, dense_forward, dense_grad
from .dropout import dropout_mask_apply
from .losses import is_fused, loss_delta, output_stats
from .optim import clip_scale, grad_sq_norm, optimizer_step, penalty, segments, sum_shards
from .schedules import scheduled_lr


def block(buf, offset, rows, cols):
    """View ``buf[offset : offset + rows * cols]`` as a (rows, cols) matrix."""
    return buf[offset:offset + rows * cols].reshape(rows, cols)


def gather_rows(X, rows, out):
    """``out = X[rows]``."""
    out[...] = X[rows]


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


def forward_pass(x, rows, ops, opf, out_act, params, aux, acts, training, seed, t, alive):
    """Forward pass: op k's output goes to its block ``ops[k, OC_BUF]`` of ``acts``."""
    m = x.shape[0]
    n_ops = len(ops)
    for k in range(n_ops):
        kind, n_in, n_out, p = ops[k, OC_KIND], ops[k, OC_IN], ops[k, OC_OUT], ops[k, OC_PARAM]
        a_in = op_input(x, ops, k, acts, m)
        a_out = block(acts, ops[k, OC_BUF], m, n_out)
        code = ops[k, OC_ACT] if k < n_ops - 1 else out_act
        if kind == OP_DENSE:
            W = block(params, p, n_in, n_out)
            b = params[p + n_in * n_out:p + n_in * n_out + n_out]
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


def backward_pass(x, rows, ops, opf, params, grads, acts, deltas, seed, t):
    """Backward pass from the last op's delta (dL/dz); ``grads`` (P,) is overwritten."""
    m = x.shape[0]
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
            dense_grad(a_in, g, block(grads, p, n_in, n_out),
                       grads[p + n_in * n_out:p + n_in * n_out + n_out])
            if k > 0:
                dense_backward(g, W, delta_in)
        elif kind == OP_BATCHNORM:
            h = ops[k, OC_XHAT]
            batchnorm_backward(g, block(acts, h + 2 * n_out, m, n_out), acts[h:h + n_out],
                               params[p:p + n_out], grads[p:p + n_out],
                               grads[p + n_out:p + 2 * n_out], delta_in, k > 0)
        elif opf[k, OF_RATE] > 0.0:
            dropout_mask_apply(g, rows, opf[k, OF_RATE], seed, t, k, delta_in)
        else:
            delta_in[...] = g


def forward_backward(x, Y, labels, rows, sw, norm, ops, opf, loss, loss_param, params, aux,
                     grad, acts, deltas, seed, t, alive):
    """Forward, loss, backward of one batch in training mode; returns ``sum_i w_i loss_i``."""
    m = x.shape[0]
    last = len(ops) - 1
    out_act = LINEAR if is_fused(ops[last, OC_ACT], loss) else ops[last, OC_ACT]
    forward_pass(x, rows, ops, opf, out_act, params, aux, acts, True, seed, t, alive)
    out = block(acts, ops[last, OC_BUF], m, ops[last, OC_OUT])
    delta = block(deltas, ops[last, OC_BUF], m, ops[last, OC_OUT])
    data = loss_delta(loss, ops[last, OC_ACT], opf[last, OF_ALPHA], out, Y, labels, rows, sw,
                      loss_param, norm, delta)
    backward_pass(x, rows, ops, opf, params, grad, acts, deltas, seed, t)
    return data


def batch_objective(x, Y, labels, rows, sw, ops, opf, runs, loss, loss_param, params, aux,
                    grads, acts, deltas, seed, t):
    """Loss of one batch (``sum_i w_i loss_i / norm + penalty``) and its gradient in ``grads``."""
    norm = loss_norm(rows, sw, loss_param)
    data = forward_backward(x, Y, labels, rows, sw, norm, ops, opf, loss, loss_param, params,
                            aux, grads, acts, deltas, seed, t, np.zeros(0))
    scale = 1.0 / norm if loss_param[LP_PENALTY_PER_SAMPLE] != 0.0 else 1.0
    return data / norm + penalty(params, grads, runs, scale)


def shard_objective(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind, params,
                    aux, grad, xb, acts, deltas, stats, seed, t, alive):
    """Gather, forward, loss, backward for one shard; returns ``sum_i w_i loss_i``."""
    m = len(rows)
    if m == 0:
        grad[:] = 0.0
        return 0.0
    x = xb[:m]
    gather_rows(X, rows, x)
    data = forward_backward(x, Y, labels, rows, sw, norm, ops, opf, loss, loss_param, params,
                            aux, grad, acts, deltas, seed, t, alive)
    if acc_kind != ACC_SKIP:
        last = len(ops) - 1
        output_stats(block(acts, ops[last, OC_BUF], m, ops[last, OC_OUT]), Y, labels, rows, sw,
                     acc_kind, stats)
    return data


def split(n, parts, k):
    """Bounds of part k when ``range(n)`` is cut into ``parts`` nearly equal runs."""
    size = -(-n // parts)
    lo = min(k * size, n)
    return lo, min(lo + size, n)


def run_shards(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind, params, aux,
               grads, xb, acts, deltas, stats, seed, t, diag, shard_loss):
    """Every shard of a batch: shard s takes the s-th run of ``rows``, writes ``grads[s]``."""
    n_shards = grads.shape[0]
    for s in range(n_shards):
        lo, hi = split(len(rows), n_shards, s)
        shard_loss[s] = shard_objective(X, Y, labels, sw, rows[lo:hi], norm, ops, opf, loss,
                                        loss_param, acc_kind, params, aux, grads[s], xb[s],
                                        acts[s], deltas[s], stats[s], seed, t, diag[s])


run_shards_parallel = run_shards  # the reference has no threads


def chunk_norms(params, grads, runs, pscale, seg, parts, c):
    """Sum the shards over chunk c; return its squared gradient norm (penalty included)."""
    lo, hi = split(len(params), parts, c)
    sum_shards(grads, lo, hi)
    n_seg = segments(runs, pscale, lo, hi, seg[c])
    return grad_sq_norm(params, grads, seg[c], n_seg)


def chunk_update(opt, params, grads, state, hyper, t, runs, pscale, scale, summed, seg, parts, c,
                 diag, prev):
    """Update chunk c (summing the shards unless already ``summed``); returns its penalty."""
    lo, hi = split(len(params), parts, c)
    n_seg = segments(runs, pscale, lo, hi, seg[c])
    return optimizer_step(opt, params, grads, state, hyper, t, seg[c], n_seg, scale, diag[c],
                          prev, summed)


def ordered_sum(a):
    """Sum of a 1-D array (the compiled twin adds in index order), as a float."""
    return float(a.sum())


def run_update(opt, params, grads, state, hyper, t, runs, pscale, seg, chunk_out, diag, prev):
    """Penalty, clipping and update over the whole vector, chunk by chunk; returns the penalty."""
    parts = seg.shape[0]
    clipnorm = hyper[HP_CLIPNORM]
    scale = 1.0
    if clipnorm > 0.0:
        for c in range(parts):
            chunk_out[c] = chunk_norms(params, grads, runs, pscale, seg, parts, c)
        scale = clip_scale(ordered_sum(chunk_out), clipnorm)
    for c in range(parts):
        chunk_out[c] = chunk_update(opt, params, grads, state, hyper, t, runs, pscale, scale,
                                    clipnorm > 0.0, seg, parts, c, diag, prev)
    return ordered_sum(chunk_out)


run_update_parallel = run_update


def sync_words(shards):
    """0: the reference runs no threads, so it needs no barrier words (the compiled loop's
    ``sync_words``)."""
    return 0


def train_epoch(X, Y, labels, sw, order, batch_size, ops, opf, runs, loss, loss_param, acc_kind,
                opt, hyper, sched, state, t, params, aux, grads, xb, acts, deltas, seg, scratch,
                stats, diag, prev, seed, parallel, running, probe, clock, sync, replicas):
    """One epoch of mini-batch training; returns ``(status, t, parallel_batches)`` like the
    compiled loop (``parallel``, ``running``, ``probe``, ``clock``, ``sync`` and ``replicas``
    are ignored: no threads here, so ``parallel_batches`` is 0)."""
    n = len(order)
    shard_loss, chunk_out = scratch[0], scratch[1]
    per_sample = loss_param[LP_PENALTY_PER_SAMPLE] != 0.0
    for batch, start in enumerate(range(0, n, batch_size)):
        rows = order[start:start + batch_size]
        m = len(rows)
        norm = loss_norm(rows, sw, loss_param)
        run_shards(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind, params,
                   aux, grads, xb, acts, deltas, stats, seed, t, diag, shard_loss)
        value = ordered_sum(shard_loss) / norm
        if not np.isfinite(value):
            return batch, t, 0
        if sched[SC_PER_STEP] != 0.0:
            hyper[HP_LR] = scheduled_lr(sched, float(t))
        t += 1
        pscale = 1.0 / norm if per_sample else 1.0
        pen = run_update(opt, params, grads, state, hyper, t, runs, pscale, seg, chunk_out, diag,
                         prev)
        value += pen
        if not np.isfinite(value):
            return batch, t, 0
        stats[0, ST_PENALTY] += pen * m
        stats[0, ST_LOSS] += value * m
        stats[0, ST_ROWS] += m
    return OK, t, 0


def evaluate(X, Y, labels, sw, ops, opf, loss, loss_param, acc_kind, params, aux, acts, deltas,
             chunk, stats):
    """Loss and metric sums over a data set in chunks of ``chunk`` rows (penalty excluded)."""
    n = X.shape[0]
    last = len(ops) - 1
    k_out = ops[last, OC_OUT]
    out_act = LINEAR if is_fused(ops[last, OC_ACT], loss) else ops[last, OC_ACT]
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        m = len(rows)
        forward_pass(X[rows], rows, ops, opf, out_act, params, aux, acts, False, 0, 0,
                     np.zeros(0))
        out = block(acts, ops[last, OC_BUF], m, k_out)
        delta = block(deltas, ops[last, OC_BUF], m, k_out)
        stats[ST_LOSS] += loss_delta(loss, ops[last, OC_ACT], opf[last, OF_ALPHA], out, Y,
                                     labels, rows, sw, loss_param, 1.0, delta)
        stats[ST_ROWS] += loss_norm(rows, sw, loss_param)
        output_stats(out, Y, labels, rows, sw, acc_kind, stats)


def predict_rows(X, ops, opf, params, aux, acts, chunk, out, lo, hi):
    """Outputs for rows lo..hi of X into ``out``, ``chunk`` rows at a time."""
    last = len(ops) - 1
    for start in range(lo, hi, chunk):
        stop = min(start + chunk, hi)
        forward_pass(X[start:stop], np.zeros(0, np.int64), ops, opf, ops[last, OC_ACT], params,
                     aux, acts, False, 0, 0, np.zeros(0))
        out[start:stop] = block(acts, ops[last, OC_BUF], stop - start, ops[last, OC_OUT])


def predict(X, ops, opf, params, aux, acts, chunk, out):
    """Outputs of the network for every row of X (n, s0) into ``out`` (n, k), inference mode;
    ``acts`` (T, A) holds one work buffer per run of rows."""
    for t in range(acts.shape[0]):
        lo, hi = split(X.shape[0], acts.shape[0], t)
        predict_rows(X, ops, opf, params, aux, acts[t], chunk, out, lo, hi)


predict_parallel = predict
