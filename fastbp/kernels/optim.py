"""Compiled parameter updates over the flat parameter vector.

The parameters, the gradient and every optimizer state vector share one layout, so the
penalty, the clipping and each update rule are single loops over contiguous memory.

Order within a step (as in Keras): L1/L2 penalty gradient added -> clip by global norm ->
clip by value -> decoupled weight decay (AdamW) -> update rule.

NumPy twin: ``fastbp.reference.optim``.
"""

import numpy as np

from .._jit import jit
from ..codes import (
    ADAGRAD, ADAM, ADAMW, HP_BETA1, HP_BETA2, HP_CLIPNORM, HP_CLIPVALUE, HP_EPS, HP_LR,
    HP_MOMENTUM, HP_NESTEROV, HP_RHO, HP_WEIGHT_DECAY, RMSPROP, SGD,
)

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


@jit
def penalty(params, grads, sizes, w_off, l1, l2, scale):
    """Add the L1/L2 penalty's gradient to ``grads`` and return the penalty's value.

    The penalty is ``scale * sum_l (l2[l] * ||W_l||^2 + l1[l] * |W_l|_1)``; biases are not
    penalised.

    Parameters
    ----------
    params, grads : float32 arrays of shape (P,)
        ``grads`` is incremented in place.
    sizes : int64 array of shape (L + 1,)
        Layer widths.
    w_off : int64 array of shape (L,)
        Offset of each weight matrix in the flat vector.
    l1, l2 : float64 arrays of shape (L,)
        Per-layer coefficients.
    scale : float
        1, or 1/norm for the per-sample convention of scikit-learn.

    Returns
    -------
    float
        The penalty's value.
    """
    value = 0.0
    for layer in range(w_off.shape[0]):
        c1 = l1[layer] * scale
        c2 = l2[layer] * scale
        if c1 == 0.0 and c2 == 0.0:
            continue
        start = w_off[layer]
        stop = start + sizes[layer] * sizes[layer + 1]
        c1f = np.float32(c1)
        two_c2 = np.float32(2.0 * c2)
        sq = _ZERO
        ab = _ZERO
        for i in range(start, stop):
            w = params[i]
            sq += w * w
            ab += abs(w)
            grads[i] += two_c2 * w + (c1f if w > _ZERO else (-c1f if w < _ZERO else _ZERO))
        value += c2 * sq + c1 * ab
    return value


@jit
def grad_scale(grads, clipnorm):
    """Factor that brings the gradient's global L2 norm down to ``clipnorm`` (1 if below or off)."""
    if clipnorm <= 0.0:
        return _ONE
    sq = _ZERO
    for i in range(grads.shape[0]):
        sq += grads[i] * grads[i]
    norm = np.sqrt(np.float64(sq))
    if norm > clipnorm:
        return np.float32(clipnorm / norm)
    return _ONE


@jit
def optimizer_step(code, params, grads, state, hyper, t):
    """Apply one optimizer step in place.

    Parameters
    ----------
    code : int
        Optimizer code (``fastbp.codes``).
    params : float32 array of shape (P,)
        Updated in place.
    grads : float32 array of shape (P,)
        Gradient of the batch loss, penalty included. Left unchanged.
    state : float32 array of shape (S, P)
        Optimizer state (velocity; Adam's m and v; RMSprop's mean square and momentum;
        Adagrad's accumulator). Updated in place.
    hyper : float64 array of shape (N_HYPER,)
        Hyperparameters, slots ``HP_*`` of ``fastbp.codes``.
    t : int
        Number of this step, counting from 1 (Adam's bias correction).
    """
    n = params.shape[0]
    lr = np.float32(hyper[HP_LR])
    scale = grad_scale(grads, hyper[HP_CLIPNORM])
    cv = np.float32(hyper[HP_CLIPVALUE]) if hyper[HP_CLIPVALUE] > 0.0 else np.float32(np.inf)
    if code == SGD:
        mu = np.float32(hyper[HP_MOMENTUM])
        if mu == _ZERO:
            for i in range(n):
                g = min(max(grads[i] * scale, -cv), cv)
                params[i] -= lr * g
        else:
            velocity = state[0]
            nesterov = hyper[HP_NESTEROV] != 0.0
            for i in range(n):
                g = min(max(grads[i] * scale, -cv), cv)
                v = mu * velocity[i] - lr * g
                velocity[i] = v
                params[i] += (mu * v - lr * g) if nesterov else v
    elif code == ADAM or code == ADAMW:
        b1 = hyper[HP_BETA1]
        b2 = hyper[HP_BETA2]
        lr_t = np.float32(hyper[HP_LR] * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t))
        b1f = np.float32(b1)
        b2f = np.float32(b2)
        eps = np.float32(hyper[HP_EPS])
        decay = np.float32(1.0 - hyper[HP_LR] * hyper[HP_WEIGHT_DECAY]) if code == ADAMW else _ONE
        m = state[0]
        v = state[1]
        for i in range(n):
            g = min(max(grads[i] * scale, -cv), cv)
            mi = b1f * m[i] + (_ONE - b1f) * g
            vi = b2f * v[i] + (_ONE - b2f) * g * g
            m[i] = mi
            v[i] = vi
            params[i] = params[i] * decay - lr_t * mi / (np.sqrt(vi) + eps)
    elif code == RMSPROP:
        rho = np.float32(hyper[HP_RHO])
        mu = np.float32(hyper[HP_MOMENTUM])
        eps = np.float32(hyper[HP_EPS])
        ms = state[0]
        mom = state[1]
        for i in range(n):
            g = min(max(grads[i] * scale, -cv), cv)
            s = rho * ms[i] + (_ONE - rho) * g * g
            ms[i] = s
            step = lr * g / (np.sqrt(s) + eps)
            if mu != _ZERO:
                step += mu * mom[i]
                mom[i] = step
            params[i] -= step
    elif code == ADAGRAD:
        eps = np.float32(hyper[HP_EPS])
        acc = state[0]
        for i in range(n):
            g = min(max(grads[i] * scale, -cv), cv)
            s = acc[i] + g * g
            acc[i] = s
            params[i] -= lr * g / (np.sqrt(s) + eps)
