"""The compiled training loop: a whole epoch of mini-batch backpropagation in one call.

The network arrives as two small tables (see ``fastbp.layout``), one row per operation:

* ``ops`` int64 (K, N_OC): kind (dense, batch norm, dropout), input and output width,
  offset of its parameters in the flat float32 vector ``params``, activation, offset of its
  running statistics in ``aux``, offset of its blocks in the work buffers, ...;
* ``opf`` float64 (K, N_OF): activation parameter, dropout rate, batch-norm momentum and eps;

and the parameter vector's penalty runs ``runs`` float64 (R, N_RUN). Work buffers are flat
float32 vectors allocated once per fit: op k's output (and dL/d output) is the
(rows, width) block at ``ops[k, OC_BUF]`` of ``acts`` (and ``deltas``).

Every batch is cut into S row shards (S = ``grads.shape[0]``) computed on their own, each into
its own gradient row; the update sums them in shard order, so the result depends on S but
not on how many threads ran the shards. Training runs with denormal floats flushed to zero
(``fpmode``): they slow the CPU down and change nothing that float32 can show.

Numba compiles a callee once for every tuple of argument types it meets, and a literal ``0`` or
``False`` is a type of its own, as is a variable's type before type inference has seen all its
assignments, and ``prange``'s index (int64 in the function, uint64 in its parallel body). So
the big callees here are passed typed values only: ``np.int64(0)``, ``np.bool_(False)``,
``np.int64(i)`` for a ``prange`` index. With literals, ``region_batch`` (the whole batch) was
compiled six times, ``run_batches_parallel`` twice: a cold start took 106 s, not 67.

NumPy twin: ``fastbp.reference.train``.
"""

import numpy as np
from numba import prange

from .._jit import jit
from ..codes import (
    ACC_SKIP, CK_PARALLEL, CK_PROBE_RUN, CK_SERIAL, CK_TICKS, CK_UNTIMED, CK_WAY, HP_CLIPNORM,
    HP_LR, LINEAR, LP_NORM_BY_WEIGHT, LP_PENALTY_PER_SAMPLE, OC_ACT, OC_ALIVE, OC_AUX, OC_BUF,
    OC_IN, OC_KIND, OC_OUT, OC_PARAM, OC_SCRATCH, OC_XHAT, OF_ALPHA, OF_EPS, OF_MOMENTUM,
    OF_RATE, OK, OP_BATCHNORM, OP_DENSE, OP_DROPOUT, SC_PER_STEP, ST_LOSS, ST_PENALTY, ST_ROWS,
)
from .activations import act_backward
from .batchnorm import batchnorm_backward, batchnorm_infer, batchnorm_train
from .clock import ticks
from .dense import dense_backward, dense_forward, dense_grad
from .dropout import dropout_mask_apply
from .fpmode import FTZ_DAZ, flush_denormals, fp_mode, set_fp_mode
from .losses import is_fused, loss_delta, output_stats
from .optim import clip_scale, grad_sq_norm, optimizer_step, penalty, segments, sum_shards
from .schedules import scheduled_lr
from .shared import calls_under_way, compare_and_swap, load, store


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
    """The input of op k: the batch itself for the first op, else the previous op's output."""
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
def forward_pass(x, rows, ops, opf, out_act, params, aux, acts, training, seed, t, alive):
    """Forward pass through every op.

    Parameters
    ----------
    x : float32 array of shape (m, s0)
    rows : int64 array of shape (m,)
        Row indices of the batch in the data (dropout's masks depend on them).
    out_act : int
        Activation code used for the last op (LINEAR when a fused loss applies its own).
    aux : float32 array
        Batch-norm running statistics; updated when ``training``.
    training : bool
        Dropout active and batch norm on batch statistics.
    seed, t : int
        Dropout's seed and the training step.
    alive : float64 array
        Diagnostics row: dense ReLU ops mark their units with a positive output at
        ``ops[k, OC_ALIVE]``; shape (0,) when diagnostics are off.
    """
    m = x.shape[0]
    n_ops = ops.shape[0]
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
            dense_forward(a_in, W, b, code, opf[k, OF_ALPHA], a_out)
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
                a_out[:] = a_in


@jit(inline="always")
def scratch(buf, offset):
    """The workspace at ``offset`` of a work buffer, to its end (empty for offset -1)."""
    return buf[offset:] if offset >= 0 else buf[:0]


