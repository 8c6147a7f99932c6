"""Backend selection: the compiled kernels or the NumPy reference, by name.

Both expose the same functions with the same arguments (``train_epoch``, ``evaluate``,
``predict``, ``batch_objective``, ``penalty``), so the Model API calls whichever it is given.
The compiled backend is imported on first use, which keeps ``import fastbp`` light.
"""

import importlib

from ._validation import lookup

BACKENDS = {"numba": "fastbp.kernels", "numpy": "fastbp.reference"}


def check_backend(name):
    """The canonical backend name, or a ValueError naming the choices."""
    key, _ = lookup(BACKENDS, {}, name, "backend")
    return key


class Backend:
    """The functions of one backend, gathered from its ``train`` and ``optim`` modules."""

    def __init__(self, name):
        package = BACKENDS[name]
        train = importlib.import_module(package + ".train")
        optim = importlib.import_module(package + ".optim")
        self.name = name
        self.train_epoch = train.train_epoch
        self.evaluate = train.evaluate
        self.predict = train.predict
        self.predict_parallel = train.predict_parallel
        self.batch_objective = train.batch_objective
        self.penalty = optim.penalty
        self.sync_words = train.sync_words


_CACHE = {}


def get(name):
    """The Backend called ``name`` ('numba' or 'numpy')."""
    name = check_backend(name)
    if name not in _CACHE:
        _CACHE[name] = Backend(name)
    return _CACHE[name]
