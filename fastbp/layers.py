"""Layers of the Model API.

A layer checks and stores its settings (``__init__``), makes its weights once the input width
is known (``initialize``), and saves itself (``get_config``). Its weights are views into the
model's flat parameter vector; ``fastbp.layout`` turns the layer list into the operation table
that the compiled kernels run.
"""

import numpy as np

from . import codes, initializers, regularizers
from ._validation import check_float, check_int, describe, lookup


def _check_name(name):
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string; received {describe(name)}")
    return name


def _activation(activation, alpha):
    """(name, code, alpha) of an activation, with its parameter checked."""
    name, code = lookup(codes.ACTIVATIONS, codes.ACTIVATION_ALIASES, activation, "activation")
    default = codes.ACTIVATION_DEFAULT_ALPHA.get(name, 0.0)
    if alpha is None:
        return name, code, default
    if name not in codes.ACTIVATION_DEFAULT_ALPHA:
        raise ValueError(f"alpha applies only to the activations "
                         f"{sorted(codes.ACTIVATION_DEFAULT_ALPHA)}; received alpha={alpha!r} "
                         f"with activation={name!r}")
    if name == "leaky_relu":
        return name, code, check_float(alpha, "alpha", low=0.0)
    return name, code, check_float(alpha, "alpha", low=0.0, low_open=True)


def check_input_shape(shape, name="input_shape"):
    """The input width of a shape ``(n_features,)`` (Keras's ``input_shape``/``Input``)."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or len(shape) != 1:
        raise ValueError(f"{name} must be (n_features,): fastbp's layers take rows of features; "
                         f"received {name}={shape!r}")
    return check_int(shape[0], f"{name}[0]", low=1)


def _only(value, supported, what, layer, why=""):
    """Raise for a Keras argument fastbp has only at one value."""
    if not (value is supported or (type(value) is type(supported) and value == supported)):
        reason = f" ({why})" if why else ""
        raise ValueError(f"{layer}({what}={value!r}) is not supported by fastbp: only "
                         f"{what}={supported!r}{reason}")


class Layer:
    """Base class: a name, no weights."""

    n_weights = 0  # arrays exchanged by get_weights / set_weights
    input_width = None  # set by ``input_shape`` (Keras): the model builds at once

    def __init__(self, name=None, input_shape=None):
        self.name = _check_name(name)
        if input_shape is not None:
            self.input_width = check_input_shape(input_shape)

    def get_config(self):
        return {"class_name": type(self).__name__, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("class_name", None)
        return cls(**config)


class Dense(Layer):
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
    use_bias : True
        Keras's argument; only True (a bias) is supported.
    kernel_initializer, bias_initializer : str or Initializer
        Defaults ``glorot_uniform`` and ``zeros``.
    kernel_regularizer : None, "l1", "l2", "l1_l2" or fastbp.regularizers.L1L2
        Keras's way to give ``l1`` and ``l2`` (added to them).
    l1, l2 : float
        Penalty ``l1 * sum|W| + l2 * sum W^2`` added to the loss (biases are not penalised).
    name : str, optional
    input_shape : tuple (n_features,), optional
        On the first layer, as in Keras: the model is built for that width at once.

    Keras's ``bias_regularizer``, ``activity_regularizer``, ``kernel_constraint`` and
    ``bias_constraint`` are accepted only as None (a value raises, naming it).
    """

    n_weights = 2

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, *, alpha=None, l1=0.0, l2=0.0,
                 name=None, input_shape=None):
        super().__init__(name, input_shape)
        _only(use_bias, True, "use_bias", "Dense", "every Dense layer has a bias")
        for value, what in ((bias_regularizer, "bias_regularizer"),
                            (activity_regularizer, "activity_regularizer"),
                            (kernel_constraint, "kernel_constraint"),
                            (bias_constraint, "bias_constraint")):
            _only(value, None, what, "Dense")
        self.units = check_int(units, "units", low=1)
        self.activation, self.activation_code, self.alpha = _activation(activation, alpha)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.l1 = check_float(l1, "l1", low=0.0)
        self.l2 = check_float(l2, "l2", low=0.0)
        penalty = regularizers.get(kernel_regularizer)
        if penalty is not None:
            self.l1 += penalty.l1
            self.l2 += penalty.l2

    def output_width(self, input_width):
        return self.units

    def n_params(self, input_width):
        return (input_width + 1) * self.units

    def initialize(self, input_width, params, aux, rng):
        """Fill W (input_width, units) then b (units,) at the start of ``params``."""
        n_w = input_width * self.units
        params[:n_w] = self.kernel_initializer((input_width, self.units), input_width,
                                               self.units, rng).ravel()
        params[n_w:] = self.bias_initializer((self.units,), input_width, self.units, rng)

    def weights(self, input_width, params, aux):
        n_w = input_width * self.units
        return [params[:n_w].reshape(input_width, self.units), params[n_w:]]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "alpha": self.alpha, "kernel_initializer": self.kernel_initializer.get_config(),
                "bias_initializer": self.bias_initializer.get_config(), "l1": self.l1,
                "l2": self.l2}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("activation") not in codes.ACTIVATION_DEFAULT_ALPHA:
            config.pop("alpha", None)
        return super().from_config(config)

    def __repr__(self):
        return f"Dense({self.units}, activation={self.activation!r})"


