"""A model's weights one array at a time, as Keras's ``model.trainable_variables`` gives them.

A ``Variable`` is a named window onto a model's flat float32 vectors (``params`` for what
training changes, ``aux`` for batch-norm statistics): reading it gives the live array, and an
optimizer's ``apply_gradients`` finds from it which stretch of the parameter vector to step.
"""

import math

import numpy as np

from ._validation import check_weights


class Variable:
    """One weight array of a model (Dense ``kernel`` (n_in, n_out) and ``bias`` (n_out,);
    BatchNormalization ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``).

    Attributes
    ----------
    model : Sequential
    name : str            ``"kernel"``, ``"bias"``, ``"gamma"``, ...
    path : str            ``"<layer name>/<name>"``
    shape : tuple
    trainable : bool      True for the parameters, False for batch-norm statistics
    offset : int          start in the model's ``params`` (trainable) or ``aux`` vector
    """

    def __init__(self, model, name, path, vector, offset, shape):
        self.model, self.name, self.path = model, name, path
        self._vector, self.offset, self.shape = vector, int(offset), tuple(shape)
        self.size = math.prod(self.shape)
        self.trainable = vector == "params"

    @property
    def value(self):
        """The live float32 array (a view of the model's vector: writing to it changes the
        model)."""
        vector = getattr(self.model, self._vector)
        return vector[self.offset:self.offset + self.size].reshape(self.shape)

    dtype = np.dtype(np.float32)

    def numpy(self):
        """A copy of the value."""
        return self.value.copy()

    def assign(self, value):
        """Overwrite the value with ``value`` (same shape, finite numbers)."""
        self.value[...] = check_weights(value, self.shape, f"{self.path}.assign: the value")

    def __array__(self, dtype=None, copy=None):
        value = self.value
        return value.astype(dtype) if dtype is not None else value.copy()

    def __repr__(self):
        return f"<Variable path={self.path!r} shape={self.shape} dtype=float32>"


def model_variables(model):
    """Every weight of a built ``model`` as a Variable, in ``get_weights`` order (made once per
    layout: a Variable reads the model's vectors when it is used)."""
    cached = getattr(model, "_variables", None)
    if cached is not None and cached[0] is model.layout:
        return cached[1]
    out = _make_variables(model)
    model._variables = (model.layout, out)
    return out


def _make_variables(model):
    names = {2: ("kernel", "bias"), 4: ("gamma", "beta", "moving_mean", "moving_variance")}
    lay = model.layout
    out = []
    base = {"params": model.params, "aux": model.aux}
    for i, (layer, p, a, width) in enumerate(zip(model.layers, lay.layer_param, lay.layer_aux,
                                                 lay.layer_width)):
        if not layer.n_weights:
            continue
        views = layer.weights(width, model.params[p:p + layer.n_params(width)],
                              model.aux[a:a + 2 * width])
        label = layer.name or f"{type(layer).__name__.lower()}_{i}"
        for name, view in zip(names[len(views)], views):
            vector = "params" if np.shares_memory(view, model.params) else "aux"
            offset = (view.ctypes.data - base[vector].ctypes.data) // view.itemsize
            out.append(Variable(model, name, f"{label}/{name}", vector, offset, view.shape))
    return out
