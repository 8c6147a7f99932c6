"""Compiled parameter updates over the flat parameter vector.

The parameters, the gradient and every optimizer state vector share one layout, so the
penalty, the clipping and each update rule are single loops over contiguous memory. One
call updates the elements ``[lo, hi)``; the epoch loop splits the vector into chunks that
threads update side by side.

Within a step (as in Keras): shard gradients summed (in shard order) -> L1/L2 penalty's
gradient added -> clip by global norm -> clip by value -> decoupled weight decay (AdamW) ->
update rule. The penalty's value is read from the weights before they change. Without
global-norm clipping or diagnostics (which need the whole gradient first), the shard sum,
the penalty's gradient and the rule are one pass over each run.

Loops run over 1-D views with ``range(len)``: Numba lowers ``range(lo, hi)`` with a check for
negative indices on every access, and LLVM then does not vectorise the loop (measured: an
Adam step 15x slower).

NumPy twin: ``fastbp.reference.optim``.
"""

import numpy as np

from .._jit import jit
from ..codes import (
    ADAGRAD, ADAM, ADAMAX, ADAMW, DG_PER_RUN, HP_BETA1, HP_BETA2, HP_CLIPVALUE, HP_EPS, HP_LR,
    HP_MOMENTUM, HP_MOMENTUM_DECAY, HP_MU_PRODUCT, HP_NESTEROV, HP_RHO, HP_WEIGHT_DECAY, NADAM,
    RMSPROP, RUN_L1, RUN_L2, RUN_START, RUN_STOP, SEG_C1, SEG_C2, SEG_RUN, SEG_START, SEG_STOP,
    SGD,
)
from .views import copy_to

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
    whole gradient is wanted at once (full-batch objective); the training loop adds the same
    gradient inside ``update_segment``.

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
    """``g += gradient of c1 |w| + c2 w^2``; returns the penalty's value (``penalty_value``).
    w, g : float32 (n,). Used where the whole gradient is wanted before the update (full-batch
    objective, diagnostics); the training step otherwise adds it inside ``update_segment``."""
    if c1 == 0.0 and c2 == 0.0:
        return 0.0
    c1f = np.float32(c1)
    two_c2 = np.float32(2.0 * c2)
    for i in range(w.shape[0]):
        g[i] += penalty_grad(w[i], c1f, two_c2)
    return penalty_value(w, c1, c2)


@jit
def gradient_at(g0, g1, two, w, pen, c1, two_c2, sc, cv, i):
    """Element i's gradient as the rule sees it: shards summed (``g0[i] + g1[i]`` when ``two``),
    the penalty's gradient added (when ``pen``), scaled by the global-norm factor ``sc`` and
    clipped to [-cv, cv]."""
    # both loads and the penalty's gradient unconditional, then selects: a branch around a
    # load keeps LLVM from vectorising the loop
    other = g1[i]
    p = penalty_grad(w, c1, two_c2)
    g = g0[i] + (other if two else _ZERO)
    g += p if pen else _ZERO
    return min(max(g * sc, -cv), cv)


@jit(fastmath=False)
def nadam_mu(hyper, t):
    """Nadam's momentum coefficient of step t: ``beta_1 (1 - 0.5 * 0.96 ** (t decay))``.

    In IEEE arithmetic (no contraction into a fused multiply-add, not inlined into a caller
    that allows it): the same bits as the NumPy reference's and ``optimizers.Nadam``'s Python,
    so that the product of the coefficients does not depend on where it was computed."""
    return hyper[HP_BETA1] * (1.0 - 0.5 * 0.96 ** (t * hyper[HP_MOMENTUM_DECAY]))


@jit(fastmath=False)
def advance_mu_product(hyper, t):
    """After Nadam's step t: ``hyper[HP_MU_PRODUCT] *= mu_t`` (IEEE, as ``nadam_mu``)."""
    hyper[HP_MU_PRODUCT] = hyper[HP_MU_PRODUCT] * nadam_mu(hyper, t)


