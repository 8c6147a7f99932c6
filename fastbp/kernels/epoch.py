"""The compiled training loop: a whole epoch of mini-batch backpropagation in one call.

Every batch is cut into S parts (S = ``scratch.shape[1]``), and the parameter vector into S
chunks. The parts are row shards (``grads`` has S rows), each computed into its own gradient
row, and the update of a chunk sums the shards in shard order; or, where ``grads`` has one
row for S > 1, blocks of each layer's units over all the batch's rows (``units``), which
write the one gradient directly. So the result depends on S and the split, never on how many
threads ran the parts.

``train_epoch`` is run by ``n_threads`` threads at once, 1 or S: the caller's (s = 0, the
leader) and, for S > 1, S - 1 threads that ``fastbp._threads`` starts for the call (the
helpers). In a parallel batch thread s computes part s, all threads meet at a barrier,
thread s updates chunk s, and all meet again; the leader keeps the books between batches
(loss, statistics, learning rate, timings) and orders each batch by posting its number in
``sync``. A batch the leader runs alone computes every part and chunk itself, in the same
order: the same bits. The leader runs alone when it was started alone, for the serial probes
of the shard scheduler (``fastbp.scheduler``), and once another fastbp call is under way in
the process (``running``): that caller already holds a core.

Words of ``sync`` (int64, zeroed by the caller, one word per 128-byte line):
``ORDER``: 0 before the first order, b + 1 to run batch b in parallel, -1 to leave;
``GEN``: bumped by the leader before a parallel batch when it has changed its copy of the
weights alone (see ``replicas``); ``ARRIVED + s``: how far thread s got (its phase count).

Numba compiles a callee once for every tuple of argument types it meets, and a literal ``0``
or ``False`` is a type of its own, so the callees here are passed typed values only
(``np.int64(0)``, ``np.bool_(False)``; ``tests/test_signatures.py`` checks it).

NumPy twin: ``fastbp.reference.epoch``.
"""

import numpy as np

from .._jit import jit
from ..codes import (
    CK_PARALLEL, CK_SERIAL, CK_TICKS, CK_UNTIMED, CK_WAY, HP_CLIPNORM, HP_LR,
    LP_PENALTY_PER_SAMPLE, NADAM, NO_STEP, OK, SC_PER_STEP, ST_LOSS, ST_PENALTY,
    ST_ROWS,
)
from .clock import choose_way, probe_batch, ticks, time_batch
from .fpmode import flush_denormals, set_fp_mode
from .network import loss_norm, shard_gradient, split
from .optim import advance_mu_product, clip_scale
from .schedules import scheduled_lr
from .shared import (
    SY_LINE, calls_under_way, load, meet, store, wait_for_all, wait_until_changed,
)
from .update import chunk_gradient, chunk_norm, chunk_update, ordered_sum
from .units import n_meetings, units_gradient
from .views import copy_to, flat, matrix

ORDER, GEN, ARRIVED = 0, SY_LINE, 2 * SY_LINE


def sync_words(shards):
    """Length of the int64 ``sync`` array of ``train_epoch`` for ``shards`` threads."""
    return (2 + shards) * SY_LINE


@jit(inline="always")
def n_phases(hyper, opt):
    """Barriers per parallel batch: after the shards, after the chunks' norms (global-norm
    clipping only), after the update."""
    return 3 if hyper[HP_CLIPNORM] > 0.0 and opt != NO_STEP else 2


