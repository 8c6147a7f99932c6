"""Optimizers of the Model API: hyperparameters, state, and the code the kernels dispatch on.

The update rules live in ``fastbp.kernels.optim`` (compiled) and ``fastbp.reference.optim``
(NumPy). An optimizer object here holds the hyperparameters, the state vectors (same layout
as the flat parameter vector) and the step count ``iterations``.

Every optimizer takes ``global_clipnorm`` (rescale the whole gradient when its L2 norm is
larger) and ``clipvalue`` (clip each component), as in Keras.
"""

import numpy as np

from . import codes, schedules
from ._validation import check_float, describe, lookup


class Optimizer:
    """Base class. Subclasses set ``name``/``code`` and fill ``_hyper``."""

    name = None
    code = None

    def __init__(self, learning_rate, global_clipnorm=None, clipvalue=None):
        self.learning_rate = learning_rate
        self.global_clipnorm = (None if global_clipnorm is None else
                                check_float(global_clipnorm, "global_clipnorm", low=0.0,
                                            low_open=True))
        self.clipvalue = (None if clipvalue is None else
                          check_float(clipvalue, "clipvalue", low=0.0, low_open=True))
        self.iterations = 0
        self.epochs = 0          # epochs trained: the clock of per-epoch schedules
        self.lr_factor = 1.0     # set by ReduceLROnPlateau
        self.state = None

    @property
    def learning_rate(self):
        """A number, or a ``fastbp.schedules.Schedule``."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._schedule = schedules.get(value)
        plain = not isinstance(value, (schedules.Schedule, dict))
        self._learning_rate = self._schedule.initial_learning_rate if plain else self._schedule

    @property
    def schedule(self):
        return self._schedule

    def sched(self):
        """float64 array of shape (N_SC,): the schedule as the kernels read it."""
        return self._schedule.sched(self.lr_factor)

    def current_lr(self):
        """The rate of the next step (per-step schedules) or of the next epoch."""
        clock = self.iterations if self._schedule.unit == "step" else self.epochs
        return self._schedule(clock) * self.lr_factor

    # -- what the kernels read -------------------------------------------------------------
    def hyper(self):
        """float64 array of shape (N_HYPER,), the learning rate that of the next step."""
        h = np.zeros(codes.N_HYPER)
        h[codes.HP_LR] = self.current_lr()
        h[codes.HP_CLIPNORM] = self.global_clipnorm or 0.0
        h[codes.HP_CLIPVALUE] = self.clipvalue or 0.0
        self._fill(h)
        return h

    def _fill(self, h):
        pass

    def advanced(self, hyper):
        """Take back what the epoch loop kept in ``hyper`` over the steps it took."""

    @property
    def n_slots(self):
        return codes.OPTIMIZER_SLOTS[self.code]

    def _initial_state(self, n_params):
        return np.zeros((self.n_slots, n_params), np.float32)

    def ensure_state(self, n_params):
        """Allocate the state vectors on first use (or when the parameter count changed)."""
        if self.state is None or self.state.shape != (self.n_slots, n_params):
            self.state = self._initial_state(n_params)
            self.iterations = 0
        return self.state

    def reset(self):
        """Forget the state and the step count."""
        self.state = None
        self.iterations = 0
        self.epochs = 0
        self.lr_factor = 1.0

    # -- configuration -------------------------------------------------------------------
    def get_config(self):
        lr = self._learning_rate
        config = {"name": self.name,
                  "learning_rate": lr.get_config() if isinstance(lr, schedules.Schedule) else lr}
        if self.global_clipnorm is not None:
            config["global_clipnorm"] = self.global_clipnorm
        if self.clipvalue is not None:
            config["clipvalue"] = self.clipvalue
        return config

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    ``v = momentum * v - lr * g``; ``w += v`` (or ``w += momentum * v - lr * g`` for Nesterov).
    """

    name = "sgd"
    code = codes.SGD

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **clip):
        super().__init__(learning_rate, **clip)
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False; received {describe(nesterov)}")
        self.nesterov = bool(nesterov)

    def _fill(self, h):
        h[codes.HP_MOMENTUM] = self.momentum
        h[codes.HP_NESTEROV] = float(self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam: ``w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``."""

    name = "adam"
    code = codes.ADAM

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **clip):
        super().__init__(learning_rate, **clip)
        self.beta_1 = check_float(beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        self.beta_2 = check_float(beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)

    def _fill(self, h):
        h[codes.HP_BETA1] = self.beta_1
        h[codes.HP_BETA2] = self.beta_2
        h[codes.HP_EPS] = self.epsilon

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay: ``w *= 1 - lr * weight_decay`` before each Adam step."""

    name = "adamw"
    code = codes.ADAMW

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, **clip):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **clip)
        self.weight_decay = check_float(weight_decay, "weight_decay", low=0.0)

    def _fill(self, h):
        super()._fill(h)
        h[codes.HP_WEIGHT_DECAY] = self.weight_decay

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """RMSprop: ``s = rho s + (1 - rho) g^2``; ``step = lr g / (sqrt(s) + eps) + momentum * step``."""

    name = "rmsprop"
    code = codes.RMSPROP

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, **clip):
        super().__init__(learning_rate, **clip)
        self.rho = check_float(rho, "rho", low=0.0, high=1.0, high_open=True)
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)

    def _fill(self, h):
        h[codes.HP_RHO] = self.rho
        h[codes.HP_MOMENTUM] = self.momentum
        h[codes.HP_EPS] = self.epsilon

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon}