@jit
def backward_pass(x, rows, ops, opf, params, grads, acts, deltas, seed, t):
    """Backward pass from the last op's delta (dL/dz, set by the loss) to the first op.

    Each op finds dL/d(its output) in its block of ``deltas``, applies its activation's
    derivative there (the last op's is applied by the loss), writes its parameters' gradient
    into ``grads`` (P,) and dL/d(its input) into the previous op's block.
    """
    m = x.shape[0]
    n_ops = ops.shape[0]
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
            dense_grad(a_in, g, block(grads, p, n_in, n_out),
                       grads[p + n_in * n_out:p + n_in * n_out + n_out])
            if k > 0:
                dense_backward(g, W, delta_in, scratch(deltas, ops[k, OC_SCRATCH]))
        elif kind == OP_BATCHNORM:
            h = ops[k, OC_XHAT]
            batchnorm_backward(g, block(acts, h + 2 * n_out, m, n_out), acts[h:h + n_out],
                               params[p:p + n_out], grads[p:p + n_out],
                               grads[p + n_out:p + 2 * n_out], delta_in, k > 0)
        else:  # dropout: the same mask, applied to the gradient
            if opf[k, OF_RATE] > 0.0:
                dropout_mask_apply(g, rows, opf[k, OF_RATE], seed, t, k, delta_in)
            else:
                delta_in[:] = g


@jit
def forward_backward(x, Y, labels, rows, sw, norm, ops, opf, loss, loss_param, params, aux,
                     grad, acts, deltas, seed, t, alive):
    """Forward pass, loss and backward pass of one batch in training mode.

    ``grad`` (P,) is overwritten with the gradient of ``sum_i w_i loss_i / norm`` (no
    penalty). Returns ``sum_i w_i loss_i``.
    """
    m = x.shape[0]
    last = ops.shape[0] - 1
    out_act = LINEAR if is_fused(ops[last, OC_ACT], loss) else ops[last, OC_ACT]
    forward_pass(x, rows, ops, opf, out_act, params, aux, acts, np.bool_(True), seed, t,
                 alive)
    k_out = ops[last, OC_OUT]
    out = block(acts, ops[last, OC_BUF], m, k_out)
    delta = block(deltas, ops[last, OC_BUF], m, k_out)
    data = loss_delta(loss, ops[last, OC_ACT], opf[last, OF_ALPHA], out, Y, labels, rows, sw,
                      loss_param, norm, delta)
    backward_pass(x, rows, ops, opf, params, grad, acts, deltas, seed, t)
    return data


