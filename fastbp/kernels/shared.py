"""Reading a value that another thread changes while a compiled loop runs.

The epoch loop asks before every batch how many of fastbp's compiled calls are under way in
the process (``fastbp._threads`` keeps the count in a one-element int64 array). A plain read
could be kept in a register for the whole loop, since nothing in the loop writes it; an atomic
read is made every time. On x86 it is an ordinary load: it costs nothing more.

NumPy twin: none (the reference runs no threads).
"""

from numba.core import types
from numba.extending import intrinsic

from .._jit import jit


@intrinsic
def _atomic_first(typingctx, a):
    if not (isinstance(a, types.Array) and a.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(array.data, "monotonic", 8)
    return types.int64(a), codegen


@jit(inline="always")
def calls_under_way(running):
    """``running[0]`` read afresh (running: int64 array of shape (1,), or longer)."""
    return _atomic_first(running)
