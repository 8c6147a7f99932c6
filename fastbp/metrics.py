"""Metrics of the Model API, each read off the sums that a compiled epoch accumulates.

The kernels add weighted sums into a small ``stats`` vector (``fastbp.codes.ST_*``) as they go,
so training metrics cost one pass over each batch's outputs and no extra forward pass.
Training metrics are running values over the epoch, as in Keras.
"""

from . import codes
from ._validation import describe, lookup


def accuracy(stats):
    """Weighted fraction of correct predictions (argmax for several classes, > 0.5 for 0/1)."""
    return stats[codes.ST_CORRECT] / stats[codes.ST_WEIGHT]


def mse(stats):
    """Weighted mean over samples of the mean squared error over outputs."""
    return stats[codes.ST_SQ_ERR] / stats[codes.ST_WEIGHT]


def mae(stats):
    """Weighted mean over samples of the mean absolute error over outputs."""
    return stats[codes.ST_ABS_ERR] / stats[codes.ST_WEIGHT]


#: name -> (function of the stats vector, needs dense targets)
METRICS = {"accuracy": (accuracy, False), "mse": (mse, True), "mae": (mae, True)}
ALIASES = {"acc": "accuracy", "mean_squared_error": "mse", "mean_absolute_error": "mae"}


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
