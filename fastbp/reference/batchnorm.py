"""Batch normalisation in plain NumPy: the oracle for ``fastbp.kernels.batchnorm``."""

import numpy as np

from .activations import act_forward


def batchnorm_train(x, gamma, beta, code, alpha, momentum, eps, xhat, inv, mean, run_mean,
                    run_var, a):
    """Forward with batch statistics; fills xhat (m, n), inv and mean (n,); moves the running
    statistics; ``a = f(gamma * xhat + beta)``."""
    mean[...] = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    run_mean[...] = momentum * run_mean + (1.0 - momentum) * mean
    run_var[...] = momentum * run_var + (1.0 - momentum) * var
    inv[...] = 1.0 / np.sqrt(var + eps)
    xhat[...] = (x - mean) * inv
    a[...] = gamma * xhat
    act_forward(a, beta, code, alpha)


def batchnorm_infer(x, gamma, beta, code, alpha, eps, run_mean, run_var, a):
    """Forward with the running statistics: ``a = f(gamma (x - mean) / sqrt(var + eps) + beta)``."""
    a[...] = gamma * (x - run_mean) / np.sqrt(run_var + eps)
    act_forward(a, beta, code, alpha)


def batchnorm_backward(g, xhat, inv, gamma, grad_gamma, grad_beta, delta_in, want_input):
    """Gradients: dL/dgamma = sum g xhat, dL/dbeta = sum g, and (when wanted) dL/dx =
    gamma inv / m (m g - sum g - xhat sum g xhat)."""
    m = g.shape[0]
    grad_gamma[...] = (g * xhat).sum(axis=0)
    grad_beta[...] = g.sum(axis=0)
    if want_input:
        delta_in[...] = gamma * inv / m * (m * g - grad_beta - xhat * grad_gamma)
