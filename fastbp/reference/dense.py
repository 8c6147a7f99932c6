"""Dense layer in plain NumPy: the oracle for ``fastbp.kernels.dense``."""

from .activations import act_forward


def dense_forward(a_in, W, b, code, alpha, a_out):
    """``a_out = f(a_in @ W + b)``; a_in (m, n_in), W (n_in, n_out), b (n_out,), a_out (m, n_out)."""
    a_out[...] = a_in @ W
    act_forward(a_out, b, code, alpha)


def dense_grad(a_in, delta, grad_w, grad_b):
    """``grad_w = a_in.T @ delta`` (n_in, n_out); ``grad_b`` = column sums of delta (n_out,)."""
    grad_w[...] = a_in.T @ delta
    grad_b[...] = delta.sum(axis=0)


def dense_backward(delta, W, delta_in, scratch=None):
    """``delta_in = delta @ W.T``: dL/d(input), shape (m, n_in), from dL/dz (m, n_out).

    ``scratch`` is the compiled kernel's workspace (it may take the product as
    ``(W @ delta.T).T``, which is faster in BLAS for some shapes); the math needs none."""
    delta_in[...] = delta @ W.T
