"""Class labels: any labels in, class indices to the kernels, the same labels back out.

A classifier's output units stand for its classes ``classes_``. Labels that already are the
indices 0 .. k-1 are used as they are; any other labels (strings, or integers such as
3, 7, 9) are sorted and numbered at the first fit, and that numbering holds for the model's
life: later data with a label it has not seen is an error.
"""

import numpy as np

from ._validation import describe


def is_index_labels(y, k):
    """True when the 1-D numeric ``y`` holds only integers in [0, k)."""
    if y.dtype.kind not in "biuf":
        return False
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        return False
    return bool(y.min() >= 0 and y.max() < k)


def encode(y, n_outputs, classes, binary, name="y"):
    """Map 1-D labels to class indices.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Numbers or strings (``fastbp._validation.as_labels``).
    n_outputs : int
        Units of the output layer (the number of classes; 1 for a single sigmoid).
    classes : ndarray or None
        The model's classes from an earlier fit, or None.
    binary : bool
        A single sigmoid output: two classes, encoded 0 and 1.

    Returns
    -------
    indices : ndarray of shape (n,), int64 (or float for soft binary targets)
    classes : ndarray
        The classes (new or unchanged).
    """
    n_classes = 2 if binary else n_outputs
    if classes is None:
        numeric = y.dtype.kind in "biuf"
        if binary and numeric and y.min() >= 0 and y.max() <= 1:
            return y, np.arange(2)  # 0/1 labels, or probabilities: used as they are
        if numeric and is_index_labels(y, n_classes):
            return y.astype(np.int64), np.arange(n_classes)
        if numeric and y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
            raise ValueError(f"{name} must hold class labels; received non-integer values such "
                             f"as {y[y != np.round(y)][0]}")
        classes = np.unique(y)
        if len(classes) > n_classes:
            raise ValueError(f"{name} holds {len(classes)} distinct classes, but the output "
                             f"layer has room for {n_classes}: expected at most {n_classes} "
                             f"labels (received {_some(classes)})")
        return np.searchsorted(classes, y).astype(np.int64), classes
    if binary and len(classes) == 2 and np.array_equal(classes, np.arange(2)) \
            and y.dtype.kind in "biuf" and y.min() >= 0 and y.max() <= 1:
        return y, classes
    try:
        position = np.searchsorted(classes, y)
        position = np.minimum(position, len(classes) - 1)
        known = classes[position] == y
    except TypeError:
        raise ValueError(f"{name} holds labels of another kind than the model's classes "
                         f"{_some(classes)}; received {describe(y)}") from None
    if not np.all(known):
        unseen = np.unique(y[~known])
        raise ValueError(f"{name} holds class labels out of range: expected labels among the "
                         f"model's classes {_some(classes)}; received {_some(unseen)}")
    return position.astype(np.int64), classes


def decode(indices, classes):
    """Class labels of class indices."""
    return np.asarray(classes)[indices]


def _some(values, limit=6):
    values = list(np.asarray(values).tolist())
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"
