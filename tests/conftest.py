"""Shared helpers: small networks described by the same arrays the kernels read.

Naming: results of the NumPy reference are ``ref_*``, results of the compiled kernels ``comp_*``.
"""

import numpy as np
import pytest

from fastbp import codes
from fastbp.layers import Dense
from fastbp.layout import Layout

ACTIVATION_NAMES = sorted(codes.ACTIVATIONS)
LOSS_NAMES = sorted(codes.LOSSES)


class Net:
    """A network's arrays, parameters and buffers, in a chosen float dtype."""

    def __init__(self, sizes, activations, rng, dtype=np.float32, rows=16, l1=0.0, l2=0.0,
                 alpha=None):
        layers = [Dense(units, activation=a, alpha=alpha if a in ("leaky_relu", "elu") else None,
                        l1=l1, l2=l2)
                  for units, a in zip(sizes[1:], activations)]
        self.layout = lay = Layout(sizes[0], layers)
        self.params = (rng.standard_normal(lay.n_params) * 0.5).astype(dtype)
        self.dtype = dtype
        self.rows = rows
        self.act_off, acts, deltas = lay.buffers(rows)
        self.acts = acts.astype(dtype)
        self.deltas = deltas.astype(dtype)
        self.grads = np.zeros(lay.n_params, dtype)

    def arrays(self):
        lay = self.layout
        return lay.sizes, lay.w_off, lay.b_off, lay.act, lay.alpha

    def astype(self, dtype):
        other = object.__new__(Net)
        other.__dict__.update(self.__dict__)
        other.dtype = dtype
        other.params = self.params.astype(dtype)
        other.acts = self.acts.astype(dtype)
        other.deltas = self.deltas.astype(dtype)
        other.grads = self.grads.astype(dtype)
        return other


def targets_for(loss, act, m, k, rng, dtype=np.float32, sparse=False):
    """(Y, labels) suited to the loss: class indices or one-hot, 0/1, or real values."""
    if loss == "categorical_crossentropy":
        labels = rng.integers(0, k, m).astype(np.int64)
        if sparse:
            return np.zeros((0, k), dtype), labels
        return np.eye(k, dtype=dtype)[labels], np.zeros(0, np.int64)
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, (m, k)).astype(dtype), np.zeros(0, np.int64)
    return rng.standard_normal((m, k)).astype(dtype), np.zeros(0, np.int64)


def loss_param(loss, k, norm_by_weight=0.0, per_sample_penalty=0.0):
    from fastbp import losses
    p = losses.get(loss).loss_param(k)
    p[codes.LP_NORM_BY_WEIGHT] = norm_by_weight
    p[codes.LP_PENALTY_PER_SAMPLE] = per_sample_penalty
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