@jit(inline="always")
def run_batch(s, together, k, phases, data, rows, norm, net, loss, loss_param, acc_kind, opt,
              hyper, state, t, params, aux, work, seed, sync, replicated):
    """Thread s's part of one batch (step t): shards, barrier, update, arrival.

    ``together``: all S threads run this batch (thread s takes part s and chunk s; or, when
    ``replicated``, every chunk of its own copy of the weights); else thread s (the leader)
    runs every part and chunk. ``k``: how many parallel batches this thread ran before in
    this call (its phase count is ``k * phases``: ``n_phases``, plus ``units.n_meetings``
    when the batch is split by units). ``params`` and ``state`` are the weights
    and optimizer state this thread reads and updates. ``opt`` may be ``NO_STEP``: then
    ``grads[0]`` receives the whole gradient, penalty included, and nothing is updated.

    Returns the batch's data loss ``sum_i w_i loss_i / norm`` (the same on every thread); when
    it is not finite nothing is updated. The penalty of chunk c goes to ``chunk_out[c]``.
    ``data`` is ``(X, csr, Y, labels, sw)``, ``net`` ``(ops, opf, runs)``, ``work`` ``(grads, xb,
    acts, deltas, seg, shard_loss, chunk_out, chunk_norms, stats, diag, prev)``: tuples,
    since a call of more than 30 arguments is made through ``*args`` by CPython 3.11, which
    Numba cannot inline.
    """
    X, csr, Y, labels, sw = data
    ops, opf, runs = net
    grads, xb, acts, deltas, seg, shard_loss, chunk_out, chunk_norms, stats, diag, prev = work
    n_parts, n_shards = shard_loss.shape[0], grads.shape[0]
    clipping = n_phases(hyper, opt) == 3
    phase = k * phases
    first, last = (s, s + 1) if together else (0, n_parts)
    if n_shards < n_parts:  # split by units, every thread on all the rows
        phase = units_gradient(s, together, phase, X, Y, labels, sw, rows, norm, ops, opf,
                               loss, loss_param, acc_kind, params, grads[0], xb[0], acts[0],
                               deltas[0], shard_loss, stats, sync, ARRIVED)
    else:
        for sh in range(first, last):
            lo, hi = split(rows.shape[0], n_shards, sh)
            shard_loss[sh] = shard_gradient(X, csr, Y, labels, sw, rows[lo:hi], norm, ops, opf,
                                            loss, loss_param, acc_kind, params, aux, grads[sh],
                                            xb[sh], acts[sh], deltas[sh], stats[sh], seed, t,
                                            diag[sh])
    phase = meet(sync, ARRIVED, s, n_parts, together, phase)
    value = ordered_sum(shard_loss) / norm
    if not np.isfinite(value):
        return value
    pscale = 1.0 / norm if loss_param[LP_PENALTY_PER_SAMPLE] != 0.0 else 1.0
    if together and replicated:
        first, last = 0, n_parts
    scale = 1.0
    if clipping:
        for c in range(first, last):
            chunk_norms[c] = chunk_norm(params, grads, runs, pscale, seg[c], n_parts, c)
        phase = meet(sync, ARRIVED, s, n_parts, together, phase)
        scale = clip_scale(ordered_sum(chunk_norms), hyper[HP_CLIPNORM])
    for c in range(first, last):
        if opt == NO_STEP:
            pen = chunk_gradient(params, grads, runs, pscale, seg[c], n_parts, c)
        else:
            pen = chunk_update(opt, params, grads, state, hyper, t + 1, runs, pscale, scale,
                               clipping, seg[c], n_parts, c, diag, prev)
        if s == 0 or not (together and replicated):
            chunk_out[c] = pen
    if together:
        store(sync, ARRIVED + s * SY_LINE, phase + 1)
    return value


