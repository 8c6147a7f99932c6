"""Compiled losses: the loss value and the output delta dL/dz in one pass.

Three pairs of output activation and loss take a fused shortcut that works from the logits
``z`` and never forms a log of a probability:

* softmax + categorical cross-entropy: ``delta = p * sum(y) - y`` with ``p = softmax(z)``,
  loss ``logsumexp(z) - z . y``;
* sigmoid + binary cross-entropy: ``delta = sigmoid(z) - y``,
  loss ``max(z, 0) - y z + log1p(exp(-|z|))``;
* linear + squared error: ``delta = 2 (z - y)``;
* exponential + Poisson deviance: ``delta = exp(z) - y``, loss ``y log(y) - y z - y + exp(z)``.

Every other pair goes through the general chain rule: ``dL/da`` from the loss, then the
activation's derivative (``act_backward``).

Conventions for a batch of m rows with sample weights w (all ones when none are given):
the per-row loss is ``out_scale * sum over outputs``; the batch loss is
``sum_i w_i loss_i / norm`` where ``norm`` is m or sum(w) (``fastbp.codes.LP_NORM_BY_WEIGHT``);
``delta`` is the gradient of that batch loss with respect to ``z``.

NumPy twin: ``fastbp.reference.losses``.
"""

import numpy as np

from .._jit import jit
from ..codes import (
    ABSOLUTE_ERROR, ACC_ARGMAX, ACC_THRESHOLD, BINARY_CROSSENTROPY, CATEGORICAL_CROSSENTROPY,
    EPS_PROB, EXP, HUBER, LINEAR, POISSON, LP_HUBER_DELTA, LP_OUT_SCALE, N_STATS, SIGMOID,
    SOFTMAX, SQUARED_ERROR, ST_ABS_ERR,
    ST_BIN_CORRECT, ST_CORRECT, ST_LOG_LOSS, ST_PER_OUTPUT, ST_SQ_ERR, ST_WEIGHT,
)
from .activations import act_backward, sigmoid
from .fastexp import exp_inplace
from .views import flat

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_TWO = np.float32(2.0)
_EPS = np.float32(EPS_PROB)
_ONE_MINUS_EPS = np.float32(1.0 - EPS_PROB)


@jit(inline="always")
def is_fused(act, loss):
    """True when ``act`` is the natural output activation of ``loss`` (fused shortcut)."""
    return ((act == SOFTMAX and loss == CATEGORICAL_CROSSENTROPY)
            or (act == SIGMOID and loss == BINARY_CROSSENTROPY)
            or (act == LINEAR and loss == SQUARED_ERROR)
            or (act == EXP and loss == POISSON))


@jit
def softmax_crossentropy(out, Y, labels, rows, sw, out_scale, norm, delta):
    """Fused softmax + categorical cross-entropy of a batch: ``loss_delta``'s shortcut.

    With s = z - max(z) per row (so that no exponential overflows) and e = exp(s):
    p = e / sum(e), loss ``sum(y) log(sum(e)) - y . s``, ``delta = c (p sum(y) - y)``, one
    exponential per logit, all of them in one vectorised pass over the block.

    out : float32 (m, k), C-contiguous: logits on entry, probabilities on return.
    delta : float32 (m, k): overwritten; ``delta[i, 0]`` holds ``y . s`` between the passes.
    Other arguments and the return value as ``loss_delta``.
    """
    m, k = out.shape
    sparse = labels.shape[0] > 0
    weighted = sw.shape[0] > 0
    for i in range(m):
        r = rows[i]
        top = out[i, 0]
        for j in range(1, k):
            if out[i, j] > top:
                top = out[i, j]
        y_dot_s = _ZERO
        for j in range(k):
            s = out[i, j] - top
            out[i, j] = s
            if not sparse:
                y_dot_s += Y[r, j] * s
        delta[i, 0] = out[i, labels[r]] if sparse else y_dot_s
    exp_inplace(flat(out))
    total = 0.0
    for i in range(m):
        r = rows[i]
        w = sw[r] if weighted else _ONE
        c = np.float32(w * out_scale / norm)
        y_sum = _ONE
        if not sparse:
            y_sum = _ZERO
            for j in range(k):
                y_sum += Y[r, j]
        sum_e = _ZERO
        for j in range(k):
            sum_e += out[i, j]
        total += w * out_scale * (y_sum * np.log(sum_e) - delta[i, 0])
        inv = _ONE / sum_e
        for j in range(k):
            p = out[i, j] * inv
            out[i, j] = p
            delta[i, j] = c * p * y_sum
        if sparse:
            delta[i, labels[r]] -= c
        else:
            for j in range(k):
                delta[i, j] -= c * Y[r, j]
    return total


