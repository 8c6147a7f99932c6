"""From a list of layers to what the kernels read: the operation tables, the flat parameter
vector's layout, the penalty runs, and the work buffers.

Each ``Dense`` becomes a dense op, each ``BatchNormalization`` a batch-norm op, each
``Dropout`` a dropout op; an ``Activation`` folds into the op before it. All parameters live in
one float32 vector, op by op (W then b; gamma then beta); batch-norm running statistics live
in a second vector, ``aux``. The gradient and every optimizer state vector share the
parameter vector's layout.
"""

import copy

import numpy as np

from . import codes
from .kernels.dense import transpose_scratch
from .layers import Activation, BatchNormalization, Dense, Dropout


class Layout:
    """The compiled form of a layer list for inputs of width ``n_features``.

    Attributes
    ----------
    ops : int64 (K, N_OC)       operation table without buffer offsets (see ``tables``)
    opf : float64 (K, N_OF)     activation parameter, dropout rate, batch-norm settings
    runs : float64 (R, N_RUN)   stretches of the parameter vector and their L1/L2 penalty
    n_params, n_aux : int       lengths of the parameter and running-statistics vectors
    layer_op : list             op index of each layer (None for a folded Activation)
    layer_param, layer_aux : list   offsets of each layer's parameters / statistics
    layer_width : list          input width of each layer
    layer_run : list            index in ``runs`` of each dense layer's W (None otherwise)
    diag_size : int             length of one diagnostics row
    """

    def __init__(self, n_features, layers):
        _check_order(layers)
        ops, opf, runs = [], [], []
        self.layer_op, self.layer_param, self.layer_aux, self.layer_width = [], [], [], []
        self.layer_run = []  # for dense layers, the index of their weight matrix's run
        width, p, aux = n_features, 0, 0
        for layer in layers:
            if isinstance(layer, Activation):
                ops[-1][codes.OC_ACT] = layer.activation_code
                opf[-1][codes.OF_ALPHA] = layer.alpha
                self.layer_op.append(None)
                self.layer_param.append(p)
                self.layer_aux.append(aux)
                self.layer_width.append(width)
                self.layer_run.append(None)
                continue
            row = [0] * codes.N_OC
            frow = [0.0] * codes.N_OF
            row[codes.OC_IN] = width
            row[codes.OC_PARAM] = p
            row[codes.OC_AUX] = aux
            row[codes.OC_ALIVE] = -1
            row[codes.OC_SCRATCH] = -1
            self.layer_op.append(len(ops))
            self.layer_param.append(p)
            self.layer_aux.append(aux)
            self.layer_width.append(width)
            self.layer_run.append(len(runs) if isinstance(layer, Dense) else None)
            if isinstance(layer, Dense):
                row[codes.OC_KIND] = codes.OP_DENSE
                out = layer.units
                runs.append((p, p + width * out, layer.l1, layer.l2))
                runs.append((p + width * out, p + (width + 1) * out, 0.0, 0.0))
                p += (width + 1) * out
            elif isinstance(layer, BatchNormalization):
                row[codes.OC_KIND] = codes.OP_BATCHNORM
                out = width
                frow[codes.OF_MOMENTUM] = layer.momentum
                frow[codes.OF_EPS] = layer.epsilon
                runs.append((p, p + 2 * out, 0.0, 0.0))
                p += 2 * out
                aux += 2 * out
            else:
                row[codes.OC_KIND] = codes.OP_DROPOUT
                out = width
                frow[codes.OF_RATE] = layer.rate
            if not isinstance(layer, Dropout):
                row[codes.OC_ACT] = layer.activation_code
                frow[codes.OF_ALPHA] = layer.alpha
            row[codes.OC_OUT] = out
            ops.append(row)
            opf.append(frow)
            width = out
        self.ops = np.array(ops, np.int64)
        self.opf = np.array(opf, np.float64)
        self.runs = np.array(runs, np.float64).reshape(-1, codes.N_RUN)
        self.n_params, self.n_aux = int(p), int(aux)
        self.n_features = int(n_features)
        # diagnostics row: two sums per run, then one flag per unit of each dense ReLU op
        offset = codes.DG_PER_RUN * len(self.runs)
        for row in self.ops:
            if row[codes.OC_KIND] == codes.OP_DENSE and row[codes.OC_ACT] == codes.RELU:
                row[codes.OC_ALIVE] = offset
                offset += row[codes.OC_OUT]
        self.diag_size = int(offset)
        self.total_width = int(self.ops[:, codes.OC_OUT].sum())  # floats per row, all blocks
        self._tables = {}  # rows -> tables(rows)

    @property
    def frozen_opf(self):
        """``opf`` as a read-only view, kept until ``opf`` is replaced (what ``predict`` passes
        to the kernels, which take read-only arrays)."""
        cached = getattr(self, "_frozen_opf", None)
        if cached is None or cached.base is not self.opf:
            cached = self.opf.view()
            cached.flags.writeable = False
            self._frozen_opf = cached
        return cached

    def reading_logits_as(self, act):
        """This layout with the last op's activation set to ``act`` (the one a ``from_logits``
        loss is fused with) for training and evaluation: the kernels then take the network's
        linear outputs as logits. Parameters, offsets and ``opf`` are shared."""
        twin = copy.copy(self)
        twin.ops = self.ops.copy()
        twin.ops[-1, codes.OC_ACT] = act
        twin._tables = {}
        return twin

    @property
    def n_ops(self):
        return len(self.ops)

    @property
    def n_outputs(self):
        return int(self.ops[-1, codes.OC_OUT])

    @property
    def output_activation(self):
        return int(self.ops[-1, codes.OC_ACT])

    @property
    def has_batchnorm(self):
        return bool((self.ops[:, codes.OC_KIND] == codes.OP_BATCHNORM).any())

    @property
    def splits_by_units(self):
        """Whether a batch of this network can be split by units (``kernels.units``): dense
        layers only, at least one hidden, none of them softmax (a row's softmax needs all its
        units)."""
        kinds, hidden = self.ops[:, codes.OC_KIND], self.ops[:-1, codes.OC_ACT]
        return bool(len(self.ops) >= 2 and (kinds == codes.OP_DENSE).all()
                    and not (hidden == codes.SOFTMAX).any())

    @property
    def widest(self):
        return int(max(self.n_features, self.ops[:, codes.OC_OUT].max()))

    def tables(self, rows):
        """``(ops, size)``: the op table with buffer offsets for blocks of ``rows`` rows, and
        the length of one work buffer. Op k's output block is at ``OC_BUF``; a batch-norm op
        also keeps 1/std, the mean, then the normalised input at ``OC_XHAT``. The blocks are
        followed by the workspace ``dense_backward`` may need (at ``OC_SCRATCH``, often empty).
        ``ops`` is read-only (and kept for the next call with as many rows)."""
        cached = self._tables.get(rows)
        if cached is not None:
            return cached
        ops = self.ops.copy()
        offset = 0
        scratch = 0
        for k, row in enumerate(ops):
            row[codes.OC_BUF] = offset
            offset += rows * row[codes.OC_OUT]
            if row[codes.OC_KIND] == codes.OP_BATCHNORM:
                row[codes.OC_XHAT] = offset
                offset += (rows + 2) * row[codes.OC_OUT]
            if row[codes.OC_KIND] == codes.OP_DENSE and k > 0:
                scratch = max(scratch, transpose_scratch(rows, row[codes.OC_IN],
                                                         row[codes.OC_OUT]))
        ops[:, codes.OC_SCRATCH] = offset
        offset += scratch
        ops.flags.writeable = False
        if len(self._tables) < 8:  # the few chunk sizes a model predicts with
            self._tables[rows] = (ops, int(offset))
        return ops, int(offset)

    def buffers(self, rows, threads=1, deltas=True):
        """``(ops, acts, deltas)`` for inference or evaluation in chunks of ``rows`` rows, one
        work buffer per thread: ``acts`` and ``deltas`` (threads, A); ``deltas`` (threads, 0)
        when not wanted (predictions)."""
        ops, size = self.tables(rows)
        return (ops, np.zeros((threads, size), np.float32),
                np.zeros((threads, size if deltas else 0), np.float32))

    def shard_buffers(self, batch_size, shards, diagnostics=False, by_units=False):
        """Work buffers of a training loop that cuts each batch into ``shards`` row shards, or,
        ``by_units``, splits it into that many blocks of units (``kernels.units``).

        Returns a dict: ``ops`` (with buffer offsets for ``rows = ceil(batch_size / S)``),
        ``xb`` (S, rows, s0), ``acts`` and ``deltas`` (S, A), ``grads`` (S, P),
        ``seg`` (S, R, N_SEG), ``scratch`` (3, S), ``diag`` (S, D or 0), ``prev`` (P or 0,).
        By units, one ``xb``, ``acts``, ``deltas`` and ``grads`` for all of a batch's rows
        (``rows = batch_size``).
        """
        rows = batch_size if by_units else -(-batch_size // shards)
        whole = 1 if by_units else shards
        ops, size = self.tables(rows)
        return {
            "ops": ops,
            "xb": np.zeros((whole, rows, self.n_features), np.float32),
            "acts": np.zeros((whole, size), np.float32),
            "deltas": np.zeros((whole, size), np.float32),
            "grads": np.zeros((whole, self.n_params), np.float32),
            "seg": np.zeros((shards, len(self.runs), codes.N_SEG)),
            "scratch": np.zeros((3, shards)),
            "diag": np.zeros((shards, self.diag_size if diagnostics else 0)),
            "prev": np.zeros(self.n_params if diagnostics else 0, np.float32),
        }


def _check_order(layers):
    """Reject layer sequences that have no meaning, with the reason."""
    if not any(isinstance(layer, Dense) for layer in layers):
        raise ValueError("the model needs at least one Dense layer")
    for i, layer in enumerate(layers):
        if isinstance(layer, Activation):
            before = layers[i - 1] if i > 0 else None
            if not isinstance(before, (Dense, BatchNormalization)):
                raise ValueError(f"layer {i} (Activation) must follow a Dense or "
                                 f"BatchNormalization layer; received it after "
                                 f"{type(before).__name__ if before else 'nothing'}")
            if before.activation != "linear":
                raise ValueError(f"layer {i} (Activation) follows a layer that already has "
                                 f"activation {before.activation!r}; give that layer "
                                 f"activation=None (linear) instead")
    # a Dropout last is allowed, as in Keras: it drops outputs while training and does
    # nothing at inference
