"""Learning-rate schedules in plain Python: the oracle for ``fastbp.kernels.schedules``."""

import math

from ..codes import (
    SC_A, SC_B, SC_CODE, SC_FACTOR, SC_LR, SCHED_COSINE, SCHED_EXPONENTIAL, SCHED_INVSCALING,
    SCHED_LINEAR, SCHED_STEP,
)


def scheduled_lr(sched, x):
    """Learning rate at step (or epoch) ``x`` (0-based)."""
    code, lr, a, b = int(sched[SC_CODE]), float(sched[SC_LR]), float(sched[SC_A]), float(sched[SC_B])
    if code == SCHED_STEP:
        lr *= a ** math.floor(x / b)
    elif code == SCHED_EXPONENTIAL:
        lr *= a ** (x / b)
    elif code == SCHED_LINEAR:
        lr += (a - lr) * min(x, b) / b
    elif code == SCHED_INVSCALING:
        lr /= (x + 1.0) ** a
    elif code == SCHED_COSINE:
        lr *= a + (1.0 - a) * 0.5 * (1.0 + math.cos(math.pi * min(x, b) / b))
    return lr * float(sched[SC_FACTOR])
