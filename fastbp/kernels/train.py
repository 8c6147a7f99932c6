"""The compiled training loop: a whole epoch of mini-batch backpropagation in one call.

The network arrives as small arrays (see ``fastbp.layout``):

* ``sizes`` int64 (L + 1,): widths s0 (features) .. sL (outputs);
* ``w_off``, ``b_off`` int64 (L,): offsets of W_l (s_l x s_{l+1}, row-major) and b_l in the
  flat float32 parameter vector ``params``; ``grads`` and each row of ``state`` share them;
* ``act`` int64 (L,), ``alpha`` float64 (L,): activation code and parameter per layer;
* ``l1``, ``l2`` float64 (L,): penalty coefficients per layer.

Work buffers are flat float32 vectors allocated once per fit: ``acts`` holds each layer's
output, ``deltas`` each layer's dL/dz, layer l at offset ``act_off[l]`` as a (rows, s_{l+1})
block whose row capacity is the batch size. ``xb`` (batch, s0) receives the gathered rows.

NumPy twin: ``fastbp.reference.train``.
"""

import numpy as np

from numba import prange

from .._jit import jit
from ..codes import (
    ACC_SKIP, HP_CLIPNORM, LINEAR, LP_NORM_BY_WEIGHT, LP_PENALTY_PER_SAMPLE, OK, ST_LOSS, ST_ROWS,
)
from .dense import dense_backward, dense_forward, dense_grad
from .losses import is_fused, loss_delta, output_stats
from .optim import clip_scale, grad_sq_norm, optimizer_step, penalty, segments, sum_shards


@jit(inline="always")
def block(buf, offset, rows, cols):
    """View ``buf[offset : offset + rows * cols]`` as a C-contiguous (rows, cols) matrix."""
    return buf[offset:offset + rows * cols].reshape((rows, cols))


@jit
def gather_rows(X, rows, out):
    """``out[i] = X[rows[i]]``: copy a mini-batch's rows into a contiguous buffer.

    X : float32 (n, f); rows : int64 (m,); out : float32 (m, f), overwritten.
    """
    f = X.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(f):
            out[i, j] = X[r, j]


@jit
def batch_norm(rows, sw, loss_param):
    """The batch loss's normaliser: the row count, or the sum of the rows' sample weights."""
    if sw.shape[0] == 0 or loss_param[LP_NORM_BY_WEIGHT] == 0.0:
        return float(rows.shape[0])
    total = 0.0
    for i in range(rows.shape[0]):
        total += sw[rows[i]]
    return total


@jit
def forward_pass(x, sizes, w_off, b_off, act, alpha, out_act, params, acts, act_off):
    """Forward pass through every layer.

    Parameters
    ----------
    x : float32 array of shape (m, s0)
    out_act : int
        Activation code used for the last layer (LINEAR when a fused loss applies its own).
    acts : float32 array
        Layer l's output is written to ``block(acts, act_off[l], m, sizes[l + 1])``.
    """
    m = x.shape[0]
    n_layers = w_off.shape[0]
    a_in = x
    for l in range(n_layers):
        W = block(params, w_off[l], sizes[l], sizes[l + 1])
        b = params[b_off[l]:b_off[l] + sizes[l + 1]]
        a_out = block(acts, act_off[l], m, sizes[l + 1])
        code = act[l] if l < n_layers - 1 else out_act
        dense_forward(a_in, W, b, code, alpha[l], a_out)
        a_in = a_out


@jit
def backward_pass(x, sizes, w_off, b_off, act, alpha, params, grads, acts, deltas, act_off):
    """Backward pass: weight gradients of every layer and deltas of every hidden layer.

    On entry the last layer's block of ``deltas`` holds dL/dz_L. ``grads`` is overwritten.
    """
    m = x.shape[0]
    n_layers = w_off.shape[0]
    for l in range(n_layers - 1, -1, -1):
        delta = block(deltas, act_off[l], m, sizes[l + 1])
        a_in = x if l == 0 else block(acts, act_off[l - 1], m, sizes[l])
        grad_w = block(grads, w_off[l], sizes[l], sizes[l + 1])
        grad_b = grads[b_off[l]:b_off[l] + sizes[l + 1]]
        dense_grad(a_in, delta, grad_w, grad_b)
        if l > 0:
            W = block(params, w_off[l], sizes[l], sizes[l + 1])
            delta_in = block(deltas, act_off[l - 1], m, sizes[l])
            dense_backward(delta, W, a_in, act[l - 1], alpha[l - 1], delta_in)


