"""Numba options for every compiled kernel, kept in one place.

* ``cache=True``: compiled machine code is written beside the sources and reused by later
  processes, so only the very first ``fit`` on a machine pays for compilation.
* ``nogil=True``: kernels release the GIL, so models train side by side in Python threads.
* ``fastmath``: the flags that allow reassociation (vectorised sums), contraction (FMA) and
  reciprocal tricks, but *not* ``nnan``/``ninf``: with those LLVM may assume no NaN or
  infinity exists and the non-finite-loss check would be compiled away.
* ``error_model="numpy"``: division by zero gives inf/nan as in NumPy instead of raising, so a
  kernel never has to leave compiled code to build an exception.
"""

import numba

from . import _threads  # noqa: F401  (chooses a thread-safe layer before any parallel launch)

FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

_OPTIONS = dict(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")


def jit(func=None, **overrides):
    """``numba.njit`` with fastbp's options; usable as ``@jit`` or ``@jit(inline="always")``."""
    options = {**_OPTIONS, **overrides}
    if func is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(func)
