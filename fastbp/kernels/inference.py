"""Inference: outputs, or loss and metric sums, of a run of rows, a chunk at a time.

One kernel does both: ``predict`` calls it with ``loss = -1`` and an output array,
``evaluate`` with a loss and no output rows. ``fastbp._threads`` runs it on several threads
for large ``predict`` calls, each thread on its own run of rows with its own work buffer.

NumPy twin: ``fastbp.reference.inference``.
"""

import numpy as np

from .._jit import jit
from ..codes import LINEAR, OC_ACT, OC_BUF, OC_OUT, OF_ALPHA, ST_LOSS, ST_ROWS
from .losses import is_fused, loss_delta, output_stats
from .network import block, forward_pass, loss_norm
from .views import copy_to, flat, readonly


@jit
def infer(X, csr, Y, labels, sw, lo, hi, chunk, ops, opf, loss, loss_param, acc_kind, params, aux,
          acts, deltas, out, stats):
    """Rows ``lo`` to ``hi`` of ``X`` through the network in inference mode, ``chunk`` rows at
    a time.

    Parameters
    ----------
    X : float32 array of shape (n, s0), read-only; (n, 0) for sparse data
    csr : tuple of three arrays
        The data as CSR when it is sparse, else three empty arrays (``network.forward_pass``).
    Y, labels, sw
        Targets, class labels and sample weights (``losses.loss_delta``); used when
        ``loss >= 0``.
    lo, hi, chunk : int
        The rows, and how many go through at once (the work buffers' row capacity).
    loss : int
        Loss code: its value and the metrics over the rows are added into ``stats``
        (``ST_LOSS`` receives ``sum_i w_i loss_i``, ``ST_ROWS`` the normaliser's total; the
        penalty is not included). -1: outputs only.
    acts, deltas : float32 arrays of shape (A,)
        Work buffers laid out for ``chunk`` rows (``deltas`` used with a loss only).
    out : float32 array of shape (n, k), or (0, k)
        Receives the outputs of rows ``lo`` to ``hi`` when it has rows.
    stats : float64 array of shape (N_STATS + 3 k,)
    """
    last = ops.shape[0] - 1
    k_out = ops[last, OC_OUT]
    act = ops[last, OC_ACT]
    scoring = loss >= 0
    sparse = csr[0].shape[0] > 0
    # with a loss, a fused output activation is applied by the loss (from the logits)
    out_act = LINEAR if scoring and is_fused(act, loss) else act
    # row indices typed as the training loop's (read-only), so that every kernel called here
    # is the one compiled for training
    no_rows = readonly(np.zeros(0, np.int64))
    for start in range(lo, hi, chunk):
        stop = min(start + chunk, hi)
        m = stop - start
        rows = readonly(np.arange(start, stop)) if scoring or sparse else no_rows
        forward_pass(X[start:stop], rows, ops, opf, out_act, params, aux, acts, np.bool_(False),
                     np.int64(0), np.int64(0), np.zeros(0), csr)
        a = block(acts, ops[last, OC_BUF], m, k_out)
        if scoring:
            stats[ST_LOSS] += loss_delta(loss, act, opf[last, OF_ALPHA], a, Y, labels, rows, sw,
                                         loss_param, 1.0, block(deltas, ops[last, OC_BUF], m,
                                                                k_out))
            stats[ST_ROWS] += loss_norm(rows, sw, loss_param)
            output_stats(a, Y, labels, rows, sw, acc_kind, stats)
        if out.shape[0] > 0:
            copy_to(flat(a), flat(out[start:stop]))
