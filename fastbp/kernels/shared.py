"""Values that several threads read and write while compiled code runs.

* The epoch loop asks before every batch how many of fastbp's compiled calls are under way in
  the process (``fastbp._threads`` keeps the count in a one-element int64 array). A plain read
  could be kept in a register for the whole loop, since nothing in the loop writes it; an
  atomic read is made every time. On x86 it is an ordinary load: it costs nothing more.
* The threads of one parallel region running a run of batches (``train.run_batches_parallel``)
  meet at a barrier twice per batch: each publishes how far it got with a release store into
  its own word of an int64 array, and reads the others' with acquire loads (what a thread
  wrote before its store is visible to a thread whose load sees that store). Compare-and-swap
  settles, once per region, whether each helper thread takes part.

NumPy twin: none (the reference runs no threads).
"""

import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

from .._jit import jit


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
def _compare_and_swap(typingctx, a, i, expected, new):
    if not (_int64_array(a) and isinstance(i, types.Integer) and expected == types.int64
            and new == types.int64):
        return None

    def codegen(context, builder, signature, args):
        pointer = _pointer(context, builder, signature.args[0], args[0], args[1])
        pair = builder.cmpxchg(pointer, args[2], args[3], "acq_rel", "acquire")
        return builder.extract_value(pair, 1)
    return types.boolean(a, i, expected, new), codegen


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
def compare_and_swap(a, i, expected, new):
    """Atomically: if ``a[i] == expected``, set it to ``new`` and return True; else False."""
    return _compare_and_swap(a, i, np.int64(expected), np.int64(new))
