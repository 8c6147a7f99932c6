"""Losses of the Model API: name -> code, the loss's parameters, and how it reads targets.

The formulas themselves live in ``fastbp.kernels.losses`` (compiled) and
``fastbp.reference.losses`` (NumPy). A loss object here only knows its code, its parameters,
and how to turn user targets into what the kernels read.

===========================  ===============================================  ==========
name                         per-sample loss                                  targets
===========================  ===============================================  ==========
squared_error (mse)          mean over outputs of (a - y)^2                   real
huber                        mean over outputs of 0.5 d^2 or delta(|d| - delta/2)  real
absolute_error (mae)         mean over outputs of |a - y|                     real
binary_crossentropy          mean over outputs of -y log a - (1-y) log(1-a)   0/1 (or in [0, 1])
categorical_crossentropy     -sum_j y_j log a_j                               class index or one-hot
poisson                      mean over outputs of y log(y / a) - y + a        counts >= 0
===========================  ===============================================  ==========

The cross-entropies take Keras's ``from_logits`` (the model's last layer is linear and its
outputs are logits: the loss applies the softmax or sigmoid itself, fused with the loss, and
``predict`` returns the logits) and ``label_smoothing`` (targets pulled towards uniform:
``y (1 - s) + s / k`` for k classes, ``y (1 - s) + s / 2`` for binary outputs).
"""

import numpy as np

from . import codes
from ._validation import as_targets, check_float, describe, lookup, to_float32


class Loss:
    """Base class; subclasses set ``name`` and ``code`` and may override ``targets``."""

    name = None
    code = None
    #: the output activation whose outputs the loss reads when ``from_logits`` (None: no logits)
    logits_activation = None
    from_logits = False

    def loss_param(self, n_outputs):
        """float64 array of shape (N_LOSS_PARAM,) read by the kernels."""
        p = np.zeros(codes.N_LOSS_PARAM)
        p[codes.LP_OUT_SCALE] = 1.0 / n_outputs  # mean over outputs
        return p

    def targets(self, y, n_outputs, name="y"):
        """Dense float32 targets (n, k) and an empty label array, checked."""
        y = as_targets(y, name)
        if y.ndim == 1:
            if n_outputs != 1:
                raise ValueError(f"{name} must have shape (n_samples, {n_outputs}) for a model "
                                 f"with {n_outputs} outputs; received shape {y.shape}")
            y = y.reshape(-1, 1)
        if y.shape[1] != n_outputs:
            raise ValueError(f"{name} must have {n_outputs} column(s), one per model output; "
                             f"received shape {y.shape}")
        return to_float32(y, name), np.zeros(0, np.int64)

    def get_config(self):
        return {"name": self.name}

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The loss of predictions ``y_pred`` (n, k), the model's outputs, against ``y_true``,
        averaged over the rows (weighted by ``sample_weight`` and divided by n, as Keras's
        default reduction): ``loss_fn(y, model(x))`` as in a hand-written training loop.
        Computed in float64 by the NumPy reference (``fastbp.reference.losses``)."""
        from ._validation import check_sample_weight
        from .reference.losses import loss_delta
        out = np.array(as_targets(y_pred, "y_pred"), np.float64, ndmin=2)
        if out.shape[0] == 1 and np.ndim(y_pred) == 1:
            out = out.reshape(-1, 1)
        n, k = out.shape
        Y, labels = self.targets(y_true, k, "y_true")
        sw = check_sample_weight(sample_weight, n, "sample_weight").astype(np.float64)
        rows = np.arange(n)
        # the outputs as given: an activation that no loss is fused with (``LINEAR`` is, with
        # squared error, where fused and unfused are the same formula); logits: the activation
        # the loss is fused with, which reads them as logits
        act = self.logits_activation if self.from_logits else codes.LINEAR
        total = loss_delta(self.code, act, 0.0, out, Y.astype(np.float64), labels,
                           rows, sw, self.loss_param(k), float(n), np.empty_like(out))
        return float(total / n)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SquaredError(Loss):
    """Mean over outputs of the squared error (Keras' ``mse``)."""

    name = "squared_error"
    code = codes.SQUARED_ERROR


class Huber(Loss):
    """Huber loss: quadratic for |a - y| <= delta, linear beyond; mean over outputs."""

    name = "huber"
    code = codes.HUBER

    def __init__(self, delta=1.0):
        self.delta = check_float(delta, "delta", low=0.0, low_open=True)

    def loss_param(self, n_outputs):
        p = super().loss_param(n_outputs)
        p[codes.LP_HUBER_DELTA] = self.delta
        return p

    def get_config(self):
        return {"name": self.name, "delta": self.delta}


class MeanAbsoluteError(Loss):
    """Mean over outputs of the absolute error (Keras' ``mae``); its gradient is the sign."""

    name = "absolute_error"
    code = codes.ABSOLUTE_ERROR


class _Crossentropy(Loss):
    """What the cross-entropies share: ``from_logits`` and ``label_smoothing``."""

    def __init__(self, from_logits=False, label_smoothing=0.0):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits must be True or False; received "
                            f"{describe(from_logits)}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", low=0.0,
                                           high=1.0)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class BinaryCrossentropy(_Crossentropy):
    """Binary cross-entropy, mean over outputs; fused with a sigmoid output (works from logits)."""

    name = "binary_crossentropy"
    code = codes.BINARY_CROSSENTROPY
    logits_activation = codes.SIGMOID

    def targets(self, y, n_outputs, name="y"):
        Y, labels = super().targets(y, n_outputs, name)
        if Y.min() < 0 or Y.max() > 1:
            raise ValueError(f"{name} must hold 0/1 labels (or probabilities in [0, 1]) for "
                             f"binary cross-entropy; received values in [{Y.min()}, {Y.max()}]")
        if self.label_smoothing:
            s = np.float32(self.label_smoothing)
            Y = Y * (np.float32(1.0) - s) + np.float32(0.5) * s
        return Y, labels


