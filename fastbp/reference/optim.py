"""Penalty, clipping and optimizer updates in plain NumPy: the oracle for ``kernels.optim``.

Every rule is written once, as a formula over whole vectors, in the dtype of ``params``.
"""

import numpy as np

from ..codes import (
    ADAGRAD, ADAM, ADAMW, HP_BETA1, HP_BETA2, HP_CLIPNORM, HP_CLIPVALUE, HP_EPS, HP_LR,
    HP_MOMENTUM, HP_NESTEROV, HP_RHO, HP_WEIGHT_DECAY, RMSPROP, SGD,
)


def penalty(params, grads, sizes, w_off, l1, l2, scale):
    """Add the gradient of ``scale * sum_l (l2 ||W_l||^2 + l1 |W_l|_1)`` to grads; return its value."""
    value = 0.0
    for layer in range(len(w_off)):
        c1, c2 = l1[layer] * scale, l2[layer] * scale
        if c1 == 0.0 and c2 == 0.0:
            continue
        start = w_off[layer]
        stop = start + sizes[layer] * sizes[layer + 1]
        W = params[start:stop]
        grads[start:stop] += (2.0 * c2 * W + c1 * np.sign(W)).astype(grads.dtype)
        value += c2 * float(np.dot(W, W)) + c1 * float(np.abs(W).sum())
    return value


def grad_scale(grads, clipnorm):
    """Factor that brings the gradient's global L2 norm down to ``clipnorm`` (1 if below or off)."""
    if clipnorm <= 0.0:
        return 1.0
    norm = float(np.sqrt(np.dot(grads, grads)))
    return clipnorm / norm if norm > clipnorm else 1.0


def optimizer_step(code, params, grads, state, hyper, t):
    """One update of ``params`` (P,) and ``state`` (S, P) in place; step number ``t`` counts from 1."""
    hyper = [float(h) for h in hyper]  # Python floats: arithmetic stays in the dtype of params
    lr = hyper[HP_LR]
    g = grads * grads.dtype.type(grad_scale(grads, hyper[HP_CLIPNORM]))
    if hyper[HP_CLIPVALUE] > 0.0:
        g = np.clip(g, -hyper[HP_CLIPVALUE], hyper[HP_CLIPVALUE])
    if code == SGD:
        mu = hyper[HP_MOMENTUM]
        if mu == 0.0:
            params -= lr * g
        else:
            velocity = state[0]
            velocity[...] = mu * velocity - lr * g
            if hyper[HP_NESTEROV] != 0.0:
                params += mu * velocity - lr * g
            else:
                params += velocity
    elif code in (ADAM, ADAMW):
        b1, b2, eps = hyper[HP_BETA1], hyper[HP_BETA2], hyper[HP_EPS]
        m, v = state[0], state[1]
        m[...] = b1 * m + (1.0 - b1) * g
        v[...] = b2 * v + (1.0 - b2) * g * g
        lr_t = lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        if code == ADAMW:  # decoupled weight decay, applied to the weights before the step
            params *= 1.0 - lr * hyper[HP_WEIGHT_DECAY]
        params -= lr_t * m / (np.sqrt(v) + eps)
    elif code == RMSPROP:
        rho, mu, eps = hyper[HP_RHO], hyper[HP_MOMENTUM], hyper[HP_EPS]
        mean_square, momentum = state[0], state[1]
        mean_square[...] = rho * mean_square + (1.0 - rho) * g * g
        step = lr * g / (np.sqrt(mean_square) + eps)
        if mu != 0.0:
            step = step + mu * momentum
            momentum[...] = step
        params -= step
    elif code == ADAGRAD:
        eps = hyper[HP_EPS]
        accumulator = state[0]
        accumulator += g * g
        params -= lr * g / (np.sqrt(accumulator) + eps)
    else:
        raise ValueError(f"unknown optimizer code {code}")
