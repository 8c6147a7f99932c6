"""Activations in plain NumPy: the oracle for ``fastbp.kernels.activations``.

Each activation is a pair of functions: ``f(z, alpha)`` and its derivative written in terms
of the output, ``f'(a, alpha)`` with ``a = f(z)``. Works in any float dtype.
"""

import numpy as np

from ..codes import ELU, EXP, LEAKY_RELU, LINEAR, RELU, SIGMOID, SOFTMAX, TANH


def sigmoid(x):
    """``1 / (1 + exp(-x))`` elementwise, without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    s = 1.0 / (1.0 + e)
    return np.where(x >= 0, s, e * s)


def linear(z, alpha):
    return z


def linear_derivative(a, alpha):
    return np.ones_like(a)


def relu(z, alpha):
    return np.maximum(z, 0.0)


def relu_derivative(a, alpha):
    return (a > 0).astype(a.dtype)


def leaky_relu(z, alpha):
    return np.where(z > 0, z, alpha * z)


def leaky_relu_derivative(a, alpha):
    return np.where(a > 0, 1.0, alpha).astype(a.dtype)


def elu(z, alpha):
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def elu_derivative(a, alpha):
    # for z <= 0, a = alpha (e^z - 1), so f'(z) = alpha e^z = a + alpha
    return np.where(a > 0, 1.0, a + alpha).astype(a.dtype)


def sigmoid_act(z, alpha):
    return sigmoid(z)


def sigmoid_derivative(a, alpha):
    return a * (1.0 - a)


def tanh(z, alpha):
    return np.tanh(z)


def tanh_derivative(a, alpha):
    return 1.0 - a * a


def exponential(z, alpha):
    return np.exp(z)


def exponential_derivative(a, alpha):
    return a


def softmax(z, alpha):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


#: code -> (forward, derivative from the output). Softmax's derivative is a Jacobian and is
#: applied in ``act_backward`` directly.
ACTIVATIONS = {
    LINEAR: (linear, linear_derivative),
    RELU: (relu, relu_derivative),
    LEAKY_RELU: (leaky_relu, leaky_relu_derivative),
    ELU: (elu, elu_derivative),
    SIGMOID: (sigmoid_act, sigmoid_derivative),
    TANH: (tanh, tanh_derivative),
    SOFTMAX: (softmax, None),
    EXP: (exponential, exponential_derivative),
}


def act_forward(a, bias, code, alpha):
    """``a = f(a + bias)`` in place; a of shape (m, n) holds the pre-activation without the
    bias on entry, bias has shape (n,)."""
    forward, _ = ACTIVATIONS[code]
    a[...] = forward(a + bias, alpha)


def act_backward(a, code, alpha, delta):
    """``delta = delta * f'(z)``, from the output ``a``; both of shape (m, n), delta overwritten."""
    if code == SOFTMAX:
        # Jacobian of softmax: da_j/dz_k = a_j (1[j == k] - a_k)
        delta[...] = a * (delta - (delta * a).sum(axis=1, keepdims=True))
    else:
        _, derivative = ACTIVATIONS[code]
        delta *= derivative(a, alpha)


def softmax_rows(a, bias):
    """``a = softmax(a + bias)`` row by row, in place; a (m, n), bias (n,)."""
    a[...] = softmax(a + bias, 0.0)


def elu_inplace(a, scale):
    """``a = a if a > 0 else scale * (e^a - 1)``, in place; a of shape (N,)."""
    a[...] = elu(a, scale)
