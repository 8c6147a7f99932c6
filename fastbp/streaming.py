"""Data given as an iterable of chunks: ``fit``, ``evaluate`` and ``predict`` on a generator,
a list of ``(x, y)`` tuples, or a ``tf.data``-like object, one chunk in memory at a time.

A chunk is ``(x, y)`` or ``(x, y, sample_weight)`` (``predict`` also takes ``x`` alone). Each
chunk is checked and trained on with one compiled call (its rows in mini-batches of
``batch_size``, shuffled within the chunk; with no ``batch_size``, the chunk is one batch, as
Keras takes a dataset's elements). An object whose ``iter()`` gives a fresh iterator (a list,
a dataset) is read anew every epoch; a one-shot iterator (a generator) is read on across
epochs, ``steps_per_epoch`` chunks at a time.
"""

import warnings

import numpy as np

from ._validation import describe


def is_stream(x, y, rows=False):
    """True when ``x`` is an iterable of chunks rather than an array: ``y`` is None and ``x``
    is an iterator, or an iterable that is not array-like (no ``shape``, not a list of
    numbers). With ``rows`` (``predict``), a list of 2-D arrays is chunks too."""
    if y is not None or x is None or isinstance(x, (str, bytes, np.ndarray)):
        return False
    if hasattr(x, "shape") or hasattr(x, "__array__") or hasattr(x, "tocsr"):
        return False
    if hasattr(x, "__next__"):
        return True
    if isinstance(x, (list, tuple)):
        def chunk(c):
            if rows and hasattr(c, "shape"):
                return len(c.shape) == 2
            return (isinstance(c, (tuple, list)) and 1 <= len(c) <= 3
                    and hasattr(c[0], "shape") and len(c[0].shape) == 2)
        return len(x) > 0 and all(chunk(c) for c in x)
    return hasattr(x, "__iter__")


def unpack(chunk, index, need_y=True):
    """``(x, y, sample_weight)`` of chunk number ``index`` (y and weights None if absent)."""
    if isinstance(chunk, dict):
        raise TypeError(f"chunk {index} is a dict; fastbp's models take (x, y) or "
                        f"(x, y, sample_weight) tuples")
    if not isinstance(chunk, (tuple, list)) or not 1 <= len(chunk) <= 3:
        if not need_y and hasattr(chunk, "shape"):
            return chunk, None, None
        raise TypeError(f"chunk {index} must be a tuple (x, y) or (x, y, sample_weight); "
                        f"received {describe(chunk)}")
    x = chunk[0]
    y = chunk[1] if len(chunk) > 1 else None
    w = chunk[2] if len(chunk) > 2 else None
    if need_y and y is None:
        raise TypeError(f"chunk {index} has no targets: expected (x, y) or "
                        f"(x, y, sample_weight); received a tuple of {len(chunk)}")
    return x, y, w


class Chunks:
    """The chunks of each epoch from ``source``.

    ``epoch()`` returns an iterator over the next epoch's chunks (at most ``steps``), or
    None when a one-shot iterator is spent before the epoch begins.
    """

    def __init__(self, source, steps=None, name="x"):
        if steps is not None:
            from ._validation import check_int
            steps = check_int(steps, "steps_per_epoch" if name == "x" else "steps", low=1)
        self.source, self.steps, self.name = source, steps, name
        try:
            first = iter(source)
        except TypeError:
            raise TypeError(f"{name} must be an array or an iterable of (x, y) chunks; "
                            f"received {describe(source)}") from None
        self.one_shot = first is source
        self._iterator = first
        self.spent = False
        self.drawn = 0

    def epoch(self):
        if self.spent:
            return None
        if not self.one_shot and self.drawn:
            self._iterator = iter(self.source)
        return self._take()

    def _take(self):
        taken = 0
        while self.steps is None or taken < self.steps:
            try:
                chunk = next(self._iterator)
            except StopIteration:
                if self.one_shot:
                    self.spent = True
                break
            taken += 1
            self.drawn += 1
            yield self.drawn - 1, chunk


def ran_out(epoch, epochs):
    warnings.warn(f"the data ran out at the start of epoch {epoch + 1}/{epochs}: a generator "
                  f"is read once; give steps_per_epoch (chunks per epoch) and enough chunks "
                  f"for every epoch, or an object that can be iterated again (a list, a "
                  f"dataset). Training stopped after epoch {epoch}.", UserWarning, stacklevel=3)