@jit
def batch_objective(x, Y, labels, rows, sw, ops, opf, runs, loss, loss_param, params, aux,
                    grads, acts, deltas, seed, t):
    """Loss of one batch and its gradient with respect to every parameter (training mode).

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
    mode = flush_denormals()
    norm = loss_norm(rows, sw, loss_param)
    data = forward_backward(x, Y, labels, rows, sw, norm, ops, opf, loss, loss_param, params,
                            aux, grads, acts, deltas, seed, t, np.zeros(0))
    scale = 1.0 / norm if loss_param[LP_PENALTY_PER_SAMPLE] != 0.0 else 1.0
    value = data / norm + penalty(params, grads, runs, scale)
    set_fp_mode(mode)
    return value


@jit
def shard_objective(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind, params,
                    aux, grad, xb, acts, deltas, stats, seed, t, alive):
    """Gather, forward, loss, backward for one shard of a batch.

    ``grad`` (P,) is overwritten with this shard's part of the batch gradient (zeros when the
    shard is empty); ``stats`` receives the shard's metric sums unless ``acc_kind`` is
    ``ACC_SKIP``. Returns ``sum_i w_i loss_i`` over the shard's rows.
    """
    m = rows.shape[0]
    if m == 0:
        grad[:] = 0.0
        return 0.0
    x = xb[:m]
    gather_rows(X, rows, x)
    data = forward_backward(x, Y, labels, rows, sw, norm, ops, opf, loss, loss_param, params,
                            aux, grad, acts, deltas, seed, t, alive)
    if acc_kind != ACC_SKIP:
        last = ops.shape[0] - 1
        out = block(acts, ops[last, OC_BUF], m, ops[last, OC_OUT])
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
def run_shards(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind, params, aux,
               grads, xb, acts, deltas, stats, seed, t, diag, shard_loss):
    """Every shard of a batch, one after the other (see ``run_shards_parallel``)."""
    n_shards = grads.shape[0]
    for s in range(n_shards):
        lo, hi = split(rows.shape[0], n_shards, s)
        shard_loss[s] = shard_objective(X, Y, labels, sw, rows[lo:hi], norm, ops, opf, loss,
                                        loss_param, acc_kind, params, aux, grads[s], xb[s],
                                        acts[s], deltas[s], stats[s], seed, t, diag[s])


@jit(parallel=True)
def run_shards_parallel(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind,
                        params, aux, grads, xb, acts, deltas, stats, seed, t, diag, shard_loss):
    """Every shard of a batch, one thread each: shard s takes the s-th run of ``rows`` and
    writes only ``grads[s]``, ``xb[s]``, ``acts[s]``, ``deltas[s]``, ``stats[s]``, ``diag[s]``."""
    n_shards = grads.shape[0]
    for s in prange(n_shards):
        mode = flush_denormals()  # this thread's mode (see fpmode)
        lo, hi = split(rows.shape[0], n_shards, s)
        shard_loss[s] = shard_objective(X, Y, labels, sw, rows[lo:hi], norm, ops, opf, loss,
                                        loss_param, acc_kind, params, aux, grads[s], xb[s],
                                        acts[s], deltas[s], stats[s], seed, t, diag[s])
        set_fp_mode(mode)


@jit
def ordered_sum(a):
    """``a[0] + a[1] + ...`` in index order, float64 (a: 1-D).

    Used in place of ``a.sum()``: inside a ``parallel=True`` function Numba turns ``.sum()``
    into a parallel reduction, which allocates on every call and adds in an order that
    depends on the thread count."""
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i]
    return total


@jit
def chunk_norms(params, grads, runs, pscale, seg, parts, c):
    """Sum the shards over chunk c of the parameter vector and return the chunk's squared
    gradient norm (penalty included)."""
    lo, hi = split(params.shape[0], parts, c)
    sum_shards(grads, lo, hi)
    n_seg = segments(runs, pscale, lo, hi, seg[c])
    return grad_sq_norm(params, grads, seg[c], n_seg)


@jit
def chunk_update(opt, params, grads, state, hyper, t, runs, pscale, scale, summed, seg_c, parts,
                 c, diag, prev):
    """Update chunk c (summing the shards unless already ``summed``); returns its penalty.
    ``seg_c`` (R, N_SEG) float64 is scratch for the chunk's segments."""
    lo, hi = split(params.shape[0], parts, c)
    n_seg = segments(runs, pscale, lo, hi, seg_c)
    return optimizer_step(opt, params, grads, state, hyper, t, seg_c, n_seg, scale,
                          diag[c], prev, summed)


@jit
def run_update(opt, params, grads, state, hyper, t, runs, pscale, seg, chunk_out, diag, prev):
    """Penalty, clipping and update over the whole vector, chunk after chunk; returns the
    penalty's value. ``chunk_out`` (n_chunks,) float64 is scratch."""
    parts = seg.shape[0]
    clipnorm = hyper[HP_CLIPNORM]
    scale = 1.0
    if clipnorm > 0.0:
        for c in range(parts):
            chunk_out[c] = chunk_norms(params, grads, runs, pscale, seg, parts, c)
        scale = clip_scale(ordered_sum(chunk_out), clipnorm)
    for c in range(parts):
        chunk_out[c] = chunk_update(opt, params, grads, state, hyper, t, runs, pscale, scale,
                                    clipnorm > 0.0, seg[c], parts, c, diag, prev)
    return ordered_sum(chunk_out)


@jit(parallel=True)
def run_update_parallel(opt, params, grads, state, hyper, t, runs, pscale, seg, chunk_out, diag,
                        prev):
    """``run_update`` with the chunks updated side by side, one thread each."""
    parts = seg.shape[0]
    clipnorm = hyper[HP_CLIPNORM]
    scale = 1.0
    if clipnorm > 0.0:
        for i in prange(parts):
            mode = flush_denormals()
            c = np.int64(i)  # one type for the index (see the module's docstring)
            chunk_out[c] = chunk_norms(params, grads, runs, pscale, seg, parts, c)
            set_fp_mode(mode)
        scale = clip_scale(ordered_sum(chunk_out), clipnorm)
    for i in prange(parts):
        mode = flush_denormals()
        c = np.int64(i)
        chunk_out[c] = chunk_update(opt, params, grads, state, hyper, t, runs, pscale, scale,
                                    clipnorm > 0.0, seg[c], parts, c, diag, prev)
        set_fp_mode(mode)
    return ordered_sum(chunk_out)


