"""Losses in plain NumPy: the oracle for ``fastbp.kernels.losses``.

Per-row loss ``loss_i = out_scale * sum over outputs``; batch loss
``sum_i w_i loss_i / norm``; ``delta`` is its gradient with respect to the output
pre-activation z. Works in any float dtype.
"""

import numpy as np

from ..codes import (
    ABSOLUTE_ERROR, ACC_ARGMAX, ACC_THRESHOLD, BINARY_CROSSENTROPY, CATEGORICAL_CROSSENTROPY,
    EPS_PROB, EXP, HUBER, LINEAR, POISSON, LP_HUBER_DELTA, LP_OUT_SCALE, N_STATS, SIGMOID,
    SOFTMAX, SQUARED_ERROR, ST_ABS_ERR,
    ST_BIN_CORRECT, ST_CORRECT, ST_LOG_LOSS, ST_PER_OUTPUT, ST_SQ_ERR, ST_WEIGHT,
)
from .activations import act_backward, sigmoid


def xlogy(x, y):
    """``x * log(y)``, 0 where x is 0."""
    return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def is_fused(act, loss):
    """True when ``act`` is the natural output activation of ``loss`` (fused shortcut)."""
    return ((act, loss) == (SOFTMAX, CATEGORICAL_CROSSENTROPY)
            or (act, loss) == (SIGMOID, BINARY_CROSSENTROPY)
            or (act, loss) == (LINEAR, SQUARED_ERROR)
            or (act, loss) == (EXP, POISSON))


def batch_targets(Y, labels, rows, k, dtype):
    """Dense targets of the batch rows: ``Y[rows]``, or one-hot rows built from ``labels``."""
    if labels.shape[0] > 0:
        return np.eye(k, dtype=dtype)[labels[rows]]
    return Y[rows].astype(dtype)


def softmax_crossentropy(out, Y, labels, rows, sw, out_scale, norm, delta):
    """Fused softmax + categorical cross-entropy: ``loss_delta``'s shortcut on its own.

    out : (m, k) logits, overwritten with the probabilities; delta (m, k) overwritten with
    ``c (p sum(y) - y)``, c = w out_scale / norm. Returns ``sum_i w_i out_scale loss_i``.
    """
    m, k = out.shape
    T = batch_targets(Y, labels, rows, k, out.dtype)
    w = sw[rows].astype(np.float64) if sw.shape[0] > 0 else np.ones(m)
    top = out.max(axis=1, keepdims=True)
    lse = top + np.log(np.exp(out - top).sum(axis=1, keepdims=True))
    row_loss = (T * (lse - out)).sum(axis=1)
    p = np.exp(out - lse)
    c = (w * out_scale / norm).astype(out.dtype)[:, None]
    delta[...] = c * (p * T.sum(axis=1, keepdims=True) - T)
    out[...] = p
    return float((w * out_scale * row_loss).sum())


