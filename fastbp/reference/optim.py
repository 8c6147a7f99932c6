"""Penalty, clipping and optimizer updates in plain NumPy: the oracle for ``kernels.optim``.

Every rule is written once, as a formula over a run of the vector, in the dtype of ``params``.
"""

import numpy as np

from ..codes import (
    ADAGRAD, ADAM, ADAMW, HP_BETA1, HP_BETA2, HP_CLIPVALUE, HP_EPS, HP_LR, HP_MOMENTUM,
    HP_NESTEROV, HP_RHO, HP_WEIGHT_DECAY, RMSPROP, SGD,
)


def penalty_grad(w, c1, two_c2):
    """Gradient of ``c1 |w| + c2 w^2`` (``two_c2 = 2 c2``)."""
    return two_c2 * w + c1 * np.sign(w)


def sum_shards(grads, lo, hi):
    """``grads[0, lo:hi] += grads[1, lo:hi] + ...``, shard by shard in order; grads (S, P)."""
    for s in range(1, grads.shape[0]):
        grads[0, lo:hi] += grads[s, lo:hi]


def segments(sizes, w_off, b_off, l1, l2, scale, lo, hi, seg):
    """Runs ``(start, stop, c1, c2)`` of equal penalty inside [lo, hi): each W, then its b."""
    count = 0
    for l in range(len(w_off)):
        runs = ((w_off[l], w_off[l] + sizes[l] * sizes[l + 1], l1[l] * scale, l2[l] * scale),
                (b_off[l], b_off[l] + sizes[l + 1], 0.0, 0.0))
        for start, stop, c1, c2 in runs:
            a, b = max(lo, start), min(hi, stop)
            if a < b:
                seg[count] = (a, b, c1, c2)
                count += 1
    return count


def penalty(params, grads, sizes, w_off, l1, l2, scale):
    """Add the gradient of ``scale * sum_l (l2 ||W_l||^2 + l1 |W_l|_1)`` to grads; return its value."""
    value = 0.0
    for layer in range(len(w_off)):
        c1, c2 = l1[layer] * scale, l2[layer] * scale
        if c1 == 0.0 and c2 == 0.0:
            continue
        start = w_off[layer]
        stop = start + sizes[layer] * sizes[layer + 1]
        value += add_penalty(params[start:stop], grads[start:stop], c1, c2)
    return value


def grad_sq_norm(params, grads, seg, n_seg):
    """Squared L2 norm of ``grads[0]`` plus the penalty's gradient over the segments."""
    total = 0.0
    for start, stop, c1, c2 in seg[:n_seg]:
        lo, hi = int(start), int(stop)
        g = grads[0, lo:hi] + penalty_grad(params[lo:hi], c1, 2.0 * c2)
        total += float(np.dot(g, g))
    return total


def clip_scale(sq_norm, clipnorm):
    """Factor that brings a gradient of squared norm ``sq_norm`` down to norm ``clipnorm``."""
    norm = np.sqrt(sq_norm)
    return clipnorm / norm if norm > clipnorm else 1.0


def add_penalty(w, g, c1, c2):
    """``g += gradient of c1 |w| + c2 w^2`` over a run; returns the penalty's value."""
    if c1 == 0.0 and c2 == 0.0:
        return 0.0
    g += penalty_grad(w, float(c1), 2.0 * float(c2)).astype(g.dtype)
    return c2 * float(np.dot(w, w)) + c1 * float(np.abs(w).sum())


def update_segment(code, w, g, s0, s1, hyper, t, c1, c2, scale):
    """One step on a run ``w`` (updated) with gradient ``g`` and state ``s0``, ``s1``; all (n,).
    Returns the penalty's value over the run, from the weights before the step."""
    value = add_penalty(w, g, c1, c2)
    hyper = [float(h) for h in hyper]  # Python floats: arithmetic stays in the dtype of w
    g = g * float(scale)
    if hyper[HP_CLIPVALUE] > 0.0:
        g = np.clip(g, -hyper[HP_CLIPVALUE], hyper[HP_CLIPVALUE])
    lr = hyper[HP_LR]
    if code == SGD:
        mu = hyper[HP_MOMENTUM]
        if mu == 0.0:
            w -= lr * g
        else:
            velocity = s0
            velocity[...] = mu * velocity - lr * g
            if hyper[HP_NESTEROV] != 0.0:
                w += mu * velocity - lr * g
            else:
                w += velocity
    elif code in (ADAM, ADAMW):
        b1, b2, eps = hyper[HP_BETA1], hyper[HP_BETA2], hyper[HP_EPS]
        m, v = s0, s1
        m[...] = b1 * m + (1.0 - b1) * g
        v[...] = b2 * v + (1.0 - b2) * g * g
        lr_t = lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        if code == ADAMW:  # decoupled weight decay, applied to the weights before the step
            w *= 1.0 - lr * hyper[HP_WEIGHT_DECAY]
        w -= lr_t * m / (np.sqrt(v) + eps)
    elif code == RMSPROP:
        rho, mu, eps = hyper[HP_RHO], hyper[HP_MOMENTUM], hyper[HP_EPS]
        mean_square, momentum = s0, s1
        mean_square[...] = rho * mean_square + (1.0 - rho) * g * g
        momentum[...] = lr * g / (np.sqrt(mean_square) + eps) + mu * momentum
        w -= momentum
    elif code == ADAGRAD:
        accumulator = s0
        accumulator += g * g
        w -= lr * g / (np.sqrt(accumulator) + hyper[HP_EPS])
    else:
        raise ValueError(f"unknown optimizer code {code}")
    return value


def optimizer_step(code, params, grads, state, hyper, t, seg, n_seg, scale):
    """One update of ``params`` (P,) and ``state`` over the segments; ``grads`` is (S, P) with
    the summed gradient in row 0. Returns the penalty's value."""
    value = 0.0
    for start, stop, c1, c2 in seg[:n_seg]:
        lo, hi = int(start), int(stop)
        value += update_segment(code, params[lo:hi], grads[0, lo:hi], state[0, lo:hi],
                                state[-1, lo:hi], hyper, t, c1, c2, scale)
    return value
