"""The update of one chunk of the parameter vector: shard sum, penalty, clipping, the rule.

The epoch loop cuts the flat parameter vector into ``parts`` nearly equal chunks, one per
thread (``network.split``); each chunk's update reads the shard gradients of its elements
only, so chunks are updated side by side without sharing a written cache line but at their
edges. The penalty's runs are cut to the chunk (``optim.segments``).

NumPy twin: ``fastbp.reference.update``.
"""

from .._jit import jit
from ..codes import SEG_C1, SEG_C2, SEG_START, SEG_STOP
from .network import split
from .optim import add_penalty, grad_sq_norm, optimizer_step, segments, sum_shards


@jit
def ordered_sum(a):
    """``a[0] + a[1] + ...`` in index order, float64 (a: 1-D): the same bits every time."""
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i]
    return total


@jit(inline="always")
def chunk_norm(params, grads, runs, pscale, seg_c, parts, c):
    """Sum the shards into ``grads[0]`` over chunk c and return the chunk's squared gradient
    norm, penalty included (for global-norm clipping).

    params : float32 (P,); grads : float32 (S, P); runs : float64 (R, N_RUN); pscale : the
    penalty's scale for this batch; seg_c : float64 (R, N_SEG) scratch.
    """
    lo, hi = split(params.shape[0], parts, c)
    sum_shards(grads, lo, hi)
    n_seg = segments(runs, pscale, lo, hi, seg_c)
    return grad_sq_norm(params, grads, seg_c, n_seg)


@jit(inline="always")
def chunk_update(opt, params, grads, state, hyper, t, runs, pscale, scale, summed, seg_c, parts,
                 c, diag, prev):
    """One optimizer step on chunk c of the parameters; returns the chunk's penalty (from the
    weights before the step).

    Parameters as ``optim.optimizer_step``; ``summed``: ``grads[0]`` already holds the shards'
    sum over the chunk (``chunk_norm`` ran); ``scale``: the global-norm clipping factor;
    ``diag`` (parts, D): the chunk's diagnostics row is ``diag[c]``.
    """
    lo, hi = split(params.shape[0], parts, c)
    n_seg = segments(runs, pscale, lo, hi, seg_c)
    return optimizer_step(opt, params, grads, state, hyper, t, seg_c, n_seg, scale, diag[c],
                          prev, summed)


@jit(inline="always")
def chunk_gradient(params, grads, runs, pscale, seg_c, parts, c):
    """The whole gradient over chunk c into ``grads[0]``: the shards' sum plus the penalty's
    gradient; returns the chunk's penalty (for the full-batch objective of L-BFGS)."""
    lo, hi = split(params.shape[0], parts, c)
    sum_shards(grads, lo, hi)
    n_seg = segments(runs, pscale, lo, hi, seg_c)
    value = 0.0
    for k in range(n_seg):
        a = int(seg_c[k, SEG_START])
        b = int(seg_c[k, SEG_STOP])
        value += add_penalty(params[a:b], grads[0, a:b], seg_c[k, SEG_C1], seg_c[k, SEG_C2])
    return value
