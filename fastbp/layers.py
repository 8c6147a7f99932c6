"""Layers of the Model API.

A layer checks and stores its settings (``__init__``), makes its weights once the input width
is known (``initialize``), and saves itself (``get_config``). Its weights are views into the
model's flat parameter vector; the computation is in ``fastbp.kernels.dense``.
"""

from . import codes, initializers
from ._validation import check_float, check_int, describe, lookup


class Dense:
    """Fully connected layer: ``a = activation(x @ W + b)``.

    Parameters
    ----------
    units : int
        Output width (>= 1).
    activation : str or None
        One of ``linear`` (default; also ``None``/``identity``), ``relu``, ``leaky_relu``,
        ``elu``, ``sigmoid`` (``logistic``), ``tanh``, ``softmax``.
    alpha : float, optional
        Negative slope of ``leaky_relu`` (default 0.01) or alpha of ``elu`` (default 1.0).
    kernel_initializer, bias_initializer : str or Initializer
        Defaults ``glorot_uniform`` and ``zeros``.
    l1, l2 : float
        Penalty ``l1 * sum|W| + l2 * sum W^2`` added to the loss (biases are not penalised).
    name : str, optional
    """

    def __init__(self, units, activation=None, alpha=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", l1=0.0, l2=0.0, name=None):
        self.units = check_int(units, "units", low=1)
        self.activation, self.activation_code = lookup(
            codes.ACTIVATIONS, codes.ACTIVATION_ALIASES, activation, "activation")
        default = codes.ACTIVATION_DEFAULT_ALPHA.get(self.activation, 0.0)
        if alpha is None:
            self.alpha = default
        elif self.activation not in codes.ACTIVATION_DEFAULT_ALPHA:
            raise ValueError(f"alpha applies only to the activations "
                             f"{sorted(codes.ACTIVATION_DEFAULT_ALPHA)}; received alpha={alpha!r} "
                             f"with activation={self.activation!r}")
        elif self.activation == "leaky_relu":
            self.alpha = check_float(alpha, "alpha", low=0.0)
        else:
            self.alpha = check_float(alpha, "alpha", low=0.0, low_open=True)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.l1 = check_float(l1, "l1", low=0.0)
        self.l2 = check_float(l2, "l2", low=0.0)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string; received {describe(name)}")
        self.name = name
        self.input_dim = None

    def initialize(self, input_dim, W, b, rng):
        """Fill the views ``W`` (input_dim, units) and ``b`` (units,) with initial values."""
        self.input_dim = input_dim
        W[...] = self.kernel_initializer((input_dim, self.units), input_dim, self.units, rng)
        b[...] = self.bias_initializer((self.units,), input_dim, self.units, rng)

    def get_config(self):
        return {
            "class_name": "Dense",
            "units": self.units,
            "activation": self.activation,
            "alpha": self.alpha,
            "kernel_initializer": self.kernel_initializer.get_config(),
            "bias_initializer": self.bias_initializer.get_config(),
            "l1": self.l1,
            "l2": self.l2,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("class_name", None)
        if config.get("activation") not in codes.ACTIVATION_DEFAULT_ALPHA:
            config.pop("alpha", None)
        return cls(**config)

    def __repr__(self):
        return f"Dense({self.units}, activation={self.activation!r})"


LAYERS = {"Dense": Dense}


def from_config(config):
    """A layer from its ``get_config()`` dictionary."""
    name = config.get("class_name")
    if name not in LAYERS:
        raise ValueError(f"Unknown layer class {name!r}; expected one of {sorted(LAYERS)}")
    return LAYERS[name].from_config(config)