class CategoricalCrossentropy(_Crossentropy):
    """Categorical cross-entropy; targets are class indices (n,) or one-hot rows (n, k).

    Fused with a softmax output (works from logits through log-sum-exp).
    """

    name = "categorical_crossentropy"
    code = codes.CATEGORICAL_CROSSENTROPY
    logits_activation = codes.SOFTMAX

    def loss_param(self, n_outputs):
        p = super().loss_param(n_outputs)
        p[codes.LP_OUT_SCALE] = 1.0  # a sum over classes by definition
        return p

    def targets(self, y, n_outputs, name="y"):
        Y, labels = self._classes(y, n_outputs, name)
        if self.label_smoothing:  # dense rows pulled towards uniform
            if labels.shape[0]:
                Y = np.eye(n_outputs, dtype=np.float32)[labels]
                labels = np.zeros(0, np.int64)
            s = np.float32(self.label_smoothing)
            Y = Y * (np.float32(1.0) - s) + s / np.float32(n_outputs)
        return Y, labels

    def _classes(self, y, n_outputs, name):
        y = as_targets(y, name)
        if y.ndim == 2 and y.shape[1] == 1 and n_outputs > 1:
            y = y[:, 0]
        if y.ndim == 1:
            if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
                raise ValueError(f"{name} must hold integer class labels in [0, {n_outputs}) "
                                 f"(or one-hot rows); received non-integer values such as "
                                 f"{y[y != np.round(y)][0]}")
            if y.min() < 0 or y.max() >= n_outputs:
                raise ValueError(f"{name} holds class labels out of range: expected integers in "
                                 f"[0, {n_outputs}) for a model with {n_outputs} outputs; "
                                 f"received values in [{y.min()}, {y.max()}]")
            return np.zeros((0, n_outputs), np.float32), np.ascontiguousarray(y, dtype=np.int64)
        if y.shape[1] != n_outputs:
            raise ValueError(f"{name} must be class labels of shape (n_samples,) or one-hot rows "
                             f"of shape (n_samples, {n_outputs}); received shape {y.shape}")
        Y = to_float32(y, name)
        if Y.min() < 0:
            raise ValueError(f"{name} one-hot rows must be non-negative; received {Y.min()}")
        return Y, np.zeros(0, np.int64)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy on class indices (n,) (Keras's name for it); one-hot rows are
    refused. As Keras's, it takes ``from_logits`` and no ``label_smoothing``."""

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False):
        super().__init__(from_logits)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}

    def targets(self, y, n_outputs, name="y"):
        if np.ndim(y) == 2 and np.shape(y)[1] > 1:
            raise ValueError(f"{name} must hold class indices of shape (n_samples,) for "
                             f"sparse_categorical_crossentropy; received one-hot rows of shape "
                             f"{np.shape(y)} (use categorical_crossentropy)")
        return super().targets(y, n_outputs, name)


#: Keras's class names for the same losses
MeanSquaredError = SquaredError


class Poisson(Loss):
    """Poisson deviance, mean over outputs: ``y log(y / a) - y + a``; targets >= 0.

    Fused with an ``exponential`` output (a log link): ``delta = exp(z) - y``.
    """

    name = "poisson"
    code = codes.POISSON

    def targets(self, y, n_outputs, name="y"):
        Y, labels = super().targets(y, n_outputs, name)
        if Y.min() < 0:
            raise ValueError(f"{name} must be >= 0 for the Poisson loss; received values down "
                             f"to {Y.min()}")
        return Y, labels


#: name -> class; the single table the API resolves loss names through.
LOSSES = {cls.name: cls for cls in (SquaredError, Huber, MeanAbsoluteError, BinaryCrossentropy,
                                    CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                    Poisson)}
assert {cls.code for cls in LOSSES.values()} == set(codes.LOSSES.values())


def get(loss):
    """A Loss from a name (``"mse"``, ``"huber"``, ...), a config dict, or a Loss instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, dict):
        config = dict(loss)
        name, cls = lookup(LOSSES, codes.LOSS_ALIASES, config.pop("name", None), "loss")
        return cls(**config)
    if loss is None or not isinstance(loss, str):
        raise TypeError(f"loss must be a loss name such as 'mse' or 'categorical_crossentropy', "
                        f"or a fastbp.losses.Loss; received {describe(loss)}")
    _, cls = lookup(LOSSES, codes.LOSS_ALIASES, loss, "loss")
    return cls()
