"""The update of one chunk of the parameter vector in plain NumPy: the oracle for
``fastbp.kernels.update``."""

from ..codes import SEG_C1, SEG_C2, SEG_START, SEG_STOP
from .network import split
from .optim import add_penalty, grad_sq_norm, optimizer_step, segments, sum_shards


def ordered_sum(a):
    """``a[0] + a[1] + ...`` in index order, as a float."""
    total = 0.0
    for value in a:
        total += float(value)
    return total


def chunk_norm(params, grads, runs, pscale, seg_c, parts, c):
    """Sum the shards into ``grads[0]`` over chunk c; return its squared gradient norm
    (penalty included)."""
    lo, hi = split(len(params), parts, c)
    sum_shards(grads, lo, hi)
    n_seg = segments(runs, pscale, lo, hi, seg_c)
    return grad_sq_norm(params, grads, seg_c, n_seg)


def chunk_update(opt, params, grads, state, hyper, t, runs, pscale, scale, summed, seg_c, parts,
                 c, diag, prev):
    """One optimizer step on chunk c; returns the chunk's penalty (weights before the step)."""
    lo, hi = split(len(params), parts, c)
    n_seg = segments(runs, pscale, lo, hi, seg_c)
    return optimizer_step(opt, params, grads, state, hyper, t, seg_c, n_seg, scale, diag[c],
                          prev, summed)


def chunk_gradient(params, grads, runs, pscale, seg_c, parts, c):
    """The shards' sum plus the penalty's gradient over chunk c into ``grads[0]``; returns the
    chunk's penalty."""
    lo, hi = split(len(params), parts, c)
    sum_shards(grads, lo, hi)
    n_seg = segments(runs, pscale, lo, hi, seg_c)
    value = 0.0
    for k in range(n_seg):
        a, b = int(seg_c[k, SEG_START]), int(seg_c[k, SEG_STOP])
        value += add_penalty(params[a:b], grads[0, a:b], seg_c[k, SEG_C1], seg_c[k, SEG_C2])
    return value