@jit
def batch_objective(x, Y, labels, rows, sw, sizes, w_off, b_off, act, alpha, l1, l2,
                    loss, loss_param, params, grads, acts, deltas, act_off):
    """Loss of one batch and its gradient with respect to every parameter.

    Parameters
    ----------
    x : float32 array of shape (m, s0)
        The batch's inputs (rows ``rows`` of the data, already gathered).
    Y, labels, rows, sw
        Targets, class labels, row indices and sample weights (see ``losses.loss_delta``).
    grads : float32 array of shape (P,)
        Overwritten with the gradient, penalty included.

    Returns
    -------
    float
        ``sum_i w_i loss_i / norm + penalty``.
    """
    m = x.shape[0]
    last = w_off.shape[0] - 1
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


@jit
def shard_objective(X, Y, labels, sw, rows, norm, sizes, w_off, b_off, act, alpha, loss,
                    loss_param, acc_kind, params, grad, xb, acts, deltas, act_off, stats):
    """Gather, forward, loss, backward for one shard of a batch.

    ``grad`` (P,) is overwritten with this shard's part of the batch gradient (zeros when the
    shard is empty); ``stats`` (N_STATS,) receives the shard's metric sums unless
    ``acc_kind`` is ``ACC_SKIP``. Returns ``sum_i w_i loss_i`` over the shard's rows.
    """
    m = rows.shape[0]
    if m == 0:
        grad[:] = 0.0
        return 0.0
    last = w_off.shape[0] - 1
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


@jit(inline="always")
def split(n, parts, k):
    """Bounds of part k when ``range(n)`` is cut into ``parts`` nearly equal runs."""
    size = (n + parts - 1) // parts
    lo = min(k * size, n)
    return lo, min(lo + size, n)


# The two drivers below differ only in ``range`` / ``prange``. They are separate functions on
# purpose: Numba's disk cache keys a function by its code, not by its options, so one body
# compiled both ways would load the wrong machine code from the cache.

@jit
def run_shards(X, Y, labels, sw, rows, norm, sizes, w_off, b_off, act, alpha, loss, loss_param,
               acc_kind, params, grads, xb, acts, deltas, act_off, stats, shard_loss):
    """Every shard of a batch, one after the other (see ``run_shards_parallel``)."""
    n_shards = grads.shape[0]
    for s in range(n_shards):
        lo, hi = split(rows.shape[0], n_shards, s)
        shard_loss[s] = shard_objective(X, Y, labels, sw, rows[lo:hi], norm, sizes, w_off, b_off,
                                        act, alpha, loss, loss_param, acc_kind, params, grads[s],
                                        xb[s], acts[s], deltas[s], act_off, stats[s])


@jit(parallel=True)
def run_shards_parallel(X, Y, labels, sw, rows, norm, sizes, w_off, b_off, act, alpha, loss,
                        loss_param, acc_kind, params, grads, xb, acts, deltas, act_off, stats,
                        shard_loss):
    """Every shard of a batch, one thread each: shard s takes the s-th run of ``rows`` and
    writes only ``grads[s]``, ``xb[s]``, ``acts[s]``, ``deltas[s]``, ``stats[s]``."""
    n_shards = grads.shape[0]
    for s in prange(n_shards):
        lo, hi = split(rows.shape[0], n_shards, s)
        shard_loss[s] = shard_objective(X, Y, labels, sw, rows[lo:hi], norm, sizes, w_off, b_off,
                                        act, alpha, loss, loss_param, acc_kind, params, grads[s],
                                        xb[s], acts[s], deltas[s], act_off, stats[s])


