"""Turning user data into what the kernels read: checked float32 inputs, targets (class
indices or dense rows), per-sample weights (sample and class weights), validation splits."""

import numpy as np

from . import codes, labels
from . import metrics as metric_table
from .layers import Dense
from .sparse import CSR
from ._validation import (
    as_labels, as_targets, check_lengths, check_matrix, check_sample_weight, describe,
)


def is_classifier(loss, n_outputs, out_act):
    """Whether targets are class labels: categorical cross-entropy, or binary cross-entropy
    on a single output."""
    return loss.code == codes.CATEGORICAL_CROSSENTROPY or (
        loss.code == codes.BINARY_CROSSENTROPY and n_outputs == 1)


def encode_targets(loss, y, n_outputs, classes, name="y"):
    """``(y_for_loss, classes, class_index)``: labels mapped to indices where the loss takes
    classes; ``class_index`` (n,) int64 is each row's class, or None for other targets."""
    takes_labels = loss.code == codes.CATEGORICAL_CROSSENTROPY or (
        loss.code == codes.BINARY_CROSSENTROPY and n_outputs == 1)
    shape = np.shape(y) if takes_labels and not isinstance(y, (str, bytes)) else None
    if takes_labels and shape is not None and (len(shape) == 1 or shape[1:] == (1,)):
        y = as_labels(y, name)
        index, classes = labels.encode(y, n_outputs, classes,
                                       binary=loss.code == codes.BINARY_CROSSENTROPY, name=name)
        hard = index if index.dtype.kind in "iub" else (index > 0.5)
        return index, classes, hard.astype(np.int64)
    y = as_targets(y, name)
    if loss.code == codes.CATEGORICAL_CROSSENTROPY:
        if y.ndim == 2 and y.shape[1] == 1 and n_outputs > 1:
            y = y[:, 0]
        if y.ndim == 1:
            index, classes = labels.encode(y, n_outputs, classes, binary=False, name=name)
            return index, classes, index
        if classes is None:
            classes = np.arange(n_outputs)
        return y, classes, None if y.shape[1] != n_outputs else np.asarray(y).argmax(axis=1)
    if loss.code == codes.BINARY_CROSSENTROPY and n_outputs == 1:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim == 1:
            index, classes = labels.encode(y, 1, classes, binary=True, name=name)
            hard = index if index.dtype.kind in "iub" else (index > 0.5).astype(np.int64)
            return index, classes, hard.astype(np.int64)
    return y, classes, None


def class_sample_weights(class_weight, class_index, classes, name="class_weight"):
    """Per-sample weights from ``{label: weight}`` or ``"balanced"``
    (``n_samples / (n_classes * count of the class)``, classes present in the data)."""
    if class_index is None:
        raise ValueError(f"{name} applies to class labels (categorical cross-entropy, or binary "
                         f"cross-entropy with one output); this model's targets are not "
                         f"classes")
    counts = np.bincount(class_index, minlength=len(classes))
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"{name} must be a dict {{label: weight}} or 'balanced'; "
                             f"received {class_weight!r}")
        present = counts > 0
        per_class = np.zeros(len(classes))
        per_class[present] = len(class_index) / (present.sum() * counts[present])
    elif isinstance(class_weight, dict):
        per_class = np.ones(len(classes))
        known = {label.item() if hasattr(label, "item") else label: i
                 for i, label in enumerate(np.asarray(classes))}
        for label, weight in class_weight.items():
            key = label.item() if hasattr(label, "item") else label
            if key not in known:
                raise ValueError(f"{name} has a weight for {label!r}, which is not one of the "
                                 f"model's classes {list(known)}")
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) \
                    or not np.isfinite(weight) or weight < 0:
                raise ValueError(f"{name}[{label!r}] must be a finite number >= 0; received "
                                 f"{weight!r}")
            per_class[known[key]] = float(weight)
    else:
        raise TypeError(f"{name} must be a dict {{label: weight}} or 'balanced'; received "
                        f"{describe(class_weight)}")
    return per_class[class_index]


def prepare(model, X, y, sample_weight=None, class_weight=None, names=("X", "y", "sample_weight"),
            n_features=None, loss=None, classes=None):
    """Checked kernel-ready arrays ``(X, Y, labels, sw)`` and the classes they imply, for the
    model's loss and classes (or ``loss`` and ``classes`` when given; the model's metrics are
    then not checked)."""
    x_name, y_name, w_name = names
    X = check_matrix(X, x_name, n_features if n_features is not None else model.n_features,
                     sparse=True)
    if isinstance(X, CSR):
        first = model.layers[0] if model.layers else None
        if not isinstance(first, Dense):
            raise ValueError(f"sparse {x_name} needs a Dense first layer (it reads the stored "
                             f"entries only); this model starts with "
                             f"{type(first).__name__ if first else 'no layer'}")
    if y is None:
        raise TypeError(f"{y_name} must be an array-like of targets; received None")
    check_lengths(X, y if hasattr(y, "__len__") else np.asarray(y), (x_name, y_name))
    n_outputs = model._output_units()
    metrics = model.metrics if loss is None else ()
    loss = model.loss if loss is None else loss
    classes = model.classes_ if classes is None else classes
    y, classes, class_index = encode_targets(loss, y, n_outputs, classes, y_name)
    Y, label_index = loss.targets(y, n_outputs, y_name)
    if label_index.shape[0] > 0:
        for metric in metrics:
            if metric_table.METRICS[metric][1]:
                raise ValueError(f"metric {metric!r} needs dense targets; received class "
                                 f"labels. Pass one-hot rows or drop the metric.")
    sw = check_sample_weight(sample_weight, len(X), w_name)
    if class_weight is not None:
        per_sample = class_sample_weights(class_weight, class_index, classes)
        sw = (per_sample if sw.shape[0] == 0 else sw * per_sample).astype(np.float32)
        if sw.sum() <= 0:
            raise ValueError("class_weight and sample_weight leave every sample with weight 0")
    return (X, Y, label_index, sw), classes, class_index


def take(data, rows):
    """The rows ``rows`` of prepared data ``(X, Y, labels, sw)`` (X dense or ``CSR``)."""
    X, Y, label_index, sw = data
    return (X.take(rows) if isinstance(X, CSR) else np.ascontiguousarray(X[rows]),
            np.ascontiguousarray(Y[rows]) if Y.shape[0] else Y,
            label_index[rows] if label_index.shape[0] else label_index,
            sw[rows] if sw.shape[0] else sw)


def split_rows(n, fraction, rng, strata=None):
    """``(train, validation)`` row indices: a random ``fraction`` for validation, stratified by
    ``strata`` (class of each row) when given, so every class keeps its share."""
    if strata is None:
        order = rng.permutation(n)
        n_val = int(round(n * fraction))
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    val = []
    for c in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == c))
        val.append(members[:int(round(len(members) * fraction))])
    val = np.sort(np.concatenate(val))
    train = np.setdiff1d(np.arange(n), val, assume_unique=True)
    return train, val
