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
    ADAGRAD, ADAM, ADAMW, HP_BETA1, HP_BETA2, HP_CLIPVALUE, HP_EPS, HP_LR, HP_MOMENTUM,
    HP_NESTEROV, HP_RHO, HP_WEIGHT_DECAY, RMSPROP, SGD,
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
def segments(sizes, w_off, b_off, l1, l2, scale, lo, hi, seg):
    """The runs of equal penalty inside ``[lo, hi)``: each layer's W, then its b.

    Writes rows ``(start, stop, c1, c2)`` into ``seg`` (float64, shape (2 L, 4)) and returns
    how many there are.
    """
    count = 0
    for l in range(w_off.shape[0]):
        w_end = w_off[l] + sizes[l] * sizes[l + 1]
        b_end = b_off[l] + sizes[l + 1]
        for start, stop, penalised in ((w_off[l], w_end, True), (b_off[l], b_end, False)):
            a = max(lo, start)
            b = min(hi, stop)
            if a < b:
                seg[count, 0] = a
                seg[count, 1] = b
                seg[count, 2] = l1[l] * scale if penalised else 0.0
                seg[count, 3] = l2[l] * scale if penalised else 0.0
                count += 1
    return count


@jit
def penalty(params, grads, sizes, w_off, l1, l2, scale):
    """Add the L1/L2 penalty's gradient to ``grads`` and return the penalty's value.

    The penalty is ``scale * sum_l (l2[l] * ||W_l||^2 + l1[l] * |W_l|_1)``; biases are not
    penalised. Used where a whole gradient is wanted at once (full-batch objective); the
    training loop applies the same ``add_penalty`` inside ``optimizer_step``.

    params, grads : float32 (P,); sizes int64 (L + 1,); w_off int64 (L,); l1, l2 float64 (L,)
    """
    value = 0.0
    for layer in range(w_off.shape[0]):
        c1 = l1[layer] * scale
        c2 = l2[layer] * scale
        if c1 == 0.0 and c2 == 0.0:
            continue
        start = w_off[layer]
        stop = start + sizes[layer] * sizes[layer + 1]
        value += add_penalty(params[start:stop], grads[start:stop], c1, c2)
    return value


@jit
def grad_sq_norm(params, grads, seg, n_seg):
    """Squared L2 norm of ``grads[0]`` plus the penalty's gradient over the segments."""
    total = 0.0
    for k in range(n_seg):
        c1 = np.float32(seg[k, 2])
        two_c2 = np.float32(2.0 * seg[k, 3])
        lo = int(seg[k, 0])
        hi = int(seg[k, 1])
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
    c1f = np.float32(c1)
    two_c2 = np.float32(2.0 * c2)
    sq = _ZERO
    ab = _ZERO
    for i in range(w.shape[0]):
        x = w[i]
        sq += x * x
        ab += abs(x)
        g[i] += penalty_grad(x, c1f, two_c2)
    return c2 * sq + c1 * ab


@jit
def update_segment(code, w, g, s0, s1, hyper, t, c1, c2, scale):
    """One optimizer step on a run of parameters that share penalty coefficients c1, c2.

    Parameters
    ----------
    w, g : float32 arrays of shape (n,)
        Parameters (updated) and their summed gradient (the penalty's gradient is added).
    s0, s1 : float32 arrays of shape (n,)
        The optimizer's first and second state vectors over the run (``s1`` unused by
        one-slot optimizers).
    scale : float
        Global-norm clipping factor.

    Returns the penalty's value over the run, from the weights before the step.
    """
    value = add_penalty(w, g, c1, c2)
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
    return value


@jit
def optimizer_step(code, params, grads, state, hyper, t, seg, n_seg, scale):
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
    seg : float64 array of shape (2 L, 4), n_seg : int
        The runs to update and their penalty coefficients (``segments``).
    scale : float
        Global-norm clipping factor (1 when off).

    Returns
    -------
    float
        The penalty's value over the segments.
    """
    value = 0.0
    last = state.shape[0] - 1
    for k in range(n_seg):
        lo = int(seg[k, 0])
        hi = int(seg[k, 1])
        value += update_segment(code, params[lo:hi], grads[0, lo:hi], state[0, lo:hi],
                                state[last, lo:hi], hyper, t, seg[k, 2], seg[k, 3], scale)
    return value


@jit
def clip_scale(sq_norm, clipnorm):
    """Factor that brings a gradient of squared norm ``sq_norm`` down to norm ``clipnorm``."""
    norm = np.sqrt(sq_norm)
    return clipnorm / norm if norm > clipnorm else 1.0
