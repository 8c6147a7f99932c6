"""Compiled first dense layer on sparse (CSR) input: forward pass and weight gradient.

The data's rows are ``indptr`` (n + 1,), ``indices`` (nnz,), ``values`` (nnz,), row r holding
``values[indptr[r]:indptr[r + 1]]`` at columns ``indices[...]`` (scipy's CSR). The first layer
reads only the stored entries of the block's rows: its forward pass is a sum of the rows of W
the entries select, its weight gradient adds each entry's outer product with its row's delta
into the rows of ``grad_w`` it selects. Nothing is densified. (The input gradient of the first
layer is never needed.)

NumPy twin: ``fastbp.reference.sparse``.
"""

from .._jit import jit
from .activations import act_forward
from .views import flat


@jit
def sparse_dense_forward(indptr, indices, values, rows, W, b, code, alpha, a_out):
    """``a_out = f(X[rows] @ W + b)`` for CSR rows of X.

    Parameters
    ----------
    indptr : int64 array of shape (n + 1,); indices : int64 (nnz,); values : float32 (nnz,)
        The data, CSR.
    rows : int64 array of shape (m,)
        The block's rows in the data.
    W : float32 array of shape (n_in, n_out); b : float32 (n_out,)
    code, alpha
        Activation code and parameter.
    a_out : float32 array of shape (m, n_out)
        Overwritten with the layer's output.
    """
    m, n_out = a_out.shape
    for i in range(m):
        out = a_out[i]
        for j in range(n_out):
            out[j] = 0.0
        r = rows[i]
        for p in range(indptr[r], indptr[r + 1]):
            x = values[p]
            w = W[indices[p]]
            for j in range(n_out):
                out[j] += x * w[j]
    act_forward(a_out, b, code, alpha)


@jit
def sparse_dense_grad(indptr, indices, values, rows, delta, grad_w, grad_b):
    """Gradients of the first layer for CSR input: ``grad_w = X[rows].T @ delta`` (zero in the
    rows of W no entry of the block selects), ``grad_b`` the column sums of ``delta``.

    delta : float32 (m, n_out); grad_w : float32 (n_in, n_out), grad_b : float32 (n_out,),
    both overwritten.
    """
    m, n_out = delta.shape
    flat_w = flat(grad_w)
    for q in range(flat_w.shape[0]):
        flat_w[q] = 0.0
    for j in range(n_out):
        grad_b[j] = 0.0
    for i in range(m):
        d = delta[i]
        for j in range(n_out):
            grad_b[j] += d[j]
        r = rows[i]
        for p in range(indptr[r], indptr[r + 1]):
            x = values[p]
            g = grad_w[indices[p]]
            for j in range(n_out):
                g[j] += x * d[j]
