"""The compiled training loop: a whole epoch of mini-batch backpropagation in one call.

The network arrives as small arrays (see ``fastbp.layout``):

* ``sizes`` int64 (L + 1,): widths s0 (features) .. sL (outputs);
* ``w_off``, ``b_off`` int64 (L,): offsets of W_l (s_l x s_{l+1}, row-major) and b_l in the
  flat float32 parameter vector ``params``; ``grads`` and each row of ``state`` share them;
* ``act`` int64 (L,), ``alpha`` float64 (L,): activation code and parameter per layer;
* ``l1``, ``l2`` float64 (L,): penalty coefficients per layer.

Work buffers are flat float32 vectors allocated once per fit: ``acts`` holds each layer's
output, ``deltas`` each layer's dL/dz, layer l at offset ``act_off[l]`` as a (rows, s_{l+1})
block whose row capacity is the batch size. ``xb`` (batch, s0) receives the gathered rows.

NumPy twin: ``fastbp.reference.train``.
"""

import numpy as np

from .._jit import jit
from ..codes import ACC_SKIP, LINEAR, LP_NORM_BY_WEIGHT, LP_PENALTY_PER_SAMPLE, OK, ST_LOSS, ST_ROWS
from .dense import dense_backward, dense_forward, dense_grad
from .losses import is_fused, loss_delta, output_stats
from .optim import optimizer_step, penalty


@jit(inline="always")
def block(buf, offset, rows, cols):
    """View ``buf[offset : offset + rows * cols]`` as a C-contiguous (rows, cols) matrix."""
    return buf[offset:offset + rows * cols].reshape((rows, cols))


@jit
def gather_rows(X, rows, out):
    """``out[i] = X[rows[i]]``: copy a mini-batch's rows into a contiguous buffer.

    X : float32 (n, f); rows : int64 (m,); out : float32 (m, f), overwritten.
    """
    f = X.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(f):
            out[i, j] = X[r, j]


@jit
def batch_norm(rows, sw, loss_param):
    """The batch loss's normaliser: the row count, or the sum of the rows' sample weights."""
    if sw.shape[0] == 0 or loss_param[LP_NORM_BY_WEIGHT] == 0.0:
        return float(rows.shape[0])
    total = 0.0
    for i in range(rows.shape[0]):
        total += sw[rows[i]]
    return total


@jit
def forward_pass(x, sizes, w_off, b_off, act, alpha, out_act, params, acts, act_off):
    """Forward pass through every layer.

    Parameters
    ----------
    x : float32 array of shape (m, s0)
    out_act : int
        Activation code used for the last layer (LINEAR when a fused loss applies its own).
    acts : float32 array
        Layer l's output is written to ``block(acts, act_off[l], m, sizes[l + 1])``.
    """
    m = x.shape[0]
    n_layers = w_off.shape[0]
    a_in = x
    for l in range(n_layers):
        W = block(params, w_off[l], sizes[l], sizes[l + 1])
        b = params[b_off[l]:b_off[l] + sizes[l + 1]]
        a_out = block(acts, act_off[l], m, sizes[l + 1])
        code = act[l] if l < n_layers - 1 else out_act
        dense_forward(a_in, W, b, code, alpha[l], a_out)
        a_in = a_out


@jit
def backward_pass(x, sizes, w_off, b_off, act, alpha, params, grads, acts, deltas, act_off):
    """Backward pass: weight gradients of every layer and deltas of every hidden layer.

    On entry the last layer's block of ``deltas`` holds dL/dz_L. ``grads`` is overwritten.
    """
    m = x.shape[0]
    n_layers = w_off.shape[0]
    for l in range(n_layers - 1, -1, -1):
        delta = block(deltas, act_off[l], m, sizes[l + 1])
        a_in = x if l == 0 else block(acts, act_off[l - 1], m, sizes[l])
        grad_w = block(grads, w_off[l], sizes[l], sizes[l + 1])
        grad_b = grads[b_off[l]:b_off[l] + sizes[l + 1]]
        dense_grad(a_in, delta, grad_w, grad_b)
        if l > 0:
            W = block(params, w_off[l], sizes[l], sizes[l + 1])
            delta_in = block(deltas, act_off[l - 1], m, sizes[l])
            dense_backward(delta, W, a_in, act[l - 1], alpha[l - 1], delta_in)


