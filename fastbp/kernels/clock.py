"""A cycle counter, to time batches inside the compiled epoch loop (x86: ``rdtsc``).

The shard scheduler (``fastbp._threads.ShardScheduler``) compares the cost of a batch run on
the thread pool with one run serially. Timing single batches inside the loop lets it run a
few batches of each epoch the other way and compare the two under the same load, instead of
spending whole epochs on the slower way. x86's time-stamp counter ticks at a constant rate
and costs about 20 cycles to read; only ratios of ticks are used.

On other processors ``ticks`` returns 0 (their cycle counters may not be readable from user
code), and the scheduler keeps the parallel way.

NumPy twin: none (the reference runs no threads).
"""

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .._jit import jit
from .._platform import X86
from ..codes import (
    CK_MIN_SAMPLES, CK_MIN_TICKS, CK_PROBE_FIRST, CK_PROBE_RUN, W_PAR_N, W_PAR_TICKS,
    W_PARALLEL, W_SER_N, W_SER_TICKS,
)


@intrinsic
def _read_cycle_counter(typingctx):
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


if X86:
    @jit(inline="always")
    def ticks():
        """The time-stamp counter (int64): ticks at a constant rate."""
        return _read_cycle_counter()
else:
    @jit(inline="always")
    def ticks():
        """0: no cycle counter read on this processor."""
        return np.int64(0)


# --- choosing the way of each batch from the timings -----------------------------------------


@jit(inline="always")
def timed_enough(n, spent):
    """Whether ``n`` timed batches of ``spent`` ticks in all are enough to compare a way by:
    ``CK_MIN_SAMPLES`` of them, or 2 of long batches (``CK_MIN_TICKS``), whose timings vary
    less and whose probes cost more (4 serial batches of 39 made a wide network's first epoch
    10% longer on a quiet machine)."""
    return n >= CK_MIN_SAMPLES or (n >= 2.0 and spent >= CK_MIN_TICKS)


@jit(inline="always")
def choose_way(ways, probe):
    """The epoch loop's way for its next batches: ``(parallel, every)``.

    ways : float64 array of shape (N_WAYS,)
        ``ways[W_PARALLEL]`` the way so far; the summed ticks and counts of the timed batches
        of each way (the scheduler's recent ones, then this epoch's, ``time_batch``).
    probe : int
        The probe period once both ways have enough timed batches (0: no probes, the way is
        fixed).

    Once both ways have enough timed batches (``timed_enough``), the way of the lower mean,
    and probes every ``probe * r`` steps, r the ratio of the means (at most 64); before, the
    way so far, and probes every ``CK_PROBE_FIRST`` steps, to get those timings soon. (The
    means are compared without dividing: where no counter is read, 0 ticks on both sides,
    parallel stays.)
    """
    parallel = ways[W_PARALLEL] != 0.0
    if probe <= 0:
        return parallel, np.int64(0)
    if not (timed_enough(ways[W_PAR_N], ways[W_PAR_TICKS])
            and timed_enough(ways[W_SER_N], ways[W_SER_TICKS])):
        return parallel, np.int64(CK_PROBE_FIRST)
    par, ser = ways[W_PAR_TICKS] * ways[W_SER_N], ways[W_SER_TICKS] * ways[W_PAR_N]
    parallel = par <= ser
    ways[W_PARALLEL] = 1.0 if parallel else 0.0
    # probes of a way r times dearer come r times rarer: whatever r, they cost at most
    # CK_PROBE_RUN / probe of the epoch (3 % at 4 in 128)
    cheap, dear = (par, ser) if parallel else (ser, par)
    ratio = min(dear / cheap, 64.0) if cheap > 0.0 else 1.0
    return parallel, np.int64(probe * ratio)


@jit(inline="always")
def probe_batch(every, t):
    """Whether step t runs the other way: among the last ``CK_PROBE_RUN`` of every ``every``
    steps (0: never)."""
    return every > 0 and t % every >= every - CK_PROBE_RUN


@jit(inline="always")
def time_batch(ways, together, spent):
    """Count a timed batch of ``spent`` ticks in ``ways`` (parallel when ``together``)."""
    if together:
        ways[W_PAR_TICKS] += spent
        ways[W_PAR_N] += 1.0
    else:
        ways[W_SER_TICKS] += spent
        ways[W_SER_N] += 1.0