@jit
def chunk_norms(params, grads, sizes, w_off, b_off, l1, l2, pscale, seg, parts, c):
    """Sum the shards over chunk c of the parameter vector and return the chunk's squared
    gradient norm (penalty included)."""
    lo, hi = split(params.shape[0], parts, c)
    sum_shards(grads, lo, hi)
    n_seg = segments(sizes, w_off, b_off, l1, l2, pscale, lo, hi, seg[c])
    return grad_sq_norm(params, grads, seg[c], n_seg)


@jit
def chunk_update(opt, params, grads, state, hyper, t, sizes, w_off, b_off, l1, l2, pscale,
                 scale, summed, seg, parts, c):
    """Sum the shards (unless already ``summed``) and update chunk c; returns its penalty."""
    lo, hi = split(params.shape[0], parts, c)
    if not summed:
        sum_shards(grads, lo, hi)
    n_seg = segments(sizes, w_off, b_off, l1, l2, pscale, lo, hi, seg[c])
    return optimizer_step(opt, params, grads, state, hyper, t, seg[c], n_seg, scale)


@jit
def run_update(opt, params, grads, state, hyper, t, sizes, w_off, b_off, l1, l2, pscale, seg,
               chunk_out):
    """Penalty, clipping and update over the whole vector, chunk after chunk; returns the
    penalty's value. ``chunk_out`` (n_chunks,) float64 is scratch."""
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


@jit(parallel=True)
def run_update_parallel(opt, params, grads, state, hyper, t, sizes, w_off, b_off, l1, l2, pscale,
                        seg, chunk_out):
    """``run_update`` with the chunks updated side by side, one thread each."""
    parts = seg.shape[0]
    clipnorm = hyper[HP_CLIPNORM]
    scale = 1.0
    if clipnorm > 0.0:
        for c in prange(parts):
            chunk_out[c] = chunk_norms(params, grads, sizes, w_off, b_off, l1, l2, pscale, seg,
                                       parts, c)
        scale = clip_scale(chunk_out.sum(), clipnorm)
    for c in prange(parts):
        chunk_out[c] = chunk_update(opt, params, grads, state, hyper, t, sizes, w_off, b_off, l1,
                                    l2, pscale, scale, clipnorm > 0.0, seg, parts, c)
    return chunk_out.sum()