@jit
def loss_delta(loss, act, alpha, out, Y, labels, rows, sw, loss_param, norm, delta):
    """Loss of a batch and its gradient with respect to the output pre-activation.

    Parameters
    ----------
    loss, act : int
        Loss code and output-activation code.
    alpha : float
        Parameter of the output activation.
    out : float32 array of shape (m, k)
        If ``is_fused(act, loss)``: the logits z on entry, overwritten with ``f(z)``.
        Otherwise: the activations ``f(z)``, left unchanged.
    Y : float32 array of shape (n, k), or (0, k) when ``labels`` is used
        Dense targets (one-hot, 0/1 or real values).
    labels : int64 array of shape (n,), or (0,)
        Class indices, used by categorical cross-entropy when given.
    rows : int64 array of shape (m,)
        Which rows of ``Y`` / ``labels`` / ``sw`` the batch holds, in order.
    sw : float32 array of shape (n,), or (0,) for unit weights
    loss_param : float64 array of shape (N_LOSS_PARAM,)
    norm : float
        The batch normaliser (row count or weight sum).
    delta : float32 array of shape (m, k)
        Overwritten with dL/dz of the batch loss (already divided by ``norm``).

    Returns
    -------
    float
        ``sum_i w_i * loss_i`` (not yet divided by ``norm``).
    """
    m, k = out.shape
    out_scale = loss_param[LP_OUT_SCALE]
    sparse = labels.shape[0] > 0
    weighted = sw.shape[0] > 0
    total = 0.0
    fused = is_fused(act, loss)
    if fused and loss == CATEGORICAL_CROSSENTROPY:
        return softmax_crossentropy(out, Y, labels, rows, sw, out_scale, norm, delta)
    for i in range(m):
        r = rows[i]
        w = sw[r] if weighted else _ONE
        c = np.float32(w * out_scale / norm)
        row_loss = _ZERO
        if fused and loss == BINARY_CROSSENTROPY:
            for j in range(k):
                z = out[i, j]
                y = Y[r, j]
                row_loss += max(z, _ZERO) - y * z + np.log1p(np.exp(-abs(z)))
                p = sigmoid(z)
                out[i, j] = p
                delta[i, j] = c * (p - y)
        elif fused and loss == POISSON:
            for j in range(k):
                z = out[i, j]
                y = Y[r, j]
                p = np.exp(z)
                xlogy = y * np.log(y) if y > _ZERO else _ZERO
                row_loss += xlogy - y * z - y + p
                out[i, j] = p
                delta[i, j] = c * (p - y)
        elif fused:  # linear + squared error
            for j in range(k):
                d = out[i, j] - Y[r, j]
                row_loss += d * d
                delta[i, j] = _TWO * c * d
        elif loss == SQUARED_ERROR:
            for j in range(k):
                d = out[i, j] - Y[r, j]
                row_loss += d * d
                delta[i, j] = _TWO * c * d
        elif loss == ABSOLUTE_ERROR:  # the subgradient 0 where a = y, as Keras and PyTorch
            for j in range(k):
                d = out[i, j] - Y[r, j]
                row_loss += abs(d)
                delta[i, j] = c if d > _ZERO else (-c if d < _ZERO else _ZERO)
        elif loss == HUBER:
            h = np.float32(loss_param[LP_HUBER_DELTA])
            for j in range(k):
                d = out[i, j] - Y[r, j]
                if abs(d) <= h:
                    row_loss += _HALF * d * d
                    delta[i, j] = c * d
                else:
                    row_loss += h * (abs(d) - _HALF * h)
                    delta[i, j] = c * h if d > _ZERO else -c * h
        elif loss == POISSON:
            for j in range(k):
                a = out[i, j]
                y = Y[r, j]
                p = max(a, _EPS)
                xlogy = y * np.log(y) if y > _ZERO else _ZERO
                row_loss += xlogy - y * np.log(p) - y + p
                delta[i, j] = c * (_ONE - y / p) if a > _EPS else _ZERO
        elif loss == BINARY_CROSSENTROPY:
            for j in range(k):
                a = out[i, j]
                y = Y[r, j]
                p = min(max(a, _EPS), _ONE_MINUS_EPS)
                row_loss -= y * np.log(p) + (_ONE - y) * np.log(_ONE - p)
                if _EPS < a < _ONE_MINUS_EPS:
                    delta[i, j] = c * (p - y) / (p * (_ONE - p))
                else:
                    delta[i, j] = _ZERO
        else:  # categorical cross-entropy on probabilities that are not a fused softmax
            for j in range(k):
                delta[i, j] = _ZERO
            for j in range(k):
                y = (_ONE if labels[r] == j else _ZERO) if sparse else Y[r, j]
                if y != _ZERO:
                    a = out[i, j]
                    p = min(max(a, _EPS), _ONE_MINUS_EPS)
                    row_loss -= y * np.log(p)
                    if _EPS < a < _ONE_MINUS_EPS:
                        delta[i, j] = -c * y / p
        total += w * out_scale * row_loss
    if not fused:
        act_backward(out, act, alpha, delta)
    return total