# --- a run of parallel batches in one region ----------------------------------------------
# Launching a parallel region costs about 1.2 us, and a batch of ``small`` or ``reg`` took
# two (the shards, then the update's chunks): 10-20% of a batch. ``run_batches_parallel``
# runs a whole run of batches in one region instead, thread s computing shard s and then
# chunk s of the update of every batch, the threads meeting at a spin barrier in between:
# the same shards and chunks, so the same bits. The barrier's words live in ``sync`` (int64),
# each on its own 128-byte line:
SY_LINE = 16
# word 0: the leader's order (0 none yet, b + 1: run batch b, -1: leave); word 1 + s: how
# far thread s got (2 k + 1 after its shard of the region's k-th batch, 2 k + 2 after its
# chunk); word S + h (h = 1 .. S - 1): whether helper h takes part (JOIN_*); words 2 S ..
# 2 S + 2: the outcome (``run_batches_parallel``).
JOIN_NONE, JOIN_IN, JOIN_STARTED, JOIN_GONE = 0, 1, 2, 3
# A barrier needs every thread of the region running at once, which no threading layer
# promises (TBB may run two iterations one after the other on one thread; OpenMP may hand
# out fewer threads). So the threads first agree, by compare-and-swap, on whether every
# helper is in; a thread that waits longer than this many cycle-counter ticks (a few
# milliseconds) for the others gives up, and the batches run the usual way.
JOIN_TICKS = 10_000_000


def sync_words(shards):
    """Length of the int64 ``sync`` array of ``run_batches_parallel`` for ``shards``
    threads."""
    return (2 * shards + 1) * SY_LINE


@jit
def lead_join(sync, n_threads):
    """The leader's side of the agreement: True when every helper is in (each then waits for
    the leader's orders); False when one never came in time (it will leave on arrival)."""
    everyone = True
    for h in range(1, n_threads):
        word = (n_threads + h) * SY_LINE
        deadline = ticks() + JOIN_TICKS
        while True:
            state = load(sync, word)
            if state == JOIN_IN:
                if compare_and_swap(sync, word, JOIN_IN, JOIN_STARTED):
                    break
            elif state == JOIN_GONE:
                everyone = False
                break
            elif ticks() > deadline and compare_and_swap(sync, word, JOIN_NONE, JOIN_GONE):
                everyone = False
                break
    return everyone


@jit
def help_join(sync, n_threads, h):
    """Helper h's side: True when the leader counted it in; False when it came too late or
    the leader did not answer in time (then it leaves)."""
    word = (n_threads + h) * SY_LINE
    if not compare_and_swap(sync, word, JOIN_NONE, JOIN_IN):
        return False
    deadline = ticks() + JOIN_TICKS
    while True:
        if load(sync, word) == JOIN_STARTED:
            return True
        if ticks() > deadline and compare_and_swap(sync, word, JOIN_IN, JOIN_GONE):
            return False


@jit
def wait_for_all(sync, n_threads, step):
    """Spin until every thread's word has reached ``step``."""
    for o in range(n_threads):
        while load(sync, (1 + o) * SY_LINE) < step:
            pass


@jit
def region_batch(s, X, Y, labels, sw, order, batch_size, b, k, ops, opf, runs, loss,
                 loss_param, acc_kind, opt, hyper, state, t, params, aux, grads, xb, acts,
                 deltas, seg, shard_loss, chunk_out, stats, diag, prev, seed, sync, replicated):
    """Thread s's part of batch b (the region's k-th, step t): its shard, the barrier, its
    part of the update, its arrival. Returns the batch's data loss (the same on every
    thread); when it is not finite, the update is skipped and nothing more is stored.
    ``params`` and ``state`` are the weights and optimizer state this thread reads: the
    shared ones, of which it updates chunk s; or, when ``replicated``, its own copies, which
    it updates whole, chunk after chunk as the others do (the leader's penalties go to
    ``chunk_out``)."""
    n_threads = grads.shape[0]
    start = b * batch_size
    rows = order[start:min(start + batch_size, order.shape[0])]
    norm = loss_norm(rows, sw, loss_param)
    lo, hi = split(rows.shape[0], n_threads, s)
    shard_loss[s] = shard_objective(X, Y, labels, sw, rows[lo:hi], norm, ops, opf, loss,
                                    loss_param, acc_kind, params, aux, grads[s], xb[s], acts[s],
                                    deltas[s], stats[s], seed, t, diag[s])
    store(sync, (1 + s) * SY_LINE, 2 * k + 1)
    wait_for_all(sync, n_threads, 2 * k + 1)
    value = ordered_sum(shard_loss) / norm
    if not np.isfinite(value):
        return value
    pscale = 1.0 / norm if loss_param[LP_PENALTY_PER_SAMPLE] != 0.0 else 1.0
    c0, c1 = (0, n_threads) if replicated else (s, s + 1)
    for c in range(c0, c1):
        pen = chunk_update(opt, params, grads, state, hyper, t + 1, runs, pscale, 1.0,
                           np.bool_(False), seg[s], n_threads, c, diag, prev)
        if s == 0 or not replicated:
            chunk_out[c] = pen
    store(sync, (1 + s) * SY_LINE, 2 * k + 2)
    return value


