"""BLAS's ``sgemm`` with leading dimensions: products into and out of blocks of larger matrices.

``np.dot`` in compiled code takes contiguous operands only; a block of W's columns, or of a
layer's output, is not contiguous, and Numba would copy it first. ``gemm`` calls the same
``sgemm`` that ``np.dot`` ends in (Numba's ``numba_xxgemm``, which calls SciPy's
``cython_blas``; linked by name, so a kernel that calls it is cached like any other) with
each operand's leading dimension, so a thread multiplies its block of columns in place.

Operands are row-major, passed as 1-D float32 arrays that start at the matrix's first element
(a slice of a flat parameter or work buffer): the (r, c) block at column j0 of a row-major
(r, n) matrix starts at element j0 and has leading dimension n.

NumPy twin: none needed (``A @ B`` on the blocks; ``fastbp.reference.units``).
"""

import numpy as np
from numba import types
from numba.np.linalg import ensure_blas

from .._jit import jit

ensure_blas()  # SciPy's BLAS, which ``numba_xxgemm`` calls, loadable (it is already for np.dot)

_xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char,                          # kind, transa, transb
    types.intp, types.intp, types.intp,                          # m, n, k
    types.CPointer(types.float32), types.CPointer(types.float32), types.intp,  # alpha, a, lda
    types.CPointer(types.float32), types.intp,                   # b, ldb
    types.CPointer(types.float32), types.CPointer(types.float32), types.intp,  # beta, c, ldc
))

#: alpha and beta: C = 1 A B + 0 C
_ONE_ZERO = np.array([1.0, 0.0], np.float32)
_SINGLE = np.int8(ord("s"))
#: the transpose flags: the operand as stored, or transposed
N = np.int8(ord("n"))
T = np.int8(ord("t"))


@jit
def gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc):
    """``C = op(A) @ op(B)``, row-major: C (m, n), op(A) (m, k), op(B) (k, n).

    ``op(X)`` is X (``N``) or X.T (``T``), X stored row-major from ``x[0]`` with rows ``ldx``
    elements apart; ``c`` likewise. a, b, c: float32 1-D arrays (flat buffers cut at the
    matrices' first elements). Nothing is called when m, n or k is 0 (C is then left as is:
    the caller's block is empty, or k = 0 does not occur in a layer).
    """
    if m == 0 or n == 0 or k == 0:
        return
    # column-major BLAS sees the row-major C as C.T = op(B).T @ op(A).T: the operands swap
    _xxgemm(_SINGLE, trans_b, trans_a, n, m, k, _ONE_ZERO[0:].ctypes, b.ctypes, ldb, a.ctypes,
            lda, _ONE_ZERO[1:].ctypes, c.ctypes, ldc)