@jit
def step_rate(code, hyper, t):
    """The step's coefficients, computed once per step (not once per run):
    ``(rate, a, b, c)``.

    Adam, AdamW: the rate with the bias correction of step t. Adamax: ``lr / (1 - b1^t)``.
    Nadam: the plain rate, ``a = mu_(t+1) / (1 - mu_1 ... mu_(t+1))`` and
    ``b = (1 - mu_t) / (1 - mu_1 ... mu_t)``, the weights of the first moment and of the
    gradient in its look-ahead step (``hyper[HP_MU_PRODUCT]`` is the product to step t - 1),
    and ``c = 1 / (1 - b2^t)``. The plain rate otherwise.
    """
    lr = hyper[HP_LR]
    if code == ADAM or code == ADAMW:
        b1 = hyper[HP_BETA1]
        b2 = hyper[HP_BETA2]
        return lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t), 0.0, 0.0, 0.0
    if code == ADAMAX:
        return lr / (1.0 - hyper[HP_BETA1] ** t), 0.0, 0.0, 0.0
    if code == NADAM:
        mu = nadam_mu(hyper, t)
        mu_next = nadam_mu(hyper, t + 1)
        product = hyper[HP_MU_PRODUCT] * mu
        return (lr, mu_next / (1.0 - product * mu_next), (1.0 - mu) / (1.0 - product),
                1.0 / (1.0 - hyper[HP_BETA2] ** t))
    return lr, 0.0, 0.0, 0.0


@jit
def update_segment(code, w, g0, g1, two, s0, s1, c1, c2, hyper, coef, scale):
    """One optimizer step on a run of parameters, the gradient assembled element by element.

    The gradient of element i is ``g0[i]`` (plus ``g1[i]`` when ``two``: two shards summed in
    the same pass), plus the gradient of the penalty ``c1 |w| + c2 w^2`` (skipped when both
    are 0), times the clipping factor ``scale``, clipped by value: one pass over the run reads
    each vector once (an Adam step over two shards of 6,922 parameters: 2.0 us against 2.5 us
    for a shard-sum pass then the rule).

    Parameters
    ----------
    w : float32 array of shape (n,)
        Parameters, updated.
    g0, g1 : float32 arrays of shape (n,)
        Gradient parts (``g1`` read only when ``two``); not modified.
    s0, s1 : float32 arrays of shape (n,)
        The optimizer's first and second state vectors over the run (``s1`` unused by
        one-slot optimizers).
    coef : tuple of three floats
        ``step_rate`` of this step: the rate and the rule's step coefficients.
    scale : float
        Global-norm clipping factor.
    """
    n = w.shape[0]
    pen = c1 != 0.0 or c2 != 0.0
    c1f = np.float32(c1)
    two_c2 = np.float32(2.0 * c2)
    lr = np.float32(coef[0])
    sc = np.float32(scale)
    cv = np.float32(hyper[HP_CLIPVALUE]) if hyper[HP_CLIPVALUE] > 0.0 else np.float32(np.inf)
    if code == SGD:
        mu = np.float32(hyper[HP_MOMENTUM])
        if mu == _ZERO:
            for i in range(n):
                gi = gradient_at(g0, g1, two, w[i], pen, c1f, two_c2, sc, cv, i)
                w[i] -= lr * gi
        elif hyper[HP_NESTEROV] != 0.0:
            for i in range(n):
                gi = gradient_at(g0, g1, two, w[i], pen, c1f, two_c2, sc, cv, i)
                v = mu * s0[i] - lr * gi
                s0[i] = v
                w[i] += mu * v - lr * gi
        else:
            for i in range(n):
                gi = gradient_at(g0, g1, two, w[i], pen, c1f, two_c2, sc, cv, i)
                v = mu * s0[i] - lr * gi
                s0[i] = v
                w[i] += v
    elif code == ADAM or code == ADAMW:
        b1f = np.float32(hyper[HP_BETA1])
        b2f = np.float32(hyper[HP_BETA2])
        eps = np.float32(hyper[HP_EPS])
        decay = np.float32(1.0 - hyper[HP_LR] * hyper[HP_WEIGHT_DECAY]) if code == ADAMW else _ONE
        for i in range(n):
            x = w[i]
            gi = gradient_at(g0, g1, two, x, pen, c1f, two_c2, sc, cv, i)
            mi = b1f * s0[i] + (_ONE - b1f) * gi
            vi = b2f * s1[i] + (_ONE - b2f) * gi * gi
            s0[i] = mi
            s1[i] = vi
            w[i] = x * decay - lr * mi / (np.sqrt(vi) + eps)
    elif code == RMSPROP:
        rho = np.float32(hyper[HP_RHO])
        mu = np.float32(hyper[HP_MOMENTUM])
        eps = np.float32(hyper[HP_EPS])
        for i in range(n):
            gi = gradient_at(g0, g1, two, w[i], pen, c1f, two_c2, sc, cv, i)
            ms = rho * s0[i] + (_ONE - rho) * gi * gi
            s0[i] = ms
            step = lr * gi / (np.sqrt(ms) + eps) + mu * s1[i]
            s1[i] = step
            w[i] -= step
    elif code == ADAGRAD:
        eps = np.float32(hyper[HP_EPS])
        for i in range(n):
            gi = gradient_at(g0, g1, two, w[i], pen, c1f, two_c2, sc, cv, i)
            acc = s0[i] + gi * gi
            s0[i] = acc
            w[i] -= lr * gi / (np.sqrt(acc) + eps)
    elif code == NADAM:
        b1f = np.float32(hyper[HP_BETA1])
        b2f = np.float32(hyper[HP_BETA2])
        eps = np.float32(hyper[HP_EPS])
        a = np.float32(coef[1])
        b = np.float32(coef[2])
        bias2 = np.float32(coef[3])
        for i in range(n):
            gi = gradient_at(g0, g1, two, w[i], pen, c1f, two_c2, sc, cv, i)
            mi = b1f * s0[i] + (_ONE - b1f) * gi
            vi = b2f * s1[i] + (_ONE - b2f) * gi * gi
            s0[i] = mi
            s1[i] = vi
            w[i] -= lr * (a * mi + b * gi) / (np.sqrt(vi * bias2) + eps)
    elif code == ADAMAX:
        b1f = np.float32(hyper[HP_BETA1])
        b2f = np.float32(hyper[HP_BETA2])
        eps = np.float32(hyper[HP_EPS])
        for i in range(n):
            gi = gradient_at(g0, g1, two, w[i], pen, c1f, two_c2, sc, cv, i)
            mi = b1f * s0[i] + (_ONE - b1f) * gi
            ui = max(b2f * s1[i], abs(gi))
            s0[i] = mi
            s1[i] = ui
            w[i] -= lr * mi / (ui + eps)


