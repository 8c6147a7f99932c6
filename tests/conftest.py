"""Shared helpers: small networks described by the same tables the kernels read.

Naming: results of the NumPy reference are ``ref_*``, results of the compiled kernels ``comp_*``.
"""

import numpy as np
import pytest

from fastbp import codes
from fastbp.layers import BatchNormalization, Dense, Dropout
from fastbp.layout import Layout

ACTIVATION_NAMES = sorted(codes.ACTIVATIONS)
LOSS_NAMES = sorted(codes.LOSSES)


class Net:
    """A network's tables, parameters and buffers, in a chosen float dtype.

    ``spec`` is a list of layers, or of (units, activation) pairs for plain dense stacks.
    """

    def __init__(self, n_features, spec, rng, dtype=np.float32, rows=16, l1=0.0, l2=0.0,
                 alpha=None):
        layers = []
        for item in spec:
            if isinstance(item, tuple):
                units, act = item
                item = Dense(units, activation=act,
                             alpha=alpha if act in ("leaky_relu", "elu") else None, l1=l1, l2=l2)
            layers.append(item)
        self.layout = lay = Layout(n_features, layers)
        self.params = (rng.standard_normal(lay.n_params) * 0.5).astype(dtype)
        for row in lay.ops:  # batch norm: gamma around 1
            if row[codes.OC_KIND] == codes.OP_BATCHNORM:
                p, n = row[codes.OC_PARAM], row[codes.OC_OUT]
                self.params[p:p + n] = (1 + 0.3 * rng.standard_normal(n)).astype(dtype)
        self.aux = np.concatenate([np.concatenate([rng.standard_normal(n) * 0.1,
                                                   rng.uniform(0.5, 2.0, n)])
                                   for n in lay.ops[lay.ops[:, codes.OC_KIND] ==
                                                    codes.OP_BATCHNORM, codes.OC_OUT]]
                                  or [np.zeros(0)]).astype(dtype)
        self.dtype = dtype
        self.rows = rows
        self.ops, acts, deltas = lay.buffers(rows)
        self.opf, self.runs = lay.opf, lay.runs
        self.acts = acts.astype(dtype)
        self.deltas = deltas.astype(dtype)
        self.grads = np.zeros(lay.n_params, dtype)

    def astype(self, dtype):
        other = object.__new__(Net)
        other.__dict__.update(self.__dict__)
        other.dtype = dtype
        for name in ("params", "aux", "acts", "deltas", "grads"):
            setattr(other, name, getattr(self, name).astype(dtype))
        return other


def dense_spec(sizes, activations):
    return list(zip(sizes, activations))


def targets_for(loss, act, m, k, rng, dtype=np.float32, sparse=False):
    """(Y, labels) suited to the loss: class indices or one-hot, 0/1, or real values."""
    if loss == "categorical_crossentropy":
        labels = rng.integers(0, k, m).astype(np.int64)
        if sparse:
            return np.zeros((0, k), dtype), labels
        return np.eye(k, dtype=dtype)[labels], np.zeros(0, np.int64)
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, (m, k)).astype(dtype), np.zeros(0, np.int64)
    if loss == "poisson":
        return rng.poisson(1.5, (m, k)).astype(dtype), np.zeros(0, np.int64)
    return rng.standard_normal((m, k)).astype(dtype), np.zeros(0, np.int64)


def loss_param(loss, k, norm_by_weight=0.0, per_sample_penalty=0.0):
    from fastbp import losses
    p = losses.get(loss).loss_param(k)
    p[codes.LP_NORM_BY_WEIGHT] = norm_by_weight
    p[codes.LP_PENALTY_PER_SAMPLE] = per_sample_penalty
    return p


def stats_row(k):
    return np.zeros(codes.N_STATS + codes.ST_PER_OUTPUT * k)


def epoch_args(net, X, Y, labels, sw, order, batch_size, loss, p, opt=codes.NO_STEP, hyper=None,
               state=None, t=0, shards=1, acc_kind=codes.ACC_SKIP, seed=7, diagnostics=False,
               csr=None, by_units=False):
    """The arguments of ``train_epoch`` (the reference's, in order) for ``net``'s tables and
    parameters, with fresh work buffers of ``net.dtype`` for ``shards`` shards (``by_units``:
    that many blocks of units, one buffer for all rows); ``csr``: the data as (indptr,
    indices, values), X then (n, 0). Returns ``(args, buffers)``; ``buffers`` is a dict of the
    arrays the loop writes."""
    from fastbp import sparse
    csr = sparse.EMPTY if csr is None else csr
    lay, dtype = net.layout, net.dtype
    rows = batch_size if by_units else -(-batch_size // shards)
    whole = 1 if by_units else shards
    ops, size = lay.tables(rows)
    k = lay.n_outputs
    buffers = {
        "grads": np.zeros((whole, lay.n_params), dtype),
        "xb": np.zeros((whole, rows, X.shape[1]), dtype),
        "acts": np.zeros((whole, size), dtype),
        "deltas": np.zeros((whole, size), dtype),
        "seg": np.zeros((shards, len(lay.runs), codes.N_SEG)),
        "scratch": np.zeros((3, shards)),
        "stats": np.zeros((shards, codes.N_STATS + codes.ST_PER_OUTPUT * k)),
        "diag": np.zeros((shards, lay.diag_size if diagnostics else 0)),
        "prev": np.zeros(lay.n_params if diagnostics else 0, dtype),
    }
    hyper = np.zeros(codes.N_HYPER) if hyper is None else hyper
    state = np.zeros((1, lay.n_params), dtype) if state is None else state
    sched = np.zeros(codes.N_SC)
    b = buffers
    args = (X, csr, Y, labels, sw, np.asarray(order, np.int64), batch_size, ops, net.opf,
            net.runs,
            codes.LOSSES[loss] if isinstance(loss, str) else loss, p, acc_kind, opt, hyper,
            sched, state, t, net.params, net.aux, b["grads"], b["xb"], b["acts"], b["deltas"],
            b["seg"], b["scratch"], b["stats"], b["diag"], b["prev"], seed)
    return args, buffers


def objective(net, x, Y, labels, sw, loss, p, backend="numpy", shards=1, seed=7, t=3):
    """Training-mode loss of all the rows of ``x`` as one batch, penalty included, through the
    epoch loop with ``NO_STEP``; its gradient goes to ``net.grads``. The running statistics
    are left as they were (batch norm's training output does not depend on them)."""
    from fastbp import engine
    aux = net.aux.copy()
    args, buffers = epoch_args(net, x, Y, labels, sw, np.arange(len(x)), len(x), loss, p,
                               shards=shards, seed=seed, t=t)
    args = list(args)
    args[19] = aux
    engine.get(backend).train_epoch(tuple(args))
    net.grads[:] = buffers["grads"][0]
    stats = buffers["stats"][0]
    return stats[codes.ST_LOSS] / stats[codes.ST_ROWS]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


__all__ = ["BatchNormalization", "Dropout"]
