"""Views of the work buffers (a 2-D block of a flat vector, a flat vector of a 2-D block), and
copies between them.

``buf[offset:offset + rows * cols].reshape((rows, cols))`` would do, but Numba's ``reshape``
carries an error path that formats the shapes into a message: compiling it pulls in Numba's
string machinery (``repr``, ``str.join``, integer formatting), about four seconds of every cold
start. These views check nothing: the caller knows the sizes fit (``fastbp.layout`` lays the
buffers out). For the same reason arrays are copied with ``copy_to``, not ``a[:] = b``.

NumPy twin: ``reshape`` (``fastbp.reference.network.block``).
"""

from numba.core import cgutils, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from .._jit import jit


def _contiguous(a, ndim):
    return isinstance(a, types.Array) and a.ndim == ndim and a.layout == "C"


def _view(context, builder, source_type, source, view_type, offset, shape):
    src = make_array(source_type)(context, builder, source)
    itemsize = src.itemsize
    view = make_array(view_type)(context, builder)
    strides, stride = [], itemsize
    for extent in reversed(shape[1:]):
        strides.insert(0, stride)
        stride = builder.mul(stride, extent)
    strides.insert(0, stride)
    populate_array(view, data=builder.gep(src.data, [offset]),
                   shape=cgutils.pack_array(builder, shape),
                   strides=cgutils.pack_array(builder, strides),
                   itemsize=itemsize, meminfo=src.meminfo, parent=src.parent)
    return impl_ret_borrowed(context, builder, view_type, view._getvalue())


@intrinsic
def matrix(typingctx, buf, offset, rows, cols):
    """``buf[offset : offset + rows * cols]`` as a C-contiguous (rows, cols) array (a view).

    buf : 1-D C-contiguous array; offset, rows, cols : integers.
    """
    if not (_contiguous(buf, 1) and all(isinstance(x, types.Integer)
                                        for x in (offset, rows, cols))):
        return None
    view_type = buf.copy(ndim=2, layout="C")

    def codegen(context, builder, signature, args):
        off, m, n = (context.cast(builder, value, ty, types.intp)
                     for value, ty in zip(args[1:], signature.args[1:]))
        return _view(context, builder, signature.args[0], args[0], view_type, off, [m, n])
    return view_type(buf, offset, rows, cols), codegen


@intrinsic
def flat(typingctx, a):
    """A C-contiguous (m, n) array as a flat (m * n,) view."""
    if not _contiguous(a, 2):
        return None
    view_type = a.copy(ndim=1, layout="C")

    def codegen(context, builder, signature, args):
        src = make_array(signature.args[0])(context, builder, args[0])
        m, n = cgutils.unpack_tuple(builder, src.shape, 2)
        zero = context.get_constant(types.intp, 0)
        return _view(context, builder, signature.args[0], args[0], view_type, zero,
                     [builder.mul(m, n)])
    return view_type(a), codegen


@intrinsic
def readonly(typingctx, a):
    """The same array, typed read-only: one compiled version of a kernel serves both the
    data (read-only, see ``fastbp.data``) and a gathered copy of its rows."""
    if not isinstance(a, types.Array):
        return None
    view_type = a.copy(readonly=True)

    def codegen(context, builder, signature, args):
        return impl_ret_borrowed(context, builder, view_type, args[0])
    return view_type(a), codegen


@jit(inline="always")
def copy_to(src, dst):
    """``dst[:] = src`` for two 1-D arrays of one length, without the shape check (and its
    error message) of NumPy-style assignment."""
    for i in range(src.shape[0]):
        dst[i] = src[i]