@jit
def batch_objective(x, Y, labels, rows, sw, sizes, w_off, b_off, act, alpha, l1, l2,
                    loss, loss_param, params, grads, acts, deltas, act_off):
    """Loss of one batch and its gradient with respect to every parameter.

    Parameters
    ----------
    x : float32 array of shape (m, s0)
        The batch's inputs (rows ``rows`` of the data, already gathered).
    Y, labels, rows, sw
        Targets, class labels, row indices and sample weights (see ``losses.loss_delta``).
    grads : float32 array of shape (P,)
        Overwritten with the gradient, penalty included.

    Returns
    -------
    float
        ``sum_i w_i loss_i / norm + penalty``.
    """
    m = x.shape[0]
    last = w_off.shape[0] - 1
    out_act = LINEAR if is_fused(act[last], loss) else act[last]
    forward_pass(x, sizes, w_off, b_off, act, alpha, out_act, params, acts, act_off)
    norm = batch_norm(rows, sw, loss_param)
    out = block(acts, act_off[last], m, sizes[last + 1])
    delta = block(deltas, act_off[last], m, sizes[last + 1])
    data = loss_delta(loss, act[last], alpha[last], out, Y, labels, rows, sw, loss_param,
                      norm, delta)
    backward_pass(x, sizes, w_off, b_off, act, alpha, params, grads, acts, deltas, act_off)
    scale = 1.0 / norm if loss_param[LP_PENALTY_PER_SAMPLE] != 0.0 else 1.0
    return data / norm + penalty(params, grads, sizes, w_off, l1, l2, scale)


@jit
def train_epoch(X, Y, labels, sw, order, batch_size, sizes, w_off, b_off, act, alpha, l1, l2,
                loss, loss_param, acc_kind, opt, hyper, state, t,
                params, grads, xb, acts, deltas, act_off, stats):
    """Train for one epoch: every mini-batch of ``order``, forward, backward and update.

    Parameters
    ----------
    X : float32 array of shape (n, s0)
    Y : float32 array of shape (n, k) or (0, k)
    labels : int64 array of shape (n,) or (0,)
    sw : float32 array of shape (n,) or (0,)
    order : int64 array of shape (n_rows,)
        Rows in the order they are visited this epoch (a permutation when shuffling).
        Consecutive slices of ``batch_size`` rows form the batches; the last may be smaller.
    batch_size : int
    acc_kind : int
        How accuracy is counted (``ACC_*``); ``ACC_SKIP`` skips all metric sums.
    opt : int
        Optimizer code; ``hyper``, ``state`` as in ``optim.optimizer_step``.
    t : int
        Steps taken before this epoch.
    params : float32 array of shape (P,)
        Updated in place.
    grads, xb, acts, deltas : float32 work buffers
    stats : float64 array of shape (N_STATS,)
        Accumulates the loss sum, row count and metric sums (``ST_*``).

    Returns
    -------
    status : int
        ``OK`` (-1), or the index of the batch whose loss was not finite; training stops
        there, before that batch's update.
    t : int
        Steps taken after this epoch.
    """
    n = order.shape[0]
    last = w_off.shape[0] - 1
    batch = 0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        rows = order[start:stop]
        x = xb[:m]
        gather_rows(X, rows, x)
        value = batch_objective(x, Y, labels, rows, sw, sizes, w_off, b_off, act, alpha, l1, l2,
                                loss, loss_param, params, grads, acts, deltas, act_off)
        if not np.isfinite(value):
            return batch, t
        t += 1
        optimizer_step(opt, params, grads, state, hyper, t)
        stats[ST_LOSS] += value * m
        stats[ST_ROWS] += m
        if acc_kind != ACC_SKIP:
            out = block(acts, act_off[last], m, sizes[last + 1])
            output_stats(out, Y, labels, rows, sw, acc_kind, stats)
        batch += 1
    return OK, t


@jit
def evaluate(X, Y, labels, sw, sizes, w_off, b_off, act, alpha, loss, loss_param, acc_kind,
             params, acts, deltas, act_off, chunk, stats):
    """Loss and metric sums over a whole data set, without updating anything.

    The data is processed in consecutive chunks of at most ``chunk`` rows (the buffers'
    row capacity). ``stats[ST_LOSS]`` receives ``sum_i w_i loss_i`` and ``stats[ST_ROWS]`` the
    normaliser's total (rows, or the weight sum); the penalty is not included.
    """
    n = X.shape[0]
    last = w_off.shape[0] - 1
    out_act = LINEAR if is_fused(act[last], loss) else act[last]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        m = stop - start
        rows = np.arange(start, stop)
        x = X[start:stop]
        forward_pass(x, sizes, w_off, b_off, act, alpha, out_act, params, acts, act_off)
        out = block(acts, act_off[last], m, sizes[last + 1])
        delta = block(deltas, act_off[last], m, sizes[last + 1])
        stats[ST_LOSS] += loss_delta(loss, act[last], alpha[last], out, Y, labels, rows, sw,
                                     loss_param, 1.0, delta)
        stats[ST_ROWS] += batch_norm(rows, sw, loss_param)
        output_stats(out, Y, labels, rows, sw, acc_kind, stats)


@jit
def predict(X, sizes, w_off, b_off, act, alpha, params, acts, act_off, chunk, out):
    """Outputs of the network for every row of ``X``, in chunks of at most ``chunk`` rows.

    X : float32 (n, s0); out : float32 (n, sL), overwritten.
    """
    n = X.shape[0]
    last = w_off.shape[0] - 1
    k = sizes[last + 1]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        x = X[start:stop]
        forward_pass(x, sizes, w_off, b_off, act, alpha, act[last], params, acts, act_off)
        result = block(acts, act_off[last], stop - start, k)
        out[start:stop] = result
