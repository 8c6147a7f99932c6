"""Penalty, clipping and optimizer updates in plain NumPy: the oracle for ``kernels.optim``.

Every rule is written once, as a formula over a run of the vector, in the dtype of ``params``.
"""

import numpy as np

from ..codes import (
    ADAGRAD, ADAM, ADAMAX, ADAMW, DG_PER_RUN, HP_BETA1, HP_BETA2, HP_CLIPVALUE, HP_EPS, HP_LR,
    HP_MOMENTUM, HP_MOMENTUM_DECAY, HP_MU_PRODUCT, HP_NESTEROV, HP_RHO, HP_WEIGHT_DECAY, NADAM,
    RMSPROP, SGD,
)


def penalty_grad(w, c1, two_c2):
    """Gradient of ``c1 |w| + c2 w^2`` (``two_c2 = 2 c2``)."""
    return two_c2 * w + c1 * np.sign(w)


def sum_shards(grads, lo, hi):
    """``grads[0, lo:hi] += grads[1, lo:hi] + ...``, shard by shard in order; grads (S, P)."""
    for s in range(1, grads.shape[0]):
        grads[0, lo:hi] += grads[s, lo:hi]


def segments(runs, scale, lo, hi, seg):
    """Rows (start, stop, l1 * scale, l2 * scale, run) of the runs cut to [lo, hi); returns the count."""
    count = 0
    for r, (start, stop, l1, l2) in enumerate(runs):
        a, b = max(lo, int(start)), min(hi, int(stop))
        if a < b:
            seg[count] = (a, b, l1 * scale, l2 * scale, r)
            count += 1
    return count


def penalty(params, grads, runs, scale):
    """Add the gradient of ``scale * sum over runs (l1 |w|_1 + l2 ||w||^2)`` to grads; return its value."""
    value = 0.0
    for start, stop, l1, l2 in runs:
        lo, hi = int(start), int(stop)
        value += add_penalty(params[lo:hi], grads[lo:hi], l1 * scale, l2 * scale)
    return value


def grad_sq_norm(params, grads, seg, n_seg):
    """Squared L2 norm of ``grads[0]`` plus the penalty's gradient over the segments."""
    total = 0.0
    for start, stop, c1, c2, _ in seg[:n_seg]:
        lo, hi = int(start), int(stop)
        g = grads[0, lo:hi] + penalty_grad(params[lo:hi], c1, 2.0 * c2)
        total += float(np.dot(g, g))
    return total


def clip_scale(sq_norm, clipnorm):
    """Factor that brings a gradient of squared norm ``sq_norm`` down to norm ``clipnorm``."""
    norm = np.sqrt(sq_norm)
    return clipnorm / norm if norm > clipnorm else 1.0


def penalty_value(w, c1, c2):
    """``c1 |w|_1 + c2 ||w||^2`` of a run."""
    return c2 * float(np.dot(w, w)) + c1 * float(np.abs(w).sum())


def add_penalty(w, g, c1, c2):
    """``g += gradient of c1 |w| + c2 w^2`` over a run; returns the penalty's value."""
    if c1 == 0.0 and c2 == 0.0:
        return 0.0
    g += penalty_grad(w, float(c1), 2.0 * float(c2)).astype(g.dtype)
    return penalty_value(w, c1, c2)


def nadam_mu(hyper, t):
    """Nadam's momentum coefficient of step t: ``beta_1 (1 - 0.5 * 0.96 ** (t decay))``."""
    return float(hyper[HP_BETA1]) * (1.0 - 0.5 * 0.96 ** (t * float(hyper[HP_MOMENTUM_DECAY])))


def advance_mu_product(hyper, t):
    """After Nadam's step t: ``hyper[HP_MU_PRODUCT] *= mu_t``."""
    hyper[HP_MU_PRODUCT] = float(hyper[HP_MU_PRODUCT]) * nadam_mu(hyper, t)


def step_rate(code, hyper, t):
    """The step's learning rate: with Adam's bias correction of step t for Adam and AdamW,
    Adamax's ``lr / (1 - b1^t)``."""
    lr = float(hyper[HP_LR])
    if code in (ADAM, ADAMW):
        b1, b2 = float(hyper[HP_BETA1]), float(hyper[HP_BETA2])
        return lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
    if code == ADAMAX:
        return lr / (1.0 - float(hyper[HP_BETA1]) ** t)
    return lr


def update_segment(code, w, g, s0, s1, hyper, t, scale):
    """One step on a run ``w`` (updated) with gradient ``g`` (penalty in) and state ``s0``, ``s1``."""
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
        lr_t = step_rate(code, hyper, t)
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
    elif code == NADAM:
        # Nesterov-accelerated Adam (Dozat 2016, as PyTorch's NAdam): the step looks ahead
        # with the next momentum coefficient; mu_product is mu_1 ... mu_(t-1)
        b1, b2, eps = hyper[HP_BETA1], hyper[HP_BETA2], hyper[HP_EPS]
        m, v = s0, s1
        m[...] = b1 * m + (1.0 - b1) * g
        v[...] = b2 * v + (1.0 - b2) * g * g
        mu, mu_next = nadam_mu(hyper, t), nadam_mu(hyper, t + 1)
        product = hyper[HP_MU_PRODUCT] * mu
        m_hat = mu_next * m / (1.0 - product * mu_next) + (1.0 - mu) * g / (1.0 - product)
        w -= lr * m_hat / (np.sqrt(v / (1.0 - b2 ** t)) + eps)
    elif code == ADAMAX:
        # Adam with the infinity norm: u = max(b2 u, |g|); w -= lr / (1 - b1^t) m / (u + eps)
        b1, b2, eps = hyper[HP_BETA1], hyper[HP_BETA2], hyper[HP_EPS]
        m, u = s0, s1
        m[...] = b1 * m + (1.0 - b1) * g
        u[...] = np.maximum(b2 * u, np.abs(g))
        w -= step_rate(code, hyper, t) * m / (u + eps)
    else:
        raise ValueError(f"unknown optimizer code {code}")


def sum_squares(x):
    return float(np.dot(x, x))


def sum_sq_diff(x, y):
    d = x - y
    return float(np.dot(d, d))


def optimizer_step(code, params, grads, state, hyper, t, seg, n_seg, scale, diag, prev, summed):
    """One update of ``params`` (P,) and ``state`` over the segments; ``grads`` is (S, P), one
    gradient per shard, summed into row 0 first unless already ``summed``. Returns the
    penalty's value. With ``diag`` non-empty, adds per run the squared gradient norm and the
    squared update norm (``prev`` is scratch)."""
    value = 0.0
    for start, stop, c1, c2, run in seg[:n_seg]:
        lo, hi, run = int(start), int(stop), int(run)
        if not summed:
            sum_shards(grads, lo, hi)
        w, g = params[lo:hi], grads[0, lo:hi]
        value += add_penalty(w, g, c1, c2)
        if len(diag):
            prev[lo:hi] = w
            diag[DG_PER_RUN * run] += sum_squares(g)
        update_segment(code, w, g, state[0, lo:hi], state[-1, lo:hi], hyper, t, scale)
        if len(diag):
            diag[DG_PER_RUN * run + 1] += sum_sq_diff(w, prev[lo:hi])
    return value