@jit
def output_stats(out, Y, labels, rows, sw, acc_kind, stats):
    """Accumulate a batch's weighted metric sums into ``stats``.

    Parameters
    ----------
    out : float32 array of shape (m, k)
        Output activations.
    Y, labels, rows, sw
        As in ``loss_delta``.
    acc_kind : int
        ``ACC_ARGMAX``: accuracy is argmax == class, log loss that of the class probability.
        ``ACC_THRESHOLD``: accuracy is the fraction of outputs right at 0.5, log loss the
        binary one (mean over outputs). ``ACC_NONE``: neither.
    stats : float64 array of shape (N_STATS + 3 k,)
        Incremented: ``ST_WEIGHT``, ``ST_CORRECT``, ``ST_BIN_CORRECT``, ``ST_LOG_LOSS`` and,
        for dense targets, ``ST_ABS_ERR``, ``ST_SQ_ERR`` and per output j the sums of
        ``w y``, ``w y^2``, ``w (y - a)^2`` at ``N_STATS + 3 j``.
    """
    m, k = out.shape
    sparse = labels.shape[0] > 0
    weighted = sw.shape[0] > 0
    for i in range(m):
        r = rows[i]
        w = 1.0 if not weighted else float(sw[r])
        stats[ST_WEIGHT] += w
        right = 0
        for j in range(k):
            y = (_ONE if labels[r] == j else _ZERO) if sparse else Y[r, j]
            if (out[i, j] > _HALF) == (y > _HALF):
                right += 1
        stats[ST_BIN_CORRECT] += w * right / k
        if acc_kind == ACC_ARGMAX:
            best = 0
            for j in range(1, k):
                if out[i, j] > out[i, best]:
                    best = j
            if sparse:
                hit = best == labels[r]
                log_loss = -np.log(min(max(out[i, labels[r]], _EPS), _ONE_MINUS_EPS))
            else:
                target = 0
                log_loss = _ZERO
                for j in range(k):
                    if Y[r, j] > Y[r, target]:
                        target = j
                    p = min(max(out[i, j], _EPS), _ONE_MINUS_EPS)
                    log_loss -= Y[r, j] * np.log(p)
                hit = best == target
            if hit:
                stats[ST_CORRECT] += w
            stats[ST_LOG_LOSS] += w * log_loss
        elif acc_kind == ACC_THRESHOLD:
            stats[ST_CORRECT] += w * right / k
            log_loss = _ZERO
            for j in range(k):
                y = (_ONE if labels[r] == j else _ZERO) if sparse else Y[r, j]
                p = min(max(out[i, j], _EPS), _ONE_MINUS_EPS)
                log_loss -= y * np.log(p) + (_ONE - y) * np.log(_ONE - p)
            stats[ST_LOG_LOSS] += w * log_loss / k
        if not sparse:
            abs_err = 0.0
            sq_err = 0.0
            for j in range(k):
                y = float(Y[r, j])
                d = float(out[i, j]) - y
                abs_err += abs(d)
                sq_err += d * d
                base = N_STATS + ST_PER_OUTPUT * j
                stats[base] += w * y
                stats[base + 1] += w * y * y
                stats[base + 2] += w * d * d
            stats[ST_ABS_ERR] += w * abs_err / k
            stats[ST_SQ_ERR] += w * sq_err / k
