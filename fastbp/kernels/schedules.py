"""Compiled learning-rate schedules, evaluated inside the epoch at every step.

NumPy twin: ``fastbp.reference.schedules``.
"""

import numpy as np

from .._jit import jit
from ..codes import (
    SC_A, SC_B, SC_CODE, SC_FACTOR, SC_LR, SCHED_COSINE, SCHED_EXPONENTIAL, SCHED_INVSCALING,
    SCHED_LINEAR, SCHED_STEP,
)


@jit
def scheduled_lr(sched, x):
    """Learning rate at step (or epoch) ``x`` (0-based) of the schedule ``sched`` (N_SC,)."""
    code = int(sched[SC_CODE])
    lr = sched[SC_LR]
    a = sched[SC_A]
    b = sched[SC_B]
    if code == SCHED_STEP:
        lr = lr * a ** np.floor(x / b)
    elif code == SCHED_EXPONENTIAL:
        lr = lr * a ** (x / b)
    elif code == SCHED_LINEAR:
        lr = lr + (a - lr) * min(x, b) / b
    elif code == SCHED_INVSCALING:
        lr = lr / (x + 1.0) ** a
    elif code == SCHED_COSINE:
        lr = lr * (a + (1.0 - a) * 0.5 * (1.0 + np.cos(np.pi * min(x, b) / b)))
    return lr * sched[SC_FACTOR]
