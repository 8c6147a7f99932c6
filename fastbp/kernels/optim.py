"""Compiled parameter updates over the flat parameter vector.

The parameters, the gradient and every optimizer state vector share one layout, so the
penalty, the clipping and each update rule are single loops over contiguous memory. One
call updates the elements ``[lo, hi)``; the epoch loop splits the vector into chunks that
threads update side by side.

Within a step (as in Keras): shard gradients summed (in shard order) -> L1/L2 penalty's
gradient added -> clip by global norm -> clip by value -> decoupled weight decay (AdamW) ->
update rule. The penalty's value is read from the weights before they change.

Loops run over 1-D views with ``range(len)``: Numba lowers ``range(lo, hi)`` with a check for
negative indices on every access, and LLVM then does not vectorise the loop (measured: an
Adam step 15x slower).

NumPy twin: ``fastbp.reference.optim``.
"""

import numpy as np

from .._jit import jit
from ..codes import (
    ADAGRAD, ADAM, ADAMW, DG_PER_RUN, HP_BETA1, HP_BETA2, HP_CLIPVALUE, HP_EPS, HP_LR,
    HP_MOMENTUM, HP_NESTEROV, HP_RHO, HP_WEIGHT_DECAY, RMSPROP, RUN_L1, RUN_L2, RUN_START,
    RUN_STOP, SEG_C1, SEG_C2, SEG_RUN, SEG_START, SEG_STOP, SGD,
)

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


@jit(inline="always")
def penalty_grad(w, c1, two_c2):
    """Gradient of ``c1 |w| + c2 w^2`` (``two_c2 = 2 c2``), float32 in and out."""
    return two_c2 * w + (c1 if w > _ZERO else (-c1 if w < _ZERO else _ZERO))


@jit
def sum_shards(grads, lo, hi):
    """``grads[0, lo:hi] += grads[1, lo:hi] + ...``, shard by shard in order.

    grads : float32 array of shape (S, P); each row is one shard's gradient.
    """
    total = grads[0, lo:hi]
    for s in range(1, grads.shape[0]):
        part = grads[s, lo:hi]
        for i in range(total.shape[0]):
            total[i] += part[i]


@jit
def segments(runs, scale, lo, hi, seg):
    """The runs of the parameter vector that meet ``[lo, hi)``, cut to it.

    runs : float64 (R, N_RUN), rows (start, stop, l1, l2); seg : float64 (R, N_SEG),
    overwritten with rows (start, stop, l1 * scale, l2 * scale, run index). Returns the count.
    """
    count = 0
    for r in range(runs.shape[0]):
        a = max(lo, int(runs[r, RUN_START]))
        b = min(hi, int(runs[r, RUN_STOP]))
        if a < b:
            seg[count, SEG_START] = a
            seg[count, SEG_STOP] = b
            seg[count, SEG_C1] = runs[r, RUN_L1] * scale
            seg[count, SEG_C2] = runs[r, RUN_L2] * scale
            seg[count, SEG_RUN] = r
            count += 1
    return count


@jit
def penalty(params, grads, runs, scale):
    """Add the L1/L2 penalty's gradient to ``grads`` and return the penalty's value.

    The penalty is ``scale * sum over runs (l1 |w|_1 + l2 ||w||^2)`` (``runs`` as in
    ``segments``; biases and batch-norm parameters sit in runs with l1 = l2 = 0). Used where a
    whole gradient is wanted at once (full-batch objective); the training loop applies the
    same ``add_penalty`` inside ``optimizer_step``.

    params, grads : float32 (P,)
    """
    value = 0.0
    for r in range(runs.shape[0]):
        lo = int(runs[r, RUN_START])
        hi = int(runs[r, RUN_STOP])
        value += add_penalty(params[lo:hi], grads[lo:hi], runs[r, RUN_L1] * scale,
                             runs[r, RUN_L2] * scale)
    return value


@jit
def grad_sq_norm(params, grads, seg, n_seg):
    """Squared L2 norm of ``grads[0]`` plus the penalty's gradient over the segments."""
    total = 0.0
    for k in range(n_seg):
        c1 = np.float32(seg[k, SEG_C1])
        two_c2 = np.float32(2.0 * seg[k, SEG_C2])
        lo = int(seg[k, SEG_START])
        hi = int(seg[k, SEG_STOP])
        w = params[lo:hi]
        g0 = grads[0, lo:hi]
        part = _ZERO
        for i in range(w.shape[0]):
            g = g0[i] + penalty_grad(w[i], c1, two_c2)
            part += g * g
        total += part
    return total


@jit
def add_penalty(w, g, c1, c2):
    """``g += gradient of c1 |w| + c2 w^2``; returns the penalty's value. w, g : float32 (n,)."""
    if c1 == 0.0 and c2 == 0.0:
        return 0.0
    two_c2 = np.float32(2.0 * c2)
    sq = _ZERO
    if c1 == 0.0:  # the common case (L2 only): a plain vectorised loop
        for i in range(w.shape[0]):
            x = w[i]
            sq += x * x
            g[i] += two_c2 * x
        return c2 * sq
    c1f = np.float32(c1)
    ab = _ZERO
    for i in range(w.shape[0]):
        x = w[i]
        sq += x * x
        ab += abs(x)
        g[i] += penalty_grad(x, c1f, two_c2)
    return c2 * sq + c1 * ab


