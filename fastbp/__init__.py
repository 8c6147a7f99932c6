"""fastbp: fast backpropagation for multilayer perceptrons on tabular data, on the CPU.

    >>> import fastbp
    >>> model = fastbp.Sequential([fastbp.Dense(64, activation="relu"),
    ...                            fastbp.Dense(10, activation="softmax")], seed=0)
    >>> model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

Every epoch runs inside one Numba-compiled call; ``fastbp.reference`` holds the same
algorithm in plain NumPy.
"""

from . import (callbacks, initializers, losses, models, optimizers, regularizers, schedules,
               tabular)
from ._threads import get_num_threads, set_num_threads
from ._validation import NonFiniteLossError, NotFittedError
from .callbacks import History
from .io import ModelFileError
from .layers import Activation, BatchNormalization, Dense, Dropout, Input
from .model import Sequential, load_model
from .tabular import TabularModel

__version__ = "0.1.0"

load = load_model


def __getattr__(name):
    # scikit-learn is imported only when its estimators are asked for: `import fastbp` stays light
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import sklearn as _sklearn
        return getattr(_sklearn, name)
    raise AttributeError(f"module 'fastbp' has no attribute {name!r}")


def warmup(verbose=False):
    """Compile (or load from the cache) every training and inference kernel now.

    The first ``fit`` or ``predict`` in a process otherwise pays for it: nothing when the
    installed package ships kernels for this processor, about a second to load them from the
    on-disk cache, tens of seconds to compile them once on a machine where neither has them.
    With ``verbose``, prints how long each of the compiled entry points took. Returns the
    total seconds.
    """
    from ._warmup import run
    return run(verbose)


__all__ = [
    "MLPClassifier", "MLPRegressor", "Activation", "BatchNormalization", "Dense", "Dropout", "History", "Input", "ModelFileError", "NonFiniteLossError", "NotFittedError", "Sequential", "TabularModel",
    "callbacks", "get_num_threads", "initializers", "load", "load_model", "losses", "models",
    "optimizers", "regularizers",
    "schedules", "set_num_threads", "tabular", "warmup",
]
