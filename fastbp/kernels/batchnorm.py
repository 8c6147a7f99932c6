"""Compiled batch normalisation, with the following activation fused in.

Training: per feature j, over the batch's rows, ``mean_j``, ``var_j`` (biased), then
``xhat = (x - mean) / sqrt(var + eps)`` and ``a = f(gamma * xhat + beta)``; the running
statistics move towards the batch's: ``run = momentum * run + (1 - momentum) * batch``.
Inference: the running statistics take the batch's place.

NumPy twin: ``fastbp.reference.batchnorm``.
"""

import numpy as np

from .._jit import jit
from .activations import act_forward

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


@jit
def batchnorm_train(x, gamma, beta, code, alpha, momentum, eps, xhat, inv, mean, run_mean,
                    run_var, a):
    """Forward pass with batch statistics.

    Parameters
    ----------
    x : float32 array of shape (m, n)
    gamma, beta : float32 arrays of shape (n,)
    code, alpha : activation applied after the affine map
    momentum, eps : float
    xhat : float32 array of shape (m, n)
        Overwritten with the normalised input (kept for the backward pass).
    inv, mean : float32 arrays of shape (n,)
        Overwritten with 1 / sqrt(var + eps) and the batch mean.
    run_mean, run_var : float32 arrays of shape (n,)
        Running statistics, updated in place.
    a : float32 array of shape (m, n)
        Overwritten with the output.
    """
    m, n = x.shape
    for j in range(n):
        mean[j] = _ZERO
        inv[j] = _ZERO
    for i in range(m):
        for j in range(n):
            mean[j] += x[i, j]
    scale = np.float32(1.0 / m)
    for j in range(n):
        mean[j] *= scale
    for i in range(m):
        for j in range(n):
            d = x[i, j] - mean[j]
            inv[j] += d * d  # the variance's sum, for now
    keep = np.float32(momentum)
    for j in range(n):
        var = inv[j] * scale
        run_mean[j] = keep * run_mean[j] + (_ONE - keep) * mean[j]
        run_var[j] = keep * run_var[j] + (_ONE - keep) * var
        inv[j] = _ONE / np.sqrt(var + np.float32(eps))
    for i in range(m):
        for j in range(n):
            h = (x[i, j] - mean[j]) * inv[j]
            xhat[i, j] = h
            a[i, j] = gamma[j] * h
    act_forward(a, beta, code, alpha)


@jit
def batchnorm_infer(x, gamma, beta, code, alpha, eps, run_mean, run_var, a):
    """Forward pass with the running statistics; x, a (m, n); the rest (n,)."""
    m, n = x.shape
    for i in range(m):
        for j in range(n):
            a[i, j] = gamma[j] * (x[i, j] - run_mean[j]) / np.sqrt(run_var[j] + np.float32(eps))
    act_forward(a, beta, code, alpha)


@jit
def batchnorm_backward(g, xhat, inv, gamma, grad_gamma, grad_beta, delta_in, want_input):
    """Gradients of a batch-normalisation step.

    Parameters
    ----------
    g : float32 array of shape (m, n)
        dL/d(gamma * xhat + beta), the activation's derivative already applied.
    xhat : float32 (m, n); inv : float32 (n,)
        Saved by ``batchnorm_train``.
    grad_gamma, grad_beta : float32 arrays of shape (n,)
        Overwritten with ``sum_i g * xhat`` and ``sum_i g``.
    delta_in : float32 array of shape (m, n)
        Overwritten (when ``want_input``) with dL/dx:
        ``gamma * inv / m * (m g - sum_i g - xhat * sum_i g xhat)``.
    """
    m, n = g.shape
    for j in range(n):
        grad_gamma[j] = _ZERO
        grad_beta[j] = _ZERO
    for i in range(m):
        for j in range(n):
            grad_gamma[j] += g[i, j] * xhat[i, j]
            grad_beta[j] += g[i, j]
    if want_input:
        mf = np.float32(m)
        for i in range(m):
            for j in range(n):
                delta_in[i, j] = (gamma[j] * inv[j] / mf) * (
                    mf * g[i, j] - grad_beta[j] - xhat[i, j] * grad_gamma[j])