@jit
def update_segment(code, w, g, s0, s1, hyper, t, scale):
    """One optimizer step on a run of parameters.

    Parameters
    ----------
    w, g : float32 arrays of shape (n,)
        Parameters (updated) and their gradient, penalty included.
    s0, s1 : float32 arrays of shape (n,)
        The optimizer's first and second state vectors over the run (``s1`` unused by
        one-slot optimizers).
    scale : float
        Global-norm clipping factor.
    """
    n = w.shape[0]
    lr = np.float32(hyper[HP_LR])
    sc = np.float32(scale)
    cv = np.float32(hyper[HP_CLIPVALUE]) if hyper[HP_CLIPVALUE] > 0.0 else np.float32(np.inf)
    if code == SGD:
        mu = np.float32(hyper[HP_MOMENTUM])
        if mu == _ZERO:
            for i in range(n):
                gi = min(max(g[i] * sc, -cv), cv)
                w[i] -= lr * gi
        elif hyper[HP_NESTEROV] != 0.0:
            for i in range(n):
                gi = min(max(g[i] * sc, -cv), cv)
                v = mu * s0[i] - lr * gi
                s0[i] = v
                w[i] += mu * v - lr * gi
        else:
            for i in range(n):
                gi = min(max(g[i] * sc, -cv), cv)
                v = mu * s0[i] - lr * gi
                s0[i] = v
                w[i] += v
    elif code == ADAM or code == ADAMW:
        b1 = hyper[HP_BETA1]
        b2 = hyper[HP_BETA2]
        lr_t = np.float32(hyper[HP_LR] * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t))
        b1f = np.float32(b1)
        b2f = np.float32(b2)
        eps = np.float32(hyper[HP_EPS])
        decay = np.float32(1.0 - hyper[HP_LR] * hyper[HP_WEIGHT_DECAY]) if code == ADAMW else _ONE
        for i in range(n):
            gi = min(max(g[i] * sc, -cv), cv)
            mi = b1f * s0[i] + (_ONE - b1f) * gi
            vi = b2f * s1[i] + (_ONE - b2f) * gi * gi
            s0[i] = mi
            s1[i] = vi
            w[i] = w[i] * decay - lr_t * mi / (np.sqrt(vi) + eps)
    elif code == RMSPROP:
        rho = np.float32(hyper[HP_RHO])
        mu = np.float32(hyper[HP_MOMENTUM])
        eps = np.float32(hyper[HP_EPS])
        for i in range(n):
            gi = min(max(g[i] * sc, -cv), cv)
            ms = rho * s0[i] + (_ONE - rho) * gi * gi
            s0[i] = ms
            step = lr * gi / (np.sqrt(ms) + eps) + mu * s1[i]
            s1[i] = step
            w[i] -= step
    elif code == ADAGRAD:
        eps = np.float32(hyper[HP_EPS])
        for i in range(n):
            gi = min(max(g[i] * sc, -cv), cv)
            acc = s0[i] + gi * gi
            s0[i] = acc
            w[i] -= lr * gi / (np.sqrt(acc) + eps)


@jit
def sum_squares(x):
    """``sum(x * x)`` of a float32 vector, accumulated in float32 lanes."""
    total = _ZERO
    for i in range(x.shape[0]):
        total += x[i] * x[i]
    return total


@jit
def sum_sq_diff(x, y):
    """``sum((x - y) ** 2)`` of two float32 vectors."""
    total = _ZERO
    for i in range(x.shape[0]):
        d = x[i] - y[i]
        total += d * d
    return total


@jit
def optimizer_step(code, params, grads, state, hyper, t, seg, n_seg, scale, diag, prev):
    """Apply one optimizer step to the segments listed in ``seg``.

    Parameters
    ----------
    code : int
        Optimizer code (``fastbp.codes``).
    params : float32 array of shape (P,)
        Updated in place.
    grads : float32 array of shape (S, P)
        ``grads[0]`` holds the (already summed) gradient of the batch loss; the penalty's
        gradient is added to it in place.
    state : float32 array of shape (n_slots, P)
        Optimizer state (velocity; Adam's m and v; RMSprop's mean square and momentum;
        Adagrad's accumulator). Updated in place.
    hyper : float64 array of shape (N_HYPER,)
    t : int
        Number of this step, counting from 1 (Adam's bias correction).
    seg : float64 array of shape (R, N_SEG), n_seg : int
        The runs to update and their penalty coefficients (``segments``).
    scale : float
        Global-norm clipping factor (1 when off).
    diag : float64 array of shape (>= 2 R,), or (0,) when diagnostics are off
        Per run r: ``diag[2 r]`` += squared gradient norm (penalty in, before clipping),
        ``diag[2 r + 1]`` += squared norm of the update.
    prev : float32 array of shape (P,), or (0,)
        Scratch for the weights before the step (diagnostics only).

    Returns
    -------
    float
        The penalty's value over the segments, from the weights before the step.
    """
    value = 0.0
    last = state.shape[0] - 1
    watch = diag.shape[0] > 0
    for k in range(n_seg):
        lo = int(seg[k, SEG_START])
        hi = int(seg[k, SEG_STOP])
        w = params[lo:hi]
        g = grads[0, lo:hi]
        value += add_penalty(w, g, seg[k, SEG_C1], seg[k, SEG_C2])
        if watch:
            prev[lo:hi] = w
            diag[DG_PER_RUN * int(seg[k, SEG_RUN])] += sum_squares(g)
        update_segment(code, w, g, state[0, lo:hi], state[last, lo:hi], hyper, t, scale)
        if watch:
            diag[DG_PER_RUN * int(seg[k, SEG_RUN]) + 1] += sum_sq_diff(w, prev[lo:hi])
    return value


@jit
def clip_scale(sq_norm, clipnorm):
    """Factor that brings a gradient of squared norm ``sq_norm`` down to norm ``clipnorm``."""
    norm = np.sqrt(sq_norm)
    return clipnorm / norm if norm > clipnorm else 1.0
