"""Words that several threads read and write while compiled code runs, and the barrier.

* The epoch loop asks before every batch how many of fastbp's compiled calls are under way in
  the process (``fastbp._threads`` keeps the count in a one-element int64 array). A plain read
  could be kept in a register for the whole loop, since nothing in the loop writes it; an
  atomic read is made every time. On x86 it is an ordinary load: it costs nothing more.
* The threads of one epoch (``epoch.train_epoch``) meet at a barrier (``meet``) twice per
  parallel batch, and twice more per layer when the batch is split by units: each publishes how far it got with a release store into its own word of an int64
  array, and reads the others' with acquire loads (what a thread wrote before its store is
  visible to a thread whose load sees that store). Each word sits on its own 128-byte line,
  so no two threads write the same line.

NumPy twin: none (the reference runs no threads).
"""

import sys

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .._jit import jit
from .._platform import X86

#: int64 words per cache line pair: one word per 128 bytes
SY_LINE = 16
#: a waiting thread spins this many times (a few microseconds), then gives its core away at
#: every turn (``sched_yield``): on a machine with more runnable threads than cores, the thread
#: it waits for may need that core
SPINS = 1024
#: after this many turns of giving its core away (a few hundred microseconds on an idle core),
#: a waiting thread sleeps at every turn, ``NAP_US`` microseconds more every ``NAP_TURNS``
#: turns, up to ``NAP_MAX_US``. A thread that only yields stays runnable: with another
#: process busy on one of two cores, the helper threads of a serial stretch of an epoch,
#: yielding, took a third of the leader's core, and every batch ran 2x slower than on one
#: thread (``bench/hog.py``). Asleep, they take nothing; a helper woken late costs the first
#: batch after a switch to parallel, which the scheduler does not time.
YIELDS = 512
NAP_US, NAP_TURNS, NAP_MAX_US = 50, 16, 1000


def _pointer(context, builder, array_type, array, index):
    return cgutils.get_item_pointer(context, builder, array_type,
                                    context.make_array(array_type)(context, builder, array),
                                    [index])


def _int64_array(a):
    return isinstance(a, types.Array) and a.dtype == types.int64 and a.ndim == 1


@intrinsic
def _atomic_first(typingctx, a):
    if not (isinstance(a, types.Array) and a.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(array.data, "monotonic", 8)
    return types.int64(a), codegen


@intrinsic
def _load_acquire(typingctx, a, i):
    if not (_int64_array(a) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        pointer = _pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(pointer, "acquire", 8)
    return types.int64(a, i), codegen


@intrinsic
def _store_release(typingctx, a, i, v):
    if not (_int64_array(a) and isinstance(i, types.Integer) and v == types.int64):
        return None

    def codegen(context, builder, signature, args):
        pointer = _pointer(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], pointer, "release", 8)
        return context.get_dummy_value()
    return types.void(a, i, v), codegen


@intrinsic
def _spin_hint(typingctx):
    def codegen(context, builder, signature, args):
        if X86:  # PAUSE: tells the core this is a spin loop (less power, no memory-order flush)
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def _yield_cpu(typingctx):
    def codegen(context, builder, signature, args):
        # a symbol of the C library, resolved when the code is loaded (cacheable, unlike an
        # address)
        name = "SwitchToThread" if sys.platform == "win32" else "sched_yield"
        fn = cgutils.get_or_insert_function(builder.module,
                                            ir.FunctionType(ir.IntType(32), []), name)
        builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def _nap(typingctx, us):
    if not isinstance(us, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        if sys.platform == "win32":  # Sleep's unit is a millisecond: yield instead
            fn = cgutils.get_or_insert_function(builder.module,
                                                ir.FunctionType(ir.IntType(32), []),
                                                "SwitchToThread")
            builder.call(fn, [])
        else:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]), "usleep")
            builder.call(fn, [builder.trunc(args[0], ir.IntType(32))
                              if args[0].type.width > 32 else args[0]])
        return context.get_dummy_value()
    return types.void(us), codegen


@jit(inline="always")
def calls_under_way(running):
    """``running[0]`` read afresh (running: int64 array of shape (1,), or longer)."""
    return _atomic_first(running)


@jit(inline="always")
def load(a, i):
    """``a[i]`` (a: int64 (n,)) with acquire ordering: read afresh every time, and whatever the
    thread that stored it wrote before is visible after."""
    return _load_acquire(a, i)


@jit(inline="always")
def store(a, i, v):
    """``a[i] = v`` with release ordering (see ``load``)."""
    _store_release(a, i, np.int64(v))


@jit(inline="always")
def pause(turn):
    """One turn of a wait loop: a spin hint (x86 PAUSE) for the first ``SPINS`` turns, then
    the core given away (``sched_yield``) for ``YIELDS`` turns, then naps, longer and longer
    (``NAP_US``)."""
    if turn < SPINS:
        _spin_hint()
    elif turn < SPINS + YIELDS:
        _yield_cpu()
    else:
        _nap(min(NAP_MAX_US, NAP_US * (1 + (turn - SPINS - YIELDS) // NAP_TURNS)))


@jit(inline="always")
def wait_until_changed(a, i, seen):
    """Wait until ``a[i]`` differs from ``seen``; returns the new value (acquire)."""
    turn = 0
    value = load(a, i)
    while value == seen:
        pause(turn)
        turn += 1
        value = load(a, i)
    return value


@jit(inline="always")
def wait_for_all(a, first, n, phase):
    """Wait until each of the ``n`` words ``a[first + j * SY_LINE]`` has reached ``phase``."""
    turn = 0
    for j in range(n):
        while load(a, first + j * SY_LINE) < phase:
            pause(turn)
            turn += 1


@jit(inline="always")
def meet(sync, arrived, s, parts, together, phase):
    """Thread s's barrier number ``phase + 1`` with the other ``parts - 1`` threads (its word
    ``sync[arrived + s * SY_LINE]``, theirs beside it), when ``together``; returns the phase
    now reached (``phase`` itself when not together)."""
    if not together:
        return phase
    phase += 1
    store(sync, arrived + s * SY_LINE, phase)
    wait_for_all(sync, arrived, parts, phase)
    return phase
