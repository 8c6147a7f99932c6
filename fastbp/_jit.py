"""Numba options for every compiled kernel, kept in one place.

* The cache: ``fastbp._cache`` (keyed on every compiled source, so never stale; shipped
  kernels first looked up in an installed package), in place of Numba's ``cache=True``.
* ``nogil=True``: kernels release the GIL, so fastbp's own threads (``fastbp._threads``) and
  the user's run them side by side. No kernel is ``parallel=True``: fastbp starts its threads
  itself, so no OpenMP or TBB pool exists to break in a forked child, and no parallel
  wrapper multiplies the compile time.
* ``fastmath``: the flags that allow reassociation (vectorised sums), contraction (FMA) and
  reciprocal tricks, but *not* ``nnan``/``ninf``: with those LLVM may assume no NaN or
  infinity exists and the non-finite-loss check would be compiled away.
* ``error_model="numpy"``: division by zero gives inf/nan as in NumPy instead of raising, so a
  kernel never has to leave compiled code to build an exception.
"""

import numba

from . import _cache

FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

_OPTIONS = dict(nogil=True, fastmath=FASTMATH, error_model="numpy")


def jit(func=None, **overrides):
    """``numba.njit`` with fastbp's options and cache; ``@jit`` or ``@jit(inline="always")``."""
    options = {**_OPTIONS, **overrides}

    def compile_(f):
        return _cache.attach(numba.njit(**options)(f))
    return compile_ if func is None else compile_(func)