@jit(parallel=True)
def run_batches_parallel(X, Y, labels, sw, order, batch_size, first, stop, ops, opf, runs,
                         loss, loss_param, acc_kind, opt, hyper, schedule, state, t, params, aux,
                         grads, xb, acts, deltas, seg, shard_loss, chunk_out, stats, diag, prev,
                         seed, running, clock, sync, replicas):
    """Batches ``first`` .. ``stop - 1`` of the epoch in one parallel region, one thread per
    shard; the leader (thread 0) leaves earlier when another fastbp call starts. Needs the
    update without global-norm clipping and ``sync`` (``sync_words(S)``) zeroed; leaves in
    ``sync[2 S SY_LINE:][:3]`` the status (``OK`` or the batch whose loss was not finite), the
    first batch not run and the steps taken after. That batch is ``first`` when the helpers
    did not come in (``JOIN_TICKS``).
    Bookkeeping as in ``train_epoch``: the leader times each batch into ``clock`` (the first
    untimed: it pays for the launch) and adds the loss and penalty into ``stats[0]``.
    ``replicas`` float32 (S, P + state.size), or (S, 0): when given, each thread first copies
    the weights and optimizer state into its row and trains on that copy alone, updating all
    of it as every other thread does (the same bits); the leader copies its row back at the
    end. No cache line of weights then passes between cores, only the gradients
    (``bench/coherence.py``). Needs diagnostics off (each thread would add them up).
    (``schedule`` is ``train_epoch``'s ``sched``: Numba's parallel lowering keeps that name
    for itself.)"""
    n_threads = grads.shape[0]
    per_step = schedule[SC_PER_STEP] != 0.0
    result = sync[2 * n_threads * SY_LINE:]
    n_params = params.shape[0]
    replicated = replicas.shape[1] > 0
    for i in prange(n_threads):
        mode = flush_denormals()
        s = np.int64(i)
        w = replicas[s][:n_params] if replicated else params
        w_state = replicas[s][n_params:].reshape(state.shape) if replicated else state
        if s == 0:
            result[0], result[1], result[2] = OK, first, t
            if not lead_join(sync, n_threads):
                store(sync, 0, -1)
            else:
                if replicated:
                    w[:] = params
                    w_state[:] = state
                b, k, step = first, np.int64(0), t
                while True:
                    began = ticks()
                    if per_step:
                        hyper[HP_LR] = scheduled_lr(schedule, float(step))
                    store(sync, 0, b + 1)
                    value = region_batch(s, X, Y, labels, sw, order, batch_size, b, k, ops, opf,
                                         runs, loss, loss_param, acc_kind, opt, hyper, w_state,
                                         step, w, aux, grads, xb, acts, deltas, seg,
                                         shard_loss, chunk_out, stats, diag, prev, seed, sync,
                                         replicated)
                    if not np.isfinite(value):
                        result[0] = b
                        break
                    step += 1
                    wait_for_all(sync, n_threads, 2 * k + 2)
                    pen = ordered_sum(chunk_out)
                    if b < clock.shape[1]:
                        clock[CK_TICKS, b] = ticks() - began
                        clock[CK_WAY, b] = CK_UNTIMED if k == 0 else CK_PARALLEL
                    value += pen
                    m = min(batch_size, order.shape[0] - b * batch_size)
                    b += 1
                    k += 1
                    if not np.isfinite(value):
                        result[0] = b - 1
                        break
                    stats[0, ST_PENALTY] += pen * m
                    stats[0, ST_LOSS] += value * m
                    stats[0, ST_ROWS] += m
                    if b >= stop or calls_under_way(running) > 1:
                        break
                store(sync, 0, -1)
                result[1], result[2] = b, step
                if replicated:  # every thread's last update is done (or was skipped)
                    params[:] = w
                    state[:] = w_state
        elif help_join(sync, n_threads, s):
            if replicated:
                w[:] = params
                w_state[:] = state
            seen, k = np.int64(0), np.int64(0)
            while True:
                order_now = load(sync, 0)
                while order_now == seen:
                    order_now = load(sync, 0)
                if order_now < 0:
                    break
                seen = order_now
                b = order_now - 1
                value = region_batch(s, X, Y, labels, sw, order, batch_size, b, k, ops, opf,
                                     runs, loss, loss_param, acc_kind, opt, hyper, w_state,
                                     t + b - first, w, aux, grads, xb, acts, deltas, seg,
                                     shard_loss, chunk_out, stats, diag, prev, seed, sync,
                                     replicated)
                if not np.isfinite(value):
                    break
                k += 1
        set_fp_mode(mode)