def loss_delta(loss, act, alpha, out, Y, labels, rows, sw, loss_param, norm, delta):
    """Loss of a batch and dL/dz; same contract as ``fastbp.kernels.losses.loss_delta``.

    out : (m, k) logits if fused (overwritten with f(z)), else activations.
    Returns ``sum_i w_i loss_i`` (not divided by ``norm``); ``delta`` (m, k) is overwritten.
    """
    out_scale = loss_param[LP_OUT_SCALE]
    fused = is_fused(act, loss)
    if fused and loss == CATEGORICAL_CROSSENTROPY:
        return softmax_crossentropy(out, Y, labels, rows, sw, out_scale, norm, delta)
    m, k = out.shape
    dtype = out.dtype
    T = batch_targets(Y, labels, rows, k, dtype)
    w = sw[rows].astype(np.float64) if sw.shape[0] > 0 else np.ones(m)
    c = (w * out_scale / norm).astype(dtype)[:, None]

    if fused:
        z = out.copy()
        if loss == BINARY_CROSSENTROPY:
            # log(1 + e^z) - y z, written so that exp never overflows
            row_loss = (np.maximum(z, 0) - T * z + np.log1p(np.exp(-np.abs(z)))).sum(axis=1)
            p = sigmoid(z)
            delta[...] = c * (p - T)
        elif loss == POISSON:
            p = np.exp(z)
            row_loss = (xlogy(T, T) - T * z - T + p).sum(axis=1)
            delta[...] = c * (p - T)
        else:  # linear + squared error
            p = z
            row_loss = ((z - T) ** 2).sum(axis=1)
            delta[...] = c * 2.0 * (z - T)
        out[...] = p
    else:
        a = out
        if loss == SQUARED_ERROR:
            row_loss = ((a - T) ** 2).sum(axis=1)
            grad = 2.0 * (a - T)
        elif loss == POISSON:
            eps = dtype.type(EPS_PROB)
            p = np.maximum(a, eps)
            row_loss = (xlogy(T, T) - T * np.log(p) - T + p).sum(axis=1)
            grad = np.where(a > eps, 1.0 - T / p, 0.0)
        elif loss == ABSOLUTE_ERROR:  # sign(a - y): the subgradient 0 where a = y
            row_loss = np.abs(a - T).sum(axis=1)
            grad = np.sign(a - T)
        elif loss == HUBER:
            h = loss_param[LP_HUBER_DELTA]
            d = a - T
            quadratic = np.abs(d) <= h
            row_loss = np.where(quadratic, 0.5 * d * d, h * (np.abs(d) - 0.5 * h)).sum(axis=1)
            grad = np.where(quadratic, d, h * np.sign(d))
        else:
            eps = dtype.type(EPS_PROB)
            p = np.clip(a, eps, dtype.type(1.0 - EPS_PROB))
            inside = (a > eps) & (a < dtype.type(1.0 - EPS_PROB))  # the clip's slope is 0 outside
            if loss == BINARY_CROSSENTROPY:
                row_loss = -(T * np.log(p) + (1.0 - T) * np.log(1.0 - p)).sum(axis=1)
                grad = np.where(inside, (p - T) / (p * (1.0 - p)), 0.0)
            else:  # categorical cross-entropy on probabilities
                row_loss = -(T * np.log(p)).sum(axis=1)
                grad = np.where(inside, -T / p, 0.0)
        delta[...] = c * grad
        act_backward(a, act, alpha, delta)
    return float((w * out_scale * row_loss.astype(np.float64)).sum())


def output_stats(out, Y, labels, rows, sw, acc_kind, stats):
    """Accumulate a batch's weighted metric sums into ``stats``; as in the kernel."""
    m, k = out.shape
    sparse = labels.shape[0] > 0
    T = batch_targets(Y, labels, rows, k, np.float64)
    w = sw[rows].astype(np.float64) if sw.shape[0] > 0 else np.ones(m)
    a = out.astype(np.float64)
    p = np.clip(out, EPS_PROB, 1.0 - EPS_PROB).astype(np.float64)
    stats[ST_WEIGHT] += w.sum()
    binary_right = ((out > 0.5) == (T > 0.5)).mean(axis=1)
    stats[ST_BIN_CORRECT] += (w * binary_right).sum()
    if acc_kind == ACC_ARGMAX:
        stats[ST_CORRECT] += (w * (a.argmax(axis=1) == T.argmax(axis=1))).sum()
        stats[ST_LOG_LOSS] += (w * -(T * np.log(p)).sum(axis=1)).sum()
    elif acc_kind == ACC_THRESHOLD:
        stats[ST_CORRECT] += (w * binary_right).sum()
        bce = -(T * np.log(p) + (1 - T) * np.log(1 - p)).mean(axis=1)
        stats[ST_LOG_LOSS] += (w * bce).sum()
    if not sparse:
        d = a - T
        stats[ST_ABS_ERR] += (w * np.abs(d).mean(axis=1)).sum()
        stats[ST_SQ_ERR] += (w * (d * d).mean(axis=1)).sum()
        per_output = stats[N_STATS:N_STATS + ST_PER_OUTPUT * k].reshape(k, ST_PER_OUTPUT)
        per_output[:, 0] += w @ T
        per_output[:, 1] += w @ (T * T)
        per_output[:, 2] += w @ (d * d)
