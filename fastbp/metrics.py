"""Metrics of the Model API, each read off the sums that a compiled epoch accumulates.

The kernels add weighted sums into a small ``stats`` vector (``fastbp.codes.ST_*``, then three
sums per output) as they go, so training metrics cost one pass over each batch's outputs and
no extra forward pass. Training metrics are running values over the epoch, as in Keras; every
metric honours sample and class weights.

==================  ==============================================================
name                value
==================  ==============================================================
accuracy            argmax == class (several outputs), or > 0.5 == label (sigmoid)
binary_accuracy     fraction of outputs on the right side of 0.5
mse, mae            mean over samples of the mean squared / absolute error over outputs
r2                  coefficient of determination, averaged over outputs
log_loss            cross-entropy of the predicted probabilities (clipped to [2^-23, 1-2^-23])
==================  ==============================================================
"""

import numpy as np

from . import codes
from ._validation import describe, lookup


def accuracy(stats):
    return stats[codes.ST_CORRECT] / stats[codes.ST_WEIGHT]


def binary_accuracy(stats):
    return stats[codes.ST_BIN_CORRECT] / stats[codes.ST_WEIGHT]


def mse(stats):
    return stats[codes.ST_SQ_ERR] / stats[codes.ST_WEIGHT]


def mae(stats):
    return stats[codes.ST_ABS_ERR] / stats[codes.ST_WEIGHT]


def log_loss(stats):
    return stats[codes.ST_LOG_LOSS] / stats[codes.ST_WEIGHT]


def r2(stats):
    """1 - SS_res / SS_tot per output, averaged (1 or 0 for a constant target, as scikit-learn)."""
    per_output = stats[codes.N_STATS:].reshape(-1, codes.ST_PER_OUTPUT)
    w = stats[codes.ST_WEIGHT]
    sum_y, sum_y2, ss_res = per_output[:, 0], per_output[:, 1], per_output[:, 2]
    ss_tot = sum_y2 - sum_y * sum_y / w
    scores = np.where(ss_tot > 1e-12 * np.maximum(sum_y2, 1e-300),
                      1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                      np.where(ss_res <= 1e-12 * np.maximum(sum_y2, 1e-300), 1.0, 0.0))
    return float(scores.mean())


#: name -> (function of the stats vector, needs dense targets, needs class probabilities)
METRICS = {
    "accuracy": (accuracy, False, False),
    "binary_accuracy": (binary_accuracy, False, False),
    "mse": (mse, True, False),
    "mae": (mae, True, False),
    "r2": (r2, True, False),
    "log_loss": (log_loss, False, True),
}
ALIASES = {"acc": "accuracy", "mean_squared_error": "mse", "mean_absolute_error": "mae",
           "r2_score": "r2", "crossentropy": "log_loss", "logloss": "log_loss"}


def get(names):
    """Canonical metric names from a list of names (or None)."""
    if names is None:
        return []
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise TypeError(f"metrics must be a list of names such as ['accuracy']; "
                        f"received {describe(names)}")
    resolved = []
    for name in names:
        key, _ = lookup(METRICS, ALIASES, name, "metric")
        if key not in resolved:
            resolved.append(key)
    return resolved


def compute(names, stats):
    """``{name: value}`` from an epoch's (or an evaluation's) summed stats."""
    return {name: float(METRICS[name][0](stats)) for name in names}