class Activation(Layer):
    """Applies an activation to the previous layer's output.

    It folds into the ``Dense`` or ``BatchNormalization`` layer before it, which must have no
    activation of its own: ``Dense(64), BatchNormalization(), Activation("relu")`` normalises
    before the non-linearity.
    """

    def __init__(self, activation, alpha=None, name=None, input_shape=None):
        super().__init__(name, input_shape)
        self.activation, self.activation_code, self.alpha = _activation(activation, alpha)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "alpha": self.alpha}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("activation") not in codes.ACTIVATION_DEFAULT_ALPHA:
            config.pop("alpha", None)
        return super().from_config(config)

    def __repr__(self):
        return f"Activation({self.activation!r})"


class Dropout(Layer):
    """Inverted dropout: while training, each unit of the previous layer's output is zeroed with
    probability ``rate`` and the rest are divided by ``1 - rate``; at inference it does nothing.

    Masks are drawn inside the compiled loop from the model's seed (same seed, same masks).
    """

    def __init__(self, rate, noise_shape=None, seed=None, *, name=None, input_shape=None):
        super().__init__(name, input_shape)
        _only(noise_shape, None, "noise_shape", "Dropout", "each unit is dropped on its own")
        _only(seed, None, "seed", "Dropout",
              "the masks are drawn from the model's seed: Sequential(..., seed=...)")
        self.rate = check_float(rate, "rate", low=0.0, high=1.0, high_open=True)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}

    def __repr__(self):
        return f"Dropout({self.rate})"


class BatchNormalization(Layer):
    """Normalises each feature of the previous layer's output, then scales and shifts it.

    While training: ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the batch's mean
    and (biased) variance; the running mean and variance move towards them,
    ``running = momentum * running + (1 - momentum) * batch``. At inference the running
    statistics are used. ``gamma`` (ones) and ``beta`` (zeros) are trained by the optimizer.
    Defaults as in Keras.
    """

    n_weights = 4

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, *,
                 name=None, input_shape=None):
        super().__init__(name, input_shape)
        if axis not in (-1, 1) or isinstance(axis, bool):
            raise ValueError(f"BatchNormalization normalises each feature of a row: axis must "
                             f"be -1 (or 1); received axis={axis!r}")
        _only(center, True, "center", "BatchNormalization", "beta is always trained")
        _only(scale, True, "scale", "BatchNormalization", "gamma is always trained")
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)
        self.activation, self.activation_code, self.alpha = "linear", codes.LINEAR, 0.0

    def output_width(self, input_width):
        return input_width

    def n_params(self, input_width):
        return 2 * input_width

    def initialize(self, input_width, params, aux, rng):
        params[:input_width] = 1.0
        params[input_width:] = 0.0
        aux[:input_width] = 0.0
        aux[input_width:] = 1.0

    def weights(self, input_width, params, aux):
        """gamma, beta, moving mean, moving variance (Keras' order)."""
        return [params[:input_width], params[input_width:], aux[:input_width],
                aux[input_width:]]

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}

    def __repr__(self):
        return "BatchNormalization()"


class Input:
    """The input of a ``Sequential`` model (Keras's ``keras.Input``): ``Input(shape=(n,))`` as
    the first element builds the model for rows of ``n`` features at once. Not a layer: it
    has no weights and does nothing."""

    def __init__(self, shape, batch_size=None, dtype=None, sparse=None, name=None):
        self.width = check_input_shape(shape, "shape")
        self.name = _check_name(name)
        if batch_size is not None:
            check_int(batch_size, "batch_size", low=1)  # a static hint: any batch size works
        if dtype is not None and str(dtype) not in ("float32", "float64"):
            raise ValueError(f"Input(dtype=...) must be float32 (or float64, taken as float32: "
                             f"fastbp computes in float32); received dtype={dtype!r}")
        if sparse not in (None, False, True):
            raise TypeError(f"Input(sparse=...) must be True or False; received {sparse!r}")

    def __repr__(self):
        return f"Input(shape=({self.width},))"


LAYERS = {cls.__name__: cls for cls in (Dense, Activation, Dropout, BatchNormalization)}
#: Keras-style default names
DEFAULT_NAMES = {"Dense": "dense", "Activation": "activation", "Dropout": "dropout",
                 "BatchNormalization": "batch_normalization"}


def from_config(config):
    """A layer from its ``get_config()`` dictionary."""
    name = config.get("class_name")
    if name not in LAYERS:
        raise ValueError(f"Unknown layer class {name!r}; expected one of {sorted(LAYERS)}")
    return LAYERS[name].from_config(config)
