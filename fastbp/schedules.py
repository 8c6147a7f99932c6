"""Learning-rate schedules: pass one as an optimizer's ``learning_rate``.

``x`` counts from 0: optimizer steps for ``unit="step"`` (evaluated inside the compiled
epoch before every update) or finished epochs for ``unit="epoch"`` (evaluated once per
epoch). History records the rate of each epoch's last step as ``history["lr"]``.

===============================================  ==========================================
schedule                                         learning rate at x
===============================================  ==========================================
``Constant(lr)``                                 lr
``StepDecay(lr, factor, step_size)``             lr * factor ** floor(x / step_size)
``ExponentialDecay(lr, decay_steps, decay_rate)``  lr * decay_rate ** (x / decay_steps)
``LinearDecay(lr, decay_steps, end_lr)``         from lr to end_lr over decay_steps, then end_lr
``InverseScaling(lr, power)``                    lr / (x + 1) ** power
``CosineDecay(lr, decay_steps, alpha)``          lr * (alpha + (1 - alpha) (1 + cos(pi min(x, d) / d)) / 2)
===============================================  ==========================================

``fastbp.callbacks.ReduceLROnPlateau`` multiplies whichever rate is in force by its factor.
"""

import numpy as np

from . import codes
from ._validation import check_float, describe, lookup
from .reference.schedules import scheduled_lr

UNITS = ("step", "epoch")


class Schedule:
    """Base class; subclasses set ``name``, ``code`` and the two parameters ``a``, ``b``."""

    name = None
    code = None

    def __init__(self, initial_learning_rate, unit):
        self.initial_learning_rate = check_float(initial_learning_rate, "initial_learning_rate",
                                                 low=0.0, low_open=True)
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}; received unit={unit!r}")
        self.unit = unit

    def _ab(self):
        return 0.0, 1.0

    def sched(self, factor=1.0):
        """float64 array of shape (N_SC,) read by the kernels."""
        s = np.zeros(codes.N_SC)
        s[codes.SC_CODE] = self.code
        # a constant rate needs no evaluation inside the epoch
        s[codes.SC_PER_STEP] = float(self.unit == "step" and self.code != codes.SCHED_CONSTANT)
        s[codes.SC_LR] = self.initial_learning_rate
        s[codes.SC_A], s[codes.SC_B] = self._ab()
        s[codes.SC_FACTOR] = factor
        return s

    def __call__(self, x):
        """The learning rate at step (or epoch) ``x``."""
        return scheduled_lr(self.sched(), float(x))

    def get_config(self):
        return {"name": self.name, "initial_learning_rate": self.initial_learning_rate,
                "unit": self.unit}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    name = "constant"
    code = codes.SCHED_CONSTANT

    def __init__(self, initial_learning_rate, unit="step"):
        super().__init__(initial_learning_rate, unit)


class StepDecay(Schedule):
    name = "step_decay"
    code = codes.SCHED_STEP

    def __init__(self, initial_learning_rate, factor=0.5, step_size=10, unit="epoch"):
        super().__init__(initial_learning_rate, unit)
        self.factor = check_float(factor, "factor", low=0.0, high=1.0, low_open=True)
        self.step_size = check_float(step_size, "step_size", low=0.0, low_open=True)

    def _ab(self):
        return self.factor, self.step_size

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "step_size": self.step_size}


class ExponentialDecay(Schedule):
    name = "exponential_decay"
    code = codes.SCHED_EXPONENTIAL

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, unit="step"):
        super().__init__(initial_learning_rate, unit)
        self.decay_steps = check_float(decay_steps, "decay_steps", low=0.0, low_open=True)
        self.decay_rate = check_float(decay_rate, "decay_rate", low=0.0, low_open=True)

    def _ab(self):
        return self.decay_rate, self.decay_steps

    def get_config(self):
        return {**super().get_config(), "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate}


class LinearDecay(Schedule):
    name = "linear_decay"
    code = codes.SCHED_LINEAR

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0, unit="step"):
        super().__init__(initial_learning_rate, unit)
        self.decay_steps = check_float(decay_steps, "decay_steps", low=0.0, low_open=True)
        self.end_learning_rate = check_float(end_learning_rate, "end_learning_rate", low=0.0)

    def _ab(self):
        return self.end_learning_rate, self.decay_steps

    def get_config(self):
        return {**super().get_config(), "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate}


class InverseScaling(Schedule):
    name = "inverse_scaling"
    code = codes.SCHED_INVSCALING

    def __init__(self, initial_learning_rate, power=0.5, unit="step"):
        super().__init__(initial_learning_rate, unit)
        self.power = check_float(power, "power", low=0.0)

    def _ab(self):
        return self.power, 1.0

    def get_config(self):
        return {**super().get_config(), "power": self.power}


class CosineDecay(Schedule):
    name = "cosine_decay"
    code = codes.SCHED_COSINE

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, unit="step"):
        super().__init__(initial_learning_rate, unit)
        self.decay_steps = check_float(decay_steps, "decay_steps", low=0.0, low_open=True)
        self.alpha = check_float(alpha, "alpha", low=0.0, high=1.0)

    def _ab(self):
        return self.alpha, self.decay_steps

    def get_config(self):
        return {**super().get_config(), "decay_steps": self.decay_steps, "alpha": self.alpha}


SCHEDULES = {cls.name: cls for cls in (Constant, StepDecay, ExponentialDecay, LinearDecay,
                                       InverseScaling, CosineDecay)}


def get(value, name="learning_rate"):
    """A Schedule from a positive number (constant), a config dict, or a Schedule."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, dict):
        config = dict(value)
        _, cls = lookup(SCHEDULES, {}, config.pop("name", None), "schedule")
        return cls(**config)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a positive number or a fastbp.schedules.Schedule; "
                        f"received {describe(value)}")
    return Constant(check_float(value, name, low=0.0, low_open=True))
