"""Inverted dropout in plain NumPy: the oracle for ``fastbp.kernels.dropout``.

Unit j of row r at step t in op k is kept when ``uniform(seed, t, k, r, j) >= rate``, a
SplitMix64 hash of the five integers, so both implementations draw the same masks.
"""

import numpy as np

_K = [np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                             0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD)]
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def uniform(seed, step, op, row, unit):
    """Floats in [0, 1) (24 random bits) for broadcastable integer arrays of the five indices."""
    with np.errstate(over="ignore"):  # multiplication modulo 2**64 is the point
        parts = [np.asarray(v, dtype=np.uint64) * k
                 for v, k in zip((seed, step, op, row, unit), _K)]
        x = parts[0] ^ parts[1] ^ parts[2] ^ parts[3] ^ parts[4]
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)


def dropout_mask_apply(x, rows, rate, seed, step, op, out):
    """``out = x * mask / (1 - rate)``; x, out (m, n), rows (m,) the data rows of the batch."""
    m, n = x.shape
    u = uniform(seed, step, op, np.asarray(rows)[:, None], np.arange(n)[None, :])
    keep = u >= np.float32(rate)
    out[...] = np.where(keep, x * (1.0 / (1.0 - rate)), 0.0)
