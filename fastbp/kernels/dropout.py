"""Compiled inverted dropout with counter-based random numbers.

Whether unit j of row r is kept at training step t in operation k is a pure function of
``(seed, t, k, r, j)``: a SplitMix64 hash of the five numbers. Nothing is stored between the
forward and the backward pass (the mask is recomputed), shards need no shared generator, and
the NumPy reference draws exactly the same masks.

NumPy twin: ``fastbp.reference.dropout``.
"""

import numpy as np

from .._jit import jit

_K_SEED = np.uint64(0x9E3779B97F4A7C15)
_K_STEP = np.uint64(0xC2B2AE3D27D4EB4F)
_K_OP = np.uint64(0x165667B19E3779F9)
_K_ROW = np.uint64(0xD6E8FEB86659FD93)
_K_UNIT = np.uint64(0xFF51AFD7ED558CCD)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S40 = np.uint64(40)
_TO_UNIT = np.float32(2.0 ** -24)
_ZERO = np.float32(0.0)


@jit(inline="always")
def uniform(seed, step, op, row, unit):
    """A float32 in [0, 1) determined by the five integers (24 random bits)."""
    x = (np.uint64(seed) * _K_SEED) ^ (np.uint64(step) * _K_STEP) ^ (np.uint64(op) * _K_OP) \
        ^ (np.uint64(row) * _K_ROW) ^ (np.uint64(unit) * _K_UNIT)
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    x = x ^ (x >> _S31)
    return np.float32(x >> _S40) * _TO_UNIT


@jit
def dropout_mask_apply(x, rows, rate, seed, step, op, out):
    """``out[i, j] = x[i, j] / (1 - rate)`` where unit j of row ``rows[i]`` is kept, else 0.

    Used both ways: forward (x = input, out = output) and backward (x = dL/d output,
    out = dL/d input), since the mask is the same function of the indices.

    x, out : float32 (m, n); rows : int64 (m,); rate : float in [0, 1); seed, step, op : int
    """
    m, n = x.shape
    r32 = np.float32(rate)
    scale = np.float32(1.0 / (1.0 - rate))
    for i in range(m):
        row = rows[i]
        for j in range(n):
            keep = uniform(seed, step, op, row, j) >= r32
            out[i, j] = x[i, j] * scale if keep else _ZERO