@jit(inline="always")
def run_end(parallel, probe, t, b, n_batches):
    """The first batch after b that runs the other way than b (or ``n_batches``): step
    ``t + j - b`` of batch j runs the other way when it falls among the last
    ``CK_PROBE_RUN`` of every ``probe``."""
    way = parallel != (probe > 0 and t % probe >= probe - CK_PROBE_RUN)
    j = b + 1
    while j < n_batches:
        step = t + j - b
        if (parallel != (probe > 0 and step % probe >= probe - CK_PROBE_RUN)) != way:
            break
        j += 1
    return j


@jit
def train_epoch(X, Y, labels, sw, order, batch_size, ops, opf, runs, loss, loss_param, acc_kind,
                opt, hyper, sched, state, t, params, aux, grads, xb, acts, deltas, seg, scratch,
                stats, diag, prev, seed, parallel, running, probe, clock, sync, replicas):
    """Train for one epoch: every mini-batch of ``order``, forward, backward and update.

    Parameters
    ----------
    X : float32 array of shape (n, s0)
    Y : float32 array of shape (n, k) or (0, k)
    labels : int64 array of shape (n,) or (0,)
    sw : float32 array of shape (n,) or (0,)
    order : int64 array of shape (n_rows,)
        Rows in the order they are visited this epoch (a permutation when shuffling).
        Consecutive slices of ``batch_size`` rows form the batches; the last may be smaller.
    ops, opf, runs
        The network (module docstring).
    acc_kind : int
        How accuracy is counted (``ACC_*``); ``ACC_SKIP`` skips all metric sums.
    opt : int
        Optimizer code; ``hyper``, ``state`` as in ``optim.optimizer_step``.
    sched : float64 array of shape (N_SC,)
        Learning-rate schedule; when ``sched[SC_PER_STEP]`` is set, ``hyper[HP_LR]`` is
        rewritten before every step (and left at the last step's value).
    t : int
        Steps taken before this epoch.
    params : float32 array of shape (P,); aux : float32 array (running statistics)
        Updated in place.
    grads : float32 array of shape (S, P)
        One gradient per shard.
    xb : float32 array of shape (S, rows, s0); acts, deltas : float32 (S, A)
        Per-shard work buffers (``rows`` = ceil(batch_size / S)).
    seg : float64 array of shape (S, R, N_SEG); scratch : float64 (2, S)
        Scratch: the update's segments per parameter chunk; per-shard losses, per-chunk sums.
    stats : float64 array of shape (S, N_STATS + 3 k)
        Per-shard sums; ``stats[0, ST_LOSS]`` and ``stats[0, ST_ROWS]`` take the loss.
    diag : float64 array of shape (S, D), or (S, 0) with diagnostics off
        Per-run gradient and update sums (``optim.optimizer_step``) and dead-unit flags.
    prev : float32 array of shape (P,) or (0,)
        Diagnostics scratch.
    seed : int
        Dropout's seed.
    parallel : bool
        Run the shards (and the update's chunks) on Numba's thread pool ...
    running : int64 array of shape (1,)
        ... for every batch that starts while ``running[0]``, the count of fastbp's compiled
        calls under way in the process (kept by ``fastbp._threads``), is at most 1. When
        another fit or predict starts in another thread, the next batches run serially: that
        caller already holds a core. Both ways compute the same bits.
    probe : int
        When positive, the step counter modulo ``probe`` being among its last
        ``CK_PROBE_RUN`` values, the batch runs the other way (serially if ``parallel``, else
        on the pool when alone), to time that way: a few batches in a row, counted in steps so
        that short epochs take their turn too.
    clock : float64 array of shape (N_CK, B), B at least the number of batches
        Receives each batch's cycle-counter ticks (``clock[CK_TICKS]``; 0 where no counter
        is read, see ``clock``) and how it ran (``clock[CK_WAY]``: ``CK_PARALLEL``,
        ``CK_SERIAL``, or ``CK_UNTIMED``: another call was under way, or the batch before ran
        the other way, whose cost includes the switch, e.g. waking the pool's threads).
    sync : int64 array of shape (sync_words(S),), or (0,)
        When given (and without global-norm clipping), each run of parallel batches goes
        through one parallel region (``run_batches_parallel``) instead of two launches per
        batch; the caller vouches that S threads can run at once. Same bits either way.
    replicas : float32 array of shape (S, P + state.size), or (S, 0)
        In the region, a private copy of the weights and optimizer state per thread
        (``run_batches_parallel``); pays where the parameters are many for the rows of a
        shard. Same bits either way. Diagnostics must be off.

    Denormal floats are flushed to zero during the call, on every thread (``fpmode``).

    Returns
    -------
    status : int
        ``OK`` (-1), or the index of the batch whose loss was not finite; training stops
        there, before that batch's update.
    t : int
        Steps taken after this epoch.
    parallel_batches : int
        How many batches ran on the thread pool.
    """
    # Denormals are flushed (fpmode): in a parallel batch, inside each loop body on whichever
    # thread runs it; in a serial batch, here for the whole batch. Never around a parallel
    # launch: threads the pool starts then would inherit the mode and keep it.
    mode = fp_mode()
    n = order.shape[0]
    shard_loss = scratch[0]
    chunk_out = scratch[1]
    per_sample = loss_param[LP_PENALTY_PER_SAMPLE] != 0.0
    per_step = sched[SC_PER_STEP] != 0.0
    batch = np.int64(0)
    parallel_batches = 0
    last = -1  # the way the batch before ran: 1 parallel, 0 serial, -1 none
    n_batches = (n + batch_size - 1) // batch_size
    region = sync.shape[0] > 0 and hyper[HP_CLIPNORM] <= 0.0
    outcome = 2 * grads.shape[0] * SY_LINE
    while batch < n_batches:
        start = batch * batch_size
        stop = min(start + batch_size, n)
        m = stop - start
        rows = order[start:stop]
        norm = loss_norm(rows, sw, loss_param)
        alone = calls_under_way(running) <= 1
        other = probe > 0 and t % probe >= probe - CK_PROBE_RUN
        par = (parallel != other) and alone
        if par and region:
            sync[:] = 0
            run_batches_parallel(X, Y, labels, sw, order, batch_size, batch,
                                 run_end(parallel, probe, t, batch, n_batches), ops, opf, runs,
                                 loss, loss_param, acc_kind, opt, hyper, sched, state, t,
                                 params, aux, grads, xb, acts, deltas, seg, shard_loss,
                                 chunk_out, stats, diag, prev, seed, running, clock, sync,
                                 replicas)
            status, after, t = sync[outcome], sync[outcome + 1], sync[outcome + 2]
            if status == OK and after == batch:  # the helpers did not come: the usual way
                region = False
                continue
            parallel_batches += after - batch + (1 if status == after else 0)
            if status != OK:
                return status, t, parallel_batches
            batch = after
            last = 1
            continue
        began = ticks()
        if par:
            parallel_batches += 1
            run_shards_parallel(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param,
                                acc_kind, params, aux, grads, xb, acts, deltas, stats, seed, t,
                                diag, shard_loss)
        else:
            set_fp_mode(mode | FTZ_DAZ)
            run_shards(X, Y, labels, sw, rows, norm, ops, opf, loss, loss_param, acc_kind,
                       params, aux, grads, xb, acts, deltas, stats, seed, t, diag, shard_loss)
        value = ordered_sum(shard_loss) / norm
        if not np.isfinite(value):
            set_fp_mode(mode)
            return batch, t, parallel_batches
        if per_step:
            hyper[HP_LR] = scheduled_lr(sched, float(t))
        t += 1
        pscale = 1.0 / norm if per_sample else 1.0
        if par:
            pen = run_update_parallel(opt, params, grads, state, hyper, t, runs, pscale, seg,
                                      chunk_out, diag, prev)
        else:
            pen = run_update(opt, params, grads, state, hyper, t, runs, pscale, seg, chunk_out,
                             diag, prev)
        set_fp_mode(mode)
        way = 1 if par else 0
        if batch < clock.shape[1]:
            clock[CK_TICKS, batch] = ticks() - began
            timed = alone and way == last
            clock[CK_WAY, batch] = CK_UNTIMED if not timed else CK_PARALLEL if par else CK_SERIAL
        last = way
        value += pen
        if not np.isfinite(value):
            return batch, t, parallel_batches
        stats[0, ST_PENALTY] += pen * m
        stats[0, ST_LOSS] += value * m
        stats[0, ST_ROWS] += m
        batch += 1
    return OK, t, parallel_batches


