"""Optimizers of the Model API: hyperparameters, state, and the code the kernels dispatch on.

The update rules live in ``fastbp.kernels.optim`` (compiled) and ``fastbp.reference.optim``
(NumPy). An optimizer object here holds the hyperparameters, the state vectors (same layout
as the flat parameter vector) and the step count ``iterations``.

Every optimizer takes ``global_clipnorm`` (rescale the whole gradient when its L2 norm is
larger) and ``clipvalue`` (clip each component), as in Keras.
"""

import numpy as np

from . import codes, schedules
from ._validation import check_float, check_weights, describe, lookup


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

    def apply_gradients(self, grads_and_vars):
        """One step on the given variables with the given gradients, as Keras's
        ``optimizer.apply_gradients(zip(grads, model.trainable_variables))``.

        ``grads_and_vars`` pairs a float array (the variable's shape) with a trainable
        ``fastbp.variables.Variable`` of one model; the step runs on that model's backend (the
        compiled update of ``fit``, over the variables' stretches of the parameter vector),
        with this optimizer's state, learning rate (schedules included), clipping and step
        count. Variables left out are not touched. The gradient is taken as given (a
        ``model.gradients`` gradient holds the L1/L2 penalties already). A step that would
        leave a weight non-finite changes nothing and raises ``NonFiniteLossError``.
        """
        from . import engine
        from ._validation import NonFiniteLossError
        from .variables import Variable
        pairs = list(grads_and_vars)
        if not pairs:
            raise ValueError("apply_gradients received no (gradient, variable) pairs")
        model = None
        seen = set()
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"apply_gradients expects (gradient, variable) pairs, as "
                                f"zip(grads, model.trainable_variables) gives; item {i} is "
                                f"{describe(pair)}")
            grad, var = pair
            if not isinstance(var, Variable) or not var.trainable:
                raise TypeError(f"apply_gradients: item {i}'s variable must be one of "
                                f"model.trainable_variables; received {describe(var)}")
            if model is None:
                model = var.model
            elif var.model is not model:
                raise ValueError("apply_gradients: the variables belong to different models; "
                                 "step each model's variables with its own call")
            if var.offset in seen:
                raise ValueError(f"apply_gradients: variable {var.path} appears twice")
            seen.add(var.offset)
            check_weights(grad, var.shape, f"apply_gradients: the gradient of {var.path}")
        params = model.params
        n_params = params.shape[0]
        grads = np.zeros((1, n_params), np.float32)
        seg = np.zeros((len(pairs), codes.N_SEG))
        for k, (grad, var) in enumerate(pairs):
            grads[0, var.offset:var.offset + var.size] = np.asarray(grad).ravel()
            seg[k, codes.SEG_START], seg[k, codes.SEG_STOP] = var.offset, var.offset + var.size
        state = self.ensure_state(n_params)
        hyper = self.hyper()
        scale = 1.0
        if hyper[codes.HP_CLIPNORM] > 0.0:
            norm = float(np.sqrt(np.dot(grads[0].astype(np.float64), grads[0])))
            scale = hyper[codes.HP_CLIPNORM] / norm if norm > hyper[codes.HP_CLIPNORM] else 1.0
        t = self.iterations + 1
        saved = params.copy(), state.copy()
        engine.get(model.backend).step(self.code, params, grads, state, hyper, t, seg, scale)
        if not np.isfinite(params).all():
            params[:], state[:] = saved
            raise NonFiniteLossError(f"apply_gradients: step {t} would leave non-finite "
                                     f"weights; the weights and the optimizer state are as "
                                     f"before it. Try a smaller learning rate or clipping.")
        if self.code == codes.NADAM:  # as the epoch loop does after every step
            from .reference.optim import advance_mu_product
            advance_mu_product(hyper, t)
        self.iterations = t
        self.advanced(hyper)

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
