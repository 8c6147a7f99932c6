"""Denormal floats flushed to zero while training (x86: the FTZ and DAZ bits of MXCSR).

float32 values below 1.2e-38 ("denormal" or "subnormal") are handled by the CPU far more
slowly than normal ones, and training makes them: Adam's first moment of a weight whose
gradient has stopped (a unit that no longer fires) shrinks by ``beta_1`` every step and
spends about 150 steps in the denormal range before it reaches zero. On the ``reg`` workload
614 of the 18,817 first moments were denormal after 10 epochs, and the next epoch ran in
81.1 ms without flushing and 76.1 ms with it (serial, medians of 3 interleaved processes).
With FTZ (results that would be denormal are 0) and DAZ (denormal inputs count as 0) the CPU
never meets one. XLA,
and so JAX, trains with both bits set; PyTorch offers them as ``torch.set_flush_denormal``.
The difference to exact arithmetic is below 1.2e-38 per operation.

The bits belong to a thread. The training entry point (``epoch.train_epoch``, run by the
caller's thread and by each of fastbp's helper threads) calls ``flush_denormals`` first and
``set_fp_mode`` with what it returned before it returns, so every thread gets its own mode
back. LLVM does not treat plain arithmetic as depending on the mode, so a change of mode is
only sure to come before work that cannot move across it: loops storing into arrays and
calls, which is all an entry point does between the two (tests/test_fpmode.py checks it).

On other processors these are no-ops (the mode reads as 0).

NumPy twin: none (NumPy computes denormals exactly; the tests' tolerances cover the difference).
"""

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .._jit import jit
from .._platform import X86

#: MXCSR bit 15 flushes denormal results to zero, bit 6 reads denormal inputs as zero
FTZ_DAZ = np.uint32(0x8040)

_BYTE_PTR = ir.IntType(8).as_pointer()


def _mxcsr_call(builder, name, slot):
    fnty = ir.FunctionType(ir.VoidType(), [_BYTE_PTR])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [builder.bitcast(slot, _BYTE_PTR)])


@intrinsic
def _read_mxcsr(typingctx):
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)
    return types.uint32(), codegen


@intrinsic
def _write_mxcsr(typingctx, mode):
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()
    return types.void(types.uint32), codegen


if X86:
    @jit(inline="always")
    def fp_mode():
        """The calling thread's floating-point mode (MXCSR), uint32."""
        return _read_mxcsr()

    @jit(inline="always")
    def set_fp_mode(mode):
        """Make ``mode`` (uint32, from ``fp_mode``) the calling thread's mode."""
        _write_mxcsr(mode)
else:
    @jit(inline="always")
    def fp_mode():
        """The calling thread's floating-point mode: 0 (not an x86 processor)."""
        return np.uint32(0)

    @jit(inline="always")
    def set_fp_mode(mode):
        """Nothing to do on a processor other than x86."""


@jit(inline="always")
def flush_denormals():
    """Flush denormals to zero on the calling thread; returns the mode to restore (uint32)."""
    mode = fp_mode()
    set_fp_mode(mode | FTZ_DAZ)
    return mode
