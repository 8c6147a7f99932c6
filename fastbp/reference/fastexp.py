"""The exponential and tanh in plain NumPy: the oracle for ``fastbp.kernels.fastexp``."""

import numpy as np


def exp_inplace(a):
    """``a = exp(a)`` elementwise, in place; a of shape (N,), any float dtype."""
    np.exp(a, out=a)


def tanh_inplace(a):
    """``a = tanh(a)`` elementwise, in place; a of shape (N,), any float dtype."""
    np.tanh(a, out=a)
