"""Sparse input: scipy's sparse matrices in the form the kernels read (``kernels.sparse``).

A ``CSR`` holds the rows of a sparse matrix as three arrays, ``indptr`` (n + 1,) int64,
``indices`` (nnz,) int64 and ``values`` (nnz,) float32, and its shape. The first layer of a
network trained or evaluated on it reads only the stored entries; nothing is densified.
"""

import numpy as np

from ._validation import to_float32


class CSR:
    """A sparse matrix's rows (CSR), checked and converted for the kernels."""

    __slots__ = ("indptr", "indices", "values", "shape")
    ndim = 2

    def __init__(self, indptr, indices, values, shape):
        self.indptr, self.indices, self.values = indptr, indices, values
        self.shape = (int(shape[0]), int(shape[1]))

    def __len__(self):
        return self.shape[0]

    @property
    def nnz(self):
        return len(self.values)

    def take(self, rows):
        """The rows ``rows`` (int array), as a new CSR."""
        rows = np.asarray(rows, np.int64)
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        lengths = stops - starts
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # positions of the kept entries: each row's run, one after another
        offsets = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return CSR(indptr, self.indices[offsets], self.values[offsets],
                   (len(rows), self.shape[1]))

    def toarray(self):
        """The dense (n, n_features) float32 array (for tests and small data)."""
        out = np.zeros(self.shape, np.float32)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        np.add.at(out, (rows, self.indices), self.values)
        return out

    def kernel_arrays(self):
        """``(X, csr)`` as the kernels take them: an (n, 0) dense stand-in and the three
        arrays."""
        return np.empty((self.shape[0], 0), np.float32), (self.indptr, self.indices,
                                                          self.values)


def is_sparse(data):
    """Whether ``data`` is a scipy.sparse matrix or array (without importing scipy)."""
    return hasattr(data, "tocsr") and hasattr(data, "nnz") and hasattr(data, "shape")


def from_scipy(matrix, name="X"):
    """A scipy.sparse matrix or array (CSR, CSC, COO, ...) as a checked ``CSR``: finite
    values, float32 without overflow, duplicates summed."""
    m = matrix.tocsr(copy=True)
    m.sum_duplicates()
    if m.dtype.kind not in "biuf":
        raise TypeError(f"{name} must contain only numbers; received a sparse matrix of "
                        f"dtype {m.dtype}")
    values = to_float32(np.asarray(m.data), name)
    return CSR(np.asarray(m.indptr, np.int64), np.asarray(m.indices, np.int64), values,
               m.shape)


#: the ``csr`` argument of the kernels for dense data: three empty arrays
EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
for _a in EMPTY:
    _a.flags.writeable = False


def kernel_input(X):
    """``(X, csr)`` for the kernels: a dense X with ``EMPTY``, or a ``CSR``'s arrays."""
    if isinstance(X, CSR):
        return X.kernel_arrays()
    return X, EMPTY