class Adagrad(Optimizer):
    """Adagrad: ``s += g^2``; ``w -= lr g / (sqrt(s) + eps)``, s starting at ``initial_accumulator_value``."""

    name = "adagrad"
    code = codes.ADAGRAD

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **clip):
        super().__init__(learning_rate, **clip)
        self.initial_accumulator_value = check_float(
            initial_accumulator_value, "initial_accumulator_value", low=0.0)
        self.epsilon = check_float(epsilon, "epsilon", low=0.0, low_open=True)

    def _fill(self, h):
        h[codes.HP_EPS] = self.epsilon

    def _initial_state(self, n_params):
        return np.full((1, n_params), self.initial_accumulator_value, np.float32)

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Nadam(Adam):
    """Adam with Nesterov momentum (Dozat 2016), as Keras's and PyTorch's ``NAdam``.

    With ``mu_t = beta_1 (1 - 0.5 * 0.96 ** (t * momentum_decay))`` and ``P_t = mu_1 ... mu_t``:
    ``w -= lr * (mu_(t+1) m / (1 - P_(t+1)) + (1 - mu_t) g / (1 - P_t)) / (sqrt(v / (1 - b2^t))
    + eps)``. ``momentum_decay=1`` is Keras's schedule; PyTorch's default is 0.004.
    """

    name = "nadam"
    code = codes.NADAM

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 momentum_decay=1.0, **clip):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **clip)
        self.momentum_decay = check_float(momentum_decay, "momentum_decay", low=0.0)
        self._mu_product = (0, 1.0)  # (steps, mu_1 ... mu_steps)

    def mu_product(self):
        """``mu_1 * ... * mu_t`` for ``t = iterations``, multiplied in step order as the epoch
        loop does (recomputed only when ``iterations`` was set from outside)."""
        steps, product = self._mu_product
        if steps != self.iterations:
            product = 1.0
            for t in range(1, self.iterations + 1):
                product *= self.beta_1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))
                if product == 0.0:
                    break
            self._mu_product = (self.iterations, product)
        return product

    def _fill(self, h):
        super()._fill(h)
        h[codes.HP_MOMENTUM_DECAY] = self.momentum_decay
        h[codes.HP_MU_PRODUCT] = self.mu_product()

    def advanced(self, hyper):
        self._mu_product = (self.iterations, float(hyper[codes.HP_MU_PRODUCT]))

    def get_config(self):
        return {**super().get_config(), "momentum_decay": self.momentum_decay}


class Adamax(Adam):
    """Adam with the infinity norm (Kingma & Ba 2015, section 7.1), as Keras's ``Adamax``:
    ``u = max(beta_2 u, |g|)``; ``w -= lr / (1 - beta_1^t) * m / (u + eps)``."""

    name = "adamax"
    code = codes.ADAMAX


#: name -> class; the single table the API resolves optimizer names through.
OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Nadam, Adamax)}
assert set(OPTIMIZERS) == set(codes.OPTIMIZERS)


def get(optimizer):
    """An Optimizer from a name (``"adam"``), a config dict, or an Optimizer instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, dict):
        config = dict(optimizer)
        _, cls = lookup(OPTIMIZERS, {}, config.pop("name", None), "optimizer")
        return cls(**config)
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name such as 'adam' or a fastbp.optimizers."
                        f"Optimizer; received {describe(optimizer)}")
    _, cls = lookup(OPTIMIZERS, {}, optimizer, "optimizer")
    return cls()
