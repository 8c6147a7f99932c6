"""Inference in plain NumPy: the oracle for ``fastbp.kernels.inference``."""

import numpy as np

from ..codes import LINEAR, OC_ACT, OC_BUF, OC_OUT, OF_ALPHA, ST_LOSS, ST_ROWS
from .losses import is_fused, loss_delta, output_stats
from .network import block, forward_pass, loss_norm


def infer(X, csr, Y, labels, sw, lo, hi, chunk, ops, opf, loss, loss_param, acc_kind, params, aux,
          acts, deltas, out, stats):
    """Rows ``lo`` to ``hi`` of X in inference mode, ``chunk`` at a time: outputs into
    ``out[lo:hi]`` (when ``out`` has rows) and, for ``loss >= 0``, loss and metric sums into
    ``stats`` (penalty excluded)."""
    last = len(ops) - 1
    k_out = ops[last, OC_OUT]
    act = ops[last, OC_ACT]
    scoring = loss >= 0
    out_act = LINEAR if scoring and is_fused(act, loss) else act
    for start in range(lo, hi, chunk):
        stop = min(start + chunk, hi)
        m = stop - start
        rows = np.arange(start, stop)
        forward_pass(X[start:stop], rows, ops, opf, out_act, params, aux, acts, False, 0, 0,
                     np.zeros(0), csr)
        a = block(acts, ops[last, OC_BUF], m, k_out)
        if scoring:
            stats[ST_LOSS] += loss_delta(loss, act, opf[last, OF_ALPHA], a, Y, labels, rows, sw,
                                         loss_param, 1.0, block(deltas, ops[last, OC_BUF], m,
                                                                k_out))
            stats[ST_ROWS] += loss_norm(rows, sw, loss_param)
            output_stats(a, Y, labels, rows, sw, acc_kind, stats)
        if out.shape[0] > 0:
            out[start:stop] = a
