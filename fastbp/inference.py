"""Predictions and evaluations for any front end: chunks, threads and buffers around the
compiled ``infer``.

The rows are cut into chunks (their size depends on the rows and the network only) and each
thread predicts a run of whole chunks with BLAS sgemm (held to one thread inside fastbp's own
threads): a row's outputs do not depend on the thread count. They can differ in the last bits
with the chunk a row falls in (the rows beside it), never by more than float32 rounding.
"""

import numpy as np

from . import _threads, codes

#: rows per chunk: about 64 Ki floats of activations per buffer (kept in cache; measured best
#: on the small and medium workloads) ...
CHUNK_FLOATS = 2 ** 16
#: ... but never fewer than this many rows ...
MIN_CHUNK_ROWS = 256
#: ... and for networks heavy in weights, enough rows that every pass over the weights serves
#: twice as many floats of activations as it reads (wide workload: 1,536 rows, predict 54 k ->
#: 61 k rows/s), up to 16 MiB of activations per thread
WEIGHT_REUSE = 2
MAX_CHUNK_FLOATS = 2 ** 22
#: fewer rows than this per thread are not worth a thread
MIN_ROWS_PER_THREAD = 64


def chunk_rows(layout, n, batch_size=None):
    """Rows per pass over the network: ``batch_size`` if given, else by the rules above."""
    if batch_size is not None:
        return min(n, batch_size)
    if n <= MIN_CHUNK_ROWS:  # (never fewer than that: one chunk)
        return n
    width = layout.total_width
    rows = max(MIN_CHUNK_ROWS, CHUNK_FLOATS // width, WEIGHT_REUSE * layout.n_params // width)
    return max(1, min(n, rows, max(MIN_CHUNK_ROWS, MAX_CHUNK_FLOATS // width)))


def predict(backend, layout, params, aux, X, batch_size=None):
    """Outputs (n, k) float32 of the network for the checked float32 rows ``X`` (n, s0)."""
    with _threads.running():
        n = len(X)
        # the chunks depend on the rows and the network only, and each thread takes whole
        # chunks: a row's outputs do not depend on the thread count
        chunk = chunk_rows(layout, n, batch_size)
        threads = 1
        alone = _threads.alone()
        if n >= 2 * MIN_ROWS_PER_THREAD and backend.name == "numba" and alone:
            threads = max(1, min(_threads.get_num_threads(), n // MIN_ROWS_PER_THREAD,
                                 -(-n // chunk)))
        ops, size = layout.tables(chunk)
        acts = np.empty((threads, size), np.float32)
        out = np.empty((n, layout.n_outputs), np.float32)
        args = (X, EMPTY_Y, EMPTY_LABELS, EMPTY_SW, ops, layout.frozen_opf, -1, NO_LOSS_PARAM,
                codes.ACC_NONE, params, aux, acts, NO_DELTAS[:threads], chunk, out, NO_STATS)
        backend.infer(*args)  # (no BLAS inside: kernels.dense.product_by_rows)
        return out


def evaluate(backend, layout, params, aux, data, loss_code, loss_param, acc_kind,
             batch_size=None):
    """Metric sums (N_STATS + 3 k,) over prepared ``data`` (X, Y, labels, sw): ``ST_LOSS``
    holds ``sum_i w_i loss_i`` (penalty excluded), ``ST_ROWS`` the normaliser's total."""
    X, Y, labels, sw = data
    with _threads.running():
        chunk = chunk_rows(layout, len(X), batch_size)
        ops, acts, deltas = layout.buffers(chunk)
        stats = np.zeros(codes.N_STATS + codes.ST_PER_OUTPUT * layout.n_outputs)
        backend.infer(X, Y, labels, sw, ops, layout.opf, loss_code, loss_param, acc_kind,
                      params, aux, acts, deltas, chunk, np.empty((0, layout.n_outputs),
                                                                 np.float32), stats)
        return stats


# the arguments ``infer`` does not read when predicting (shared, read-only)
EMPTY_Y = np.zeros((0, 1), np.float32)
EMPTY_LABELS = np.zeros(0, np.int64)
EMPTY_SW = np.zeros(0, np.float32)
NO_LOSS_PARAM = np.zeros(codes.N_LOSS_PARAM)
NO_DELTAS = np.zeros((256, 0), np.float32)  # a (0,) buffer per thread: unused, never written
NO_STATS = np.zeros(codes.N_STATS)  # writable, as the stats ``evaluate`` passes: one signature
for _a in (EMPTY_Y, EMPTY_LABELS, EMPTY_SW, NO_LOSS_PARAM):
    _a.flags.writeable = False