@jit
def evaluate(X, Y, labels, sw, ops, opf, loss, loss_param, acc_kind, params, aux, acts, deltas,
             chunk, stats):
    """Loss and metric sums over a whole data set (inference mode), without updating anything.

    The data is processed in consecutive chunks of at most ``chunk`` rows (the buffers' row
    capacity). ``stats[ST_LOSS]`` receives ``sum_i w_i loss_i`` and ``stats[ST_ROWS]`` the
    normaliser's total (rows, or the weight sum); the penalty is not included.
    """
    n = X.shape[0]
    last = ops.shape[0] - 1
    k_out = ops[last, OC_OUT]
    out_act = LINEAR if is_fused(ops[last, OC_ACT], loss) else ops[last, OC_ACT]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        m = stop - start
        rows = np.arange(start, stop)
        x = X[start:stop]
        forward_pass(x, rows, ops, opf, out_act, params, aux, acts, np.bool_(False), np.int64(0),
                     np.int64(0), np.zeros(0))
        out = block(acts, ops[last, OC_BUF], m, k_out)
        delta = block(deltas, ops[last, OC_BUF], m, k_out)
        stats[ST_LOSS] += loss_delta(loss, ops[last, OC_ACT], opf[last, OF_ALPHA], out, Y,
                                     labels, rows, sw, loss_param, 1.0, delta)
        stats[ST_ROWS] += loss_norm(rows, sw, loss_param)
        output_stats(out, Y, labels, rows, sw, acc_kind, stats)


