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