@jit
def penalty_value(w, c1, c2):
    """``c1 |w|_1 + c2 ||w||^2`` of a float32 run (0 without computing when both are 0)."""
    if c1 == 0.0 and c2 == 0.0:
        return 0.0
    sq = _ZERO
    ab = _ZERO
    for i in range(w.shape[0]):
        x = w[i]
        sq += x * x
        ab += abs(x)
    return c2 * sq + c1 * ab


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
def optimizer_step(code, params, grads, state, hyper, t, seg, n_seg, scale, diag, prev, summed):
    """Apply one optimizer step to the segments listed in ``seg``.

    Parameters
    ----------
    code : int
        Optimizer code (``fastbp.codes``).
    params : float32 array of shape (P,)
        Updated in place.
    grads : float32 array of shape (S, P)
        One gradient per shard, summed in shard order into the step's gradient: by the update's
        own pass when S = 2 (``grads`` left as it was), else into ``grads[0]`` first. With
        diagnostics on, ``grads[0]`` receives the whole gradient, penalty included.
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
    summed : bool
        ``grads[0]`` already holds the sum of the shards (``grads[1:]`` is ignored).

    Returns
    -------
    float
        The penalty's value over the segments, from the weights before the step.
    """
    value = 0.0
    last = state.shape[0] - 1
    watch = diag.shape[0] > 0
    two = not summed and grads.shape[0] == 2 and not watch
    rate = step_rate(code, hyper, t)
    for k in range(n_seg):
        lo = int(seg[k, SEG_START])
        hi = int(seg[k, SEG_STOP])
        c1 = seg[k, SEG_C1]
        c2 = seg[k, SEG_C2]
        w = params[lo:hi]
        g = grads[0, lo:hi]
        if not summed and not two:
            sum_shards(grads, lo, hi)
        if watch:  # the whole gradient is wanted: assemble it in grads[0] first
            value += add_penalty(w, g, c1, c2)
            copy_to(w, prev[lo:hi])
            diag[DG_PER_RUN * int(seg[k, SEG_RUN])] += sum_squares(g)
            update_segment(code, w, g, g, np.bool_(False), state[0, lo:hi], state[last, lo:hi],
                           0.0, 0.0, hyper, rate, scale)
            diag[DG_PER_RUN * int(seg[k, SEG_RUN]) + 1] += sum_sq_diff(w, prev[lo:hi])
        else:
            value += penalty_value(w, c1, c2)
            update_segment(code, w, g, grads[1, lo:hi] if two else g, two, state[0, lo:hi],
                           state[last, lo:hi], c1, c2, hyper, rate, scale)
    return value


@jit
def clip_scale(sq_norm, clipnorm):
    """Factor that brings a gradient of squared norm ``sq_norm`` down to norm ``clipnorm``."""
    norm = np.sqrt(sq_norm)
    return clipnorm / norm if norm > clipnorm else 1.0