@jit
def predict_rows(X, ops, opf, params, aux, acts, chunk, out, lo, hi):
    """Outputs for rows ``lo`` to ``hi`` of ``X`` into ``out``, ``chunk`` rows at a time, using
    the one work buffer ``acts``."""
    last = ops.shape[0] - 1
    k_out = ops[last, OC_OUT]
    rows = np.zeros(0, np.int64)
    for start in range(lo, hi, chunk):
        stop = min(start + chunk, hi)
        forward_pass(X[start:stop], rows, ops, opf, ops[last, OC_ACT], params, aux, acts,
                     np.bool_(False), np.int64(0), np.int64(0), np.zeros(0))
        out[start:stop] = block(acts, ops[last, OC_BUF], stop - start, k_out)


@jit
def predict(X, ops, opf, params, aux, acts, chunk, out):
    """Outputs of the network for every row of ``X`` (inference mode).

    The rows are cut into ``T = acts.shape[0]`` runs, each predicted ``chunk`` rows at a time
    in its own buffer ``acts[t]`` (the products by BLAS sgemm, so the last bits of a row may
    depend on T and on the chunking).
    X : float32 (n, s0); acts : float32 (T, A); out : float32 (n, k), overwritten.
    """
    parts = acts.shape[0]
    for t in range(parts):
        lo, hi = split(X.shape[0], parts, t)
        predict_rows(X, ops, opf, params, aux, acts[t], chunk, out, lo, hi)


@jit(parallel=True)
def predict_parallel(X, ops, opf, params, aux, acts, chunk, out):
    """``predict`` with the T runs of rows on T threads."""
    parts = acts.shape[0]
    for t in prange(parts):
        lo, hi = split(X.shape[0], parts, t)
        predict_rows(X, ops, opf, params, aux, acts[t], chunk, out, lo, hi)
