"""Weight initialisers: each draws from the model's seeded ``numpy.random.Generator``.

============================  ==================================================
name                          distribution of each weight (fan_in, fan_out of W)
============================  ==================================================
he_normal                     normal, std sqrt(2 / fan_in)
he_uniform                    uniform in +-sqrt(6 / fan_in)
glorot_normal                 normal, std sqrt(2 / (fan_in + fan_out))
glorot_uniform                uniform in +-sqrt(6 / (fan_in + fan_out))
uniform (RandomUniform(r))    uniform in [-r, r]
zeros                         0
============================  ==================================================

(He and Glorot "normal" draw from the plain normal distribution, as PyTorch does; Keras
truncates at two standard deviations.)
"""

import numpy as np

from ._validation import check_float, describe, lookup


class Initializer:
    """Base class: ``init(shape, fan_in, fan_out, rng)`` returns a float32 array."""

    name = None

    def __call__(self, shape, fan_in, fan_out, rng):
        return np.asarray(self.draw(shape, fan_in, fan_out, rng), dtype=np.float32)

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class HeNormal(Initializer):
    name = "he_normal"

    def draw(self, shape, fan_in, fan_out, rng):
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)


class HeUniform(Initializer):
    name = "he_uniform"

    def draw(self, shape, fan_in, fan_out, rng):
        limit = np.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, shape)


class GlorotNormal(Initializer):
    name = "glorot_normal"

    def draw(self, shape, fan_in, fan_out, rng):
        return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), shape)


class GlorotUniform(Initializer):
    name = "glorot_uniform"

    def draw(self, shape, fan_in, fan_out, rng):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


class RandomUniform(Initializer):
    """Uniform in [-limit, limit]."""

    name = "uniform"

    def __init__(self, limit=0.05):
        self.limit = check_float(limit, "limit", low=0.0)

    def draw(self, shape, fan_in, fan_out, rng):
        return rng.uniform(-self.limit, self.limit, shape)

    def get_config(self):
        return {"name": self.name, "limit": self.limit}


class Zeros(Initializer):
    name = "zeros"

    def draw(self, shape, fan_in, fan_out, rng):
        return np.zeros(shape)


#: name -> class
INITIALIZERS = {cls.name: cls for cls in (HeNormal, HeUniform, GlorotNormal, GlorotUniform,
                                          RandomUniform, Zeros)}
ALIASES = {"random_uniform": "uniform", "xavier_uniform": "glorot_uniform",
           "xavier_normal": "glorot_normal", "kaiming_normal": "he_normal",
           "kaiming_uniform": "he_uniform"}


def get(initializer):
    """An Initializer from a name, a config dict, or an Initializer instance."""
    if isinstance(initializer, Initializer):
        return initializer
    if isinstance(initializer, dict):
        config = dict(initializer)
        _, cls = lookup(INITIALIZERS, ALIASES, config.pop("name", None), "initializer")
        return cls(**config)
    if not isinstance(initializer, str):
        raise TypeError(f"initializer must be a name such as 'he_normal' or a fastbp."
                        f"initializers.Initializer; received {describe(initializer)}")
    _, cls = lookup(INITIALIZERS, ALIASES, initializer, "initializer")
    return cls()