@jit
def train_epoch(s, n_threads, X, csr, Y, labels, sw, order, batch_size, ops, opf, runs, loss,
                loss_param, acc_kind, opt, hyper, sched, state, t, params, aux, grads, xb, acts,
                deltas, seg, scratch, stats, diag, prev, seed, ways, running, probe, clock,
                sync, replicas):
    """Train for one epoch as thread s of ``n_threads``: every mini-batch of ``order``,
    forward, backward and update.

    Parameters
    ----------
    s : int
        This thread: 0 is the leader (the caller's thread), 1 .. S - 1 the helpers.
    n_threads : int
        1 (the leader alone runs every batch) or S (``grads.shape[0]``): every thread calls
        this function with the same arguments but ``s``.
    X : float32 array of shape (n, s0), or (n, 0) for sparse data
    csr : tuple (indptr int64 (n + 1,), indices int64 (nnz,), values float32 (nnz,))
        The data as CSR when it is sparse (the first layer reads it, ``kernels.sparse``);
        three empty arrays when it is dense.
    Y : float32 array of shape (n, k) or (0, k)
    labels : int64 array of shape (n,) or (0,)
    sw : float32 array of shape (n,) or (0,)
    order : int64 array of shape (n_rows,)
        Rows in the order they are visited this epoch (a permutation when shuffling).
        Consecutive slices of ``batch_size`` rows form the batches; the last may be smaller.
    ops, opf, runs
        The network (``network``) and the parameter vector's penalty runs (``optim``).
    acc_kind : int
        How accuracy is counted (``ACC_*``); ``ACC_SKIP`` skips all metric sums.
    opt : int
        Optimizer code (``hyper``, ``state`` as in ``optim.optimizer_step``); ``NO_STEP``:
        one batch's gradient, penalty included, into ``grads[0]``, nothing updated.
    sched : float64 array of shape (N_SC,)
        Learning-rate schedule; when ``sched[SC_PER_STEP]`` is set, ``hyper[HP_LR]`` is
        rewritten before every step (and left at the last step's value).
    t : int
        Steps taken before this epoch.
    params : float32 array of shape (P,); aux : float32 array (running statistics)
        Updated in place.
    grads : float32 array of shape (S, P), or (1, P)
        One gradient per row shard; one row: the batches are split by units (``units``).
    xb : float32 array of shape (S, rows, s0); acts, deltas : float32 (S, A)
        Per-shard work buffers (``rows`` = ceil(batch_size / S)); split by units, one of
        each, for all of a batch's rows, shared by the threads.
    seg : float64 array of shape (S, R, N_SEG); scratch : float64 (3, S)
        Scratch: each chunk's penalty segments; per-shard losses, per-chunk penalties and
        squared gradient norms (each thread reads all of them after a barrier, so a thread
        never overwrites one that another may still be reading).
    stats : float64 array of shape (S, N_STATS + 3 k)
        Per-shard sums; ``stats[0, ST_LOSS]``, ``[ST_ROWS]``, ``[ST_PENALTY]`` take the loss.
    diag : float64 array of shape (S, D), or (S, 0) with diagnostics off
        Per-chunk gradient and update sums (``optim.optimizer_step``), per-shard dead-unit
        flags.
    prev : float32 array of shape (P,) or (0,)
        Diagnostics scratch.
    seed : int
        Dropout's seed.
    ways : float64 array of shape (N_WAYS,)
        The way of the batches when ``n_threads`` = S, parallel or serial (the leader alone,
        the helpers waiting), and the ticks of the timed batches of each way: the leader
        adds this epoch's (``clock.time_batch``) and, with ``probe``, goes the way of the
        lower mean as soon as both ways have enough (``clock.choose_way``), so a fit that
        starts on a busy machine changes way within its first epoch. On return,
        ``ways[W_PARALLEL]`` is the last way chosen.
    running : int64 array of shape (1,)
        ``running[0]`` is the count of fastbp's compiled calls under way in the process (kept
        by ``fastbp._threads``), read before every batch: above 1, the helpers leave and the
        leader runs the rest of the epoch alone.
    probe : int
        When positive, the batch of step t runs the other way when t modulo ``probe`` is among
        its last ``CK_PROBE_RUN`` values, to time that way (modulo ``CK_PROBE_FIRST`` while
        either way has too few timed batches, ``clock.timed_enough``); 0: the way is fixed.
    clock : float64 array of shape (N_CK, B), B at least the number of batches
        Receives each batch's cycle-counter ticks (``clock[CK_TICKS]``; 0 where no counter is
        read) and how it ran (``clock[CK_WAY]``: ``CK_PARALLEL``, ``CK_SERIAL``, or
        ``CK_UNTIMED``: another call was under way, or the batch before ran the other way,
        whose cost includes the switch).
    sync : int64 array of shape (sync_words(S),), zeroed
        The threads' words (module docstring).
    replicas : float32 array of shape (S, P + state.size), or (S, 0)
        When given, each thread trains on its own copy of the weights and optimizer state in
        its row and updates all of it, each the same way (the same bits); the leader's copy
        goes back into ``params`` and ``state`` at the end. No cache line of weights passes
        between cores then, only the gradients (``bench/coherence.py``). Needs diagnostics
        and global-norm clipping off.

    Denormal floats are flushed to zero during the call, on every thread (``fpmode``).

    Returns
    -------
    status : int
        ``OK`` (-1), or the index of the batch whose loss was not finite; training stops
        there, before that batch's update (or after it, if only the penalty was not finite).
    t : int
        Steps taken after this epoch.
    parallel_batches : int
        How many batches ran on several threads.
    """
    mode = flush_denormals()
    n_params = params.shape[0]
    n_slots = state.shape[0]
    replicated = replicas.shape[1] > 0
    w = replicas[s][:n_params] if replicated else params
    w_state = matrix(replicas[s], n_params, n_slots, n_params) if replicated else state
    if replicated:
        copy_to(params, w)
        copy_to(flat(state), replicas[s][n_params:])
    shard_loss, chunk_out, chunk_norms = scratch[0], scratch[1], scratch[2]
    data = (X, csr, Y, labels, sw)
    net = (ops, opf, runs)
    work = (grads, xb, acts, deltas, seg, shard_loss, chunk_out, chunk_norms, stats, diag, prev)
    n = order.shape[0]
    n_batches = (n + batch_size - 1) // batch_size
    n_parts = scratch.shape[1]
    phases = n_phases(hyper, opt)
    if grads.shape[0] < n_parts:
        phases += n_meetings(ops.shape[0])
    per_step = sched[SC_PER_STEP] != 0.0
    leader = s == 0
    helpers = leader and n_threads > 1  # the leader's helpers are still here
    status, parallel_batches = OK, 0
    # k: parallel batches this thread ran; gen: the leader's replica generation seen / posted
    b, k, seen, gen, changed_alone, last_way = np.int64(-1), np.int64(0), np.int64(0), \
        np.int64(0), False, -1
    began, alone, together, step = ticks(), True, False, t
    while True:
        # which batch, and whether all threads run it: the leader decides, the helpers obey
        if leader:
            b += 1
            if b >= n_batches:
                break
            began = ticks()
            alone = calls_under_way(running) <= 1
            if helpers and not alone:
                store(sync, ORDER, -1)  # the helpers leave; the rest runs here
                helpers = False
            parallel, every = choose_way(ways, probe)
            together = helpers and parallel != probe_batch(every, t)
            if per_step and opt != NO_STEP:
                hyper[HP_LR] = scheduled_lr(sched, float(t))
            if together:
                if changed_alone:  # the helpers copy the leader's weights first
                    gen += 1
                    store(sync, GEN, gen)
                    changed_alone = False
                store(sync, ORDER, b + 1)
            step = t
        else:
            seen = wait_until_changed(sync, ORDER, seen)
            if seen < 0:
                break
            b = seen - 1
            together = True
            step = t + b  # every batch before this one took a step
            if replicated and load(sync, GEN) != gen:  # the leader trained alone meanwhile
                gen = load(sync, GEN)
                copy_to(replicas[0], replicas[s])
        start = b * batch_size
        stop = min(start + batch_size, n)
        rows = order[start:stop]
        norm = loss_norm(rows, sw, loss_param)
        value = run_batch(s, together, k, phases, data, rows, norm, net, loss, loss_param,
                          acc_kind, opt, hyper, w_state, step, w, aux, work, seed, sync,
                          replicated)
        if together:
            k += 1
        if not leader:
            if not np.isfinite(value):
                break
            continue
        # the leader's books
        if together:
            parallel_batches += 1
            if np.isfinite(value):  # wait for every chunk's update
                wait_for_all(sync, ARRIVED, n_parts, k * phases)
        else:
            changed_alone = True
        if not np.isfinite(value):
            status = b
            break
        if opt != NO_STEP:
            t += 1
            if opt == NADAM:  # every thread's update of step t read the product to t - 1
                advance_mu_product(hyper, t)
        pen = ordered_sum(chunk_out)
        value += pen
        way = 1 if together else 0
        timed = alone and way == last_way
        spent = ticks() - began
        if timed and helpers:
            time_batch(ways, together, float(spent))
        if b < clock.shape[1]:
            clock[CK_TICKS, b] = spent
            clock[CK_WAY, b] = CK_UNTIMED if not timed else CK_PARALLEL if together else CK_SERIAL
        last_way = way
        if not np.isfinite(value):
            status = b
            break
        m = stop - start
        stats[0, ST_PENALTY] += pen * m
        stats[0, ST_LOSS] += value * m
        stats[0, ST_ROWS] += m
    if helpers:
        store(sync, ORDER, -1)
    if leader and replicated:
        copy_to(w, params)
        copy_to(replicas[0][n_params:], flat(state))
    set_fp_mode(mode)
    return status, t, parallel_batches
