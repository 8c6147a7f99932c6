"""The first dense layer on sparse (CSR) input in plain NumPy: the oracle for
``fastbp.kernels.sparse``."""

import numpy as np

from .activations import act_forward


def csr_rows(indptr, indices, values, rows, n_in, dtype):
    """The rows ``rows`` of a CSR matrix as a dense (m, n_in) array (the reference may
    densify a block: it is the oracle, not the fast path)."""
    out = np.zeros((len(rows), n_in), dtype)
    for i, r in enumerate(rows):
        lo, hi = indptr[r], indptr[r + 1]
        np.add.at(out[i], indices[lo:hi], values[lo:hi])
    return out


def sparse_dense_forward(indptr, indices, values, rows, W, b, code, alpha, a_out):
    """``a_out = f(X[rows] @ W + b)`` for CSR rows of X."""
    a_out[...] = csr_rows(indptr, indices, values, rows, W.shape[0], W.dtype) @ W
    act_forward(a_out, b, code, alpha)


def sparse_dense_grad(indptr, indices, values, rows, delta, grad_w, grad_b):
    """``grad_w = X[rows].T @ delta``, ``grad_b`` = column sums of ``delta``."""
    grad_w[...] = csr_rows(indptr, indices, values, rows, grad_w.shape[0], grad_w.dtype).T @ delta
    grad_b[...] = delta.sum(axis=0)
