"""The training loop in plain NumPy: the oracle for ``fastbp.kernels.epoch``.

The same batches, shards, chunks and order of operations as the compiled loop, on one thread
(so without its thread, scheduling and timing arguments), in any float dtype. A model trains
on it with ``compile(..., backend="numpy")``.
"""

import numpy as np

from ..codes import (
    HP_CLIPNORM, HP_LR, LP_PENALTY_PER_SAMPLE, NADAM, NO_STEP, OK, SC_PER_STEP,
    ST_LOSS, ST_PENALTY, ST_ROWS,
)
from .network import loss_norm, shard_gradient, split
from .optim import advance_mu_product, clip_scale
from .schedules import scheduled_lr
from .units import units_gradient
from .update import chunk_gradient, chunk_norm, chunk_update, ordered_sum


def run_batch(X, csr, Y, labels, sw, rows, norm, ops, opf, runs, loss, loss_param, acc_kind,
              opt, hyper, state, t, params, aux, grads, xb, acts, deltas, seg, shard_loss,
              chunk_out, stats, diag, prev, seed):
    """One batch (step t): every part (row shards, or blocks of units when ``grads`` has one
    row for S = ``len(shard_loss)`` > 1 parts), then every chunk's update (or, for ``NO_STEP``,
    its gradient). Returns the data loss ``sum_i w_i loss_i / norm``; the chunks' penalties go to
    ``chunk_out``. Nothing is updated when the loss is not finite."""
    n_parts, n_shards = len(shard_loss), grads.shape[0]
    if n_shards < n_parts:  # split by units, every part on all the rows
        units_gradient(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind,
                       params, grads[0], xb[0], acts[0], deltas[0], shard_loss, stats)
    else:
        for sh in range(n_shards):
            lo, hi = split(len(rows), n_shards, sh)
            shard_loss[sh] = shard_gradient(X, csr, Y, labels, sw, rows[lo:hi], norm, ops, opf,
                                            loss, loss_param, acc_kind, params, aux, grads[sh],
                                            xb[sh], acts[sh], deltas[sh], stats[sh], seed, t,
                                            diag[sh])
    value = ordered_sum(shard_loss) / norm
    if not np.isfinite(value):
        return value
    pscale = 1.0 / norm if loss_param[LP_PENALTY_PER_SAMPLE] != 0.0 else 1.0
    clipping = hyper[HP_CLIPNORM] > 0.0 and opt != NO_STEP
    scale = 1.0
    if clipping:
        for c in range(n_parts):
            chunk_out[c] = chunk_norm(params, grads, runs, pscale, seg[c], n_parts, c)
        scale = clip_scale(ordered_sum(chunk_out), hyper[HP_CLIPNORM])
    for c in range(n_parts):
        if opt == NO_STEP:
            chunk_out[c] = chunk_gradient(params, grads, runs, pscale, seg[c], n_parts, c)
        else:
            chunk_out[c] = chunk_update(opt, params, grads, state, hyper, t + 1, runs, pscale,
                                        scale, clipping, seg[c], n_parts, c, diag, prev)
    return value


def train_epoch(X, csr, Y, labels, sw, order, batch_size, ops, opf, runs, loss, loss_param,
                acc_kind, opt, hyper, sched, state, t, params, aux, grads, xb, acts, deltas, seg,
                scratch, stats, diag, prev, seed):
    """One epoch of mini-batch training; returns ``(status, t)``: ``OK`` or the batch whose
    loss was not finite, and the steps taken after the epoch. Arguments as the compiled
    ``train_epoch``'s, without its threads."""
    n = len(order)
    shard_loss, chunk_out = scratch[0], scratch[1]
    for b, start in enumerate(range(0, n, batch_size)):
        rows = order[start:start + batch_size]
        m = len(rows)
        norm = loss_norm(rows, sw, loss_param)
        if sched[SC_PER_STEP] != 0.0 and opt != NO_STEP:
            hyper[HP_LR] = scheduled_lr(sched, float(t))
        value = run_batch(X, csr, Y, labels, sw, rows, norm, ops, opf, runs, loss, loss_param,
                          acc_kind, opt, hyper, state, t, params, aux, grads, xb, acts, deltas,
                          seg, shard_loss, chunk_out, stats, diag, prev, seed)
        if not np.isfinite(value):
            return b, t
        if opt != NO_STEP:
            t += 1
            if opt == NADAM:  # the product of Nadam's momentum coefficients to step t
                advance_mu_product(hyper, t)
        pen = ordered_sum(chunk_out)
        value += pen
        if not np.isfinite(value):
            return b, t
        stats[0, ST_PENALTY] += pen * m
        stats[0, ST_LOSS] += value * m
        stats[0, ST_ROWS] += m
    return OK, t