@jit
def train_epoch(X, Y, labels, sw, order, batch_size, sizes, w_off, b_off, act, alpha, l1, l2,
                loss, loss_param, acc_kind, opt, hyper, state, t,
                params, grads, xb, acts, deltas, act_off, seg, scratch, stats, parallel):
    """Train for one epoch: every mini-batch of ``order``, forward, backward and update.

    Each batch is cut into S row shards (S = ``grads.shape[0]``). Each shard's gradient is
    computed on its own, then the shard gradients are summed in shard order, so the result
    depends on S but not on how many threads ran the shards.

    Parameters
    ----------
    X : float32 array of shape (n, s0)
    Y : float32 array of shape (n, k) or (0, k)
    labels : int64 array of shape (n,) or (0,)
    sw : float32 array of shape (n,) or (0,)
    order : int64 array of shape (n_rows,)
        Rows in the order they are visited this epoch (a permutation when shuffling).
        Consecutive slices of ``batch_size`` rows form the batches; the last may be smaller.
    batch_size : int
    acc_kind : int
        How accuracy is counted (``ACC_*``); ``ACC_SKIP`` skips all metric sums.
    opt : int
        Optimizer code; ``hyper``, ``state`` as in ``optim.optimizer_step``.
    t : int
        Steps taken before this epoch.
    params : float32 array of shape (P,)
        Updated in place.
    grads : float32 array of shape (S, P)
        One gradient per shard.
    xb : float32 array of shape (S, rows, s0); acts, deltas : float32 (S, A)
        Per-shard work buffers; ``rows`` = ceil(batch_size / S), layer l's block at
        ``act_off[l]``.
    seg : float64 array of shape (S, 2 L, 4)
        Scratch for the update's segments, one table per parameter chunk.
    scratch : float64 array of shape (2, S)
        Per-shard losses and per-chunk sums.
    stats : float64 array of shape (S, N_STATS)
        Per-shard sums; ``stats[0, ST_LOSS]`` and ``stats[0, ST_ROWS]`` take the loss.
    parallel : bool
        Run the shards (and the update's chunks) on Numba's thread pool.

    Returns
    -------
    status : int
        ``OK`` (-1), or the index of the batch whose loss was not finite; training stops
        there, before that batch's update.
    t : int
        Steps taken after this epoch.
    """
    n = order.shape[0]
    shard_loss = scratch[0]
    chunk_out = scratch[1]
    per_sample = loss_param[LP_PENALTY_PER_SAMPLE] != 0.0
    batch = 0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        rows = order[start:stop]
        norm = batch_norm(rows, sw, loss_param)
        if parallel:
            run_shards_parallel(X, Y, labels, sw, rows, norm, sizes, w_off, b_off, act, alpha,
                                loss, loss_param, acc_kind, params, grads, xb, acts, deltas,
                                act_off, stats, shard_loss)
        else:
            run_shards(X, Y, labels, sw, rows, norm, sizes, w_off, b_off, act, alpha, loss,
                       loss_param, acc_kind, params, grads, xb, acts, deltas, act_off, stats,
                       shard_loss)
        value = shard_loss.sum() / norm
        if not np.isfinite(value):
            return batch, t
        t += 1
        pscale = 1.0 / norm if per_sample else 1.0
        if parallel:
            value += run_update_parallel(opt, params, grads, state, hyper, t, sizes, w_off, b_off,
                                         l1, l2, pscale, seg, chunk_out)
        else:
            value += run_update(opt, params, grads, state, hyper, t, sizes, w_off, b_off, l1, l2,
                                pscale, seg, chunk_out)
        if not np.isfinite(value):
            return batch, t
        stats[0, ST_LOSS] += value * m
        stats[0, ST_ROWS] += m
        batch += 1
    return OK, t


@jit
def evaluate(X, Y, labels, sw, sizes, w_off, b_off, act, alpha, loss, loss_param, acc_kind,
             params, acts, deltas, act_off, chunk, stats):
    """Loss and metric sums over a whole data set, without updating anything.

    The data is processed in consecutive chunks of at most ``chunk`` rows (the buffers'
    row capacity). ``stats[ST_LOSS]`` receives ``sum_i w_i loss_i`` and ``stats[ST_ROWS]`` the
    normaliser's total (rows, or the weight sum); the penalty is not included.
    """
    n = X.shape[0]
    last = w_off.shape[0] - 1
    out_act = LINEAR if is_fused(act[last], loss) else act[last]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        m = stop - start
        rows = np.arange(start, stop)
        x = X[start:stop]
        forward_pass(x, sizes, w_off, b_off, act, alpha, out_act, params, acts, act_off)
        out = block(acts, act_off[last], m, sizes[last + 1])
        delta = block(deltas, act_off[last], m, sizes[last + 1])
        stats[ST_LOSS] += loss_delta(loss, act[last], alpha[last], out, Y, labels, rows, sw,
                                     loss_param, 1.0, delta)
        stats[ST_ROWS] += batch_norm(rows, sw, loss_param)
        output_stats(out, Y, labels, rows, sw, acc_kind, stats)


@jit
def predict(X, sizes, w_off, b_off, act, alpha, params, acts, act_off, chunk, out):
    """Outputs of the network for every row of ``X``, in chunks of at most ``chunk`` rows.

    X : float32 (n, s0); out : float32 (n, sL), overwritten.
    """
    n = X.shape[0]
    last = w_off.shape[0] - 1
    k = sizes[last + 1]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        x = X[start:stop]
        forward_pass(x, sizes, w_off, b_off, act, alpha, act[last], params, acts, act_off)
        result = block(acts, act_off[last], stop - start, k)
        out[start:stop] = result
