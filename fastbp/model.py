"""The Keras-like Model API: ``Sequential``, ``compile``, ``fit``, ``evaluate``, ``predict``.

Python runs only between epochs; each epoch is one call into the backend
(``fastbp.engine``), which holds the whole mini-batch loop.
"""

import time

import numpy as np

from . import _threads, codes, engine, io, losses, optimizers
from . import metrics as metric_table
from ._validation import (
    NonFiniteLossError, NotFittedError, check_int, check_lengths, check_matrix,
    check_sample_weight, describe,
)
from .callbacks import History
from .layers import Dense
from .layout import Layout

#: rows of the work buffers used by predict/evaluate: about 1 Mi floats per buffer
_CHUNK_FLOATS = 2 ** 20


class Sequential:
    """A stack of dense layers trained by backpropagation.

    Parameters
    ----------
    layers : list of Dense, optional
    seed : int, optional
        Seeds the model's own ``numpy.random.Generator``, which draws the initial weights and
        the shuffling order of every epoch. Same seed, same data: same weights after training.
    name : str, optional

    Examples
    --------
    >>> model = Sequential([Dense(64, activation="relu"), Dense(10, activation="softmax")], seed=0)
    >>> model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    >>> history = model.fit(X, y, epochs=10, batch_size=64)          # doctest: +SKIP
    """

    def __init__(self, layers=None, seed=None, name=None):
        if seed is not None:
            seed = check_int(seed, "seed", low=0)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string; received {describe(name)}")
        self.seed = seed
        self.name = name
        self.layers = []
        self._rng = np.random.default_rng(seed)
        self.layout = None
        self.params = None
        self.loss = None
        self.optimizer = None
        self.metrics = []
        self.backend = "numba"
        self.history = None
        if layers is not None:
            if isinstance(layers, Dense) or not hasattr(layers, "__iter__"):
                raise TypeError(f"layers must be a list of layers; received {describe(layers)}")
            for layer in layers:
                self.add(layer)

    # -- building ----------------------------------------------------------------------------
    def add(self, layer):
        """Append a layer (before the model is built)."""
        if not isinstance(layer, Dense):
            raise TypeError(f"layers must be fastbp layers such as fastbp.Dense; received "
                            f"{describe(layer)}")
        if self.built:
            raise ValueError("cannot add a layer to a model that is already built")
        self.layers.append(layer)

    @property
    def built(self):
        return self.params is not None

    @property
    def n_features(self):
        """Input width, known once the model is built (at the first fit)."""
        return None if self.layout is None else int(self.layout.sizes[0])

    def build(self, n_features):
        """Make the weights for inputs of width ``n_features`` (done by the first ``fit``)."""
        n_features = check_int(n_features, "n_features", low=1)
        if not self.layers:
            raise ValueError("the model has no layers; add at least one Dense layer")
        if self.built:
            if n_features != self.n_features:
                raise ValueError(f"the model is built for {self.n_features} features; "
                                 f"received n_features={n_features}")
            return
        layout = Layout(n_features, self.layers)
        params = np.zeros(layout.n_params, np.float32)
        for layer, n_in, (W, b) in zip(self.layers, layout.sizes[:-1], layout.weights(params)):
            layer.initialize(int(n_in), W, b, self._rng)
        self.layout, self.params = layout, params

    def compile(self, optimizer="adam", loss=None, metrics=None, backend="numba"):
        """Choose the optimizer, the loss, the metrics, and the backend that trains.

        Parameters
        ----------
        optimizer : str or Optimizer
            ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"`` or an instance.
        loss : str or Loss
            ``"mse"``/``"squared_error"``, ``"huber"``, ``"binary_crossentropy"``,
            ``"categorical_crossentropy"`` (or ``"sparse_categorical_crossentropy"``).
        metrics : list of str, optional
            ``"accuracy"``, ``"mse"``, ``"mae"``.
        backend : str
            ``"numba"`` (compiled, default) or ``"numpy"`` (the reference implementation).
        """
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='mse' or "
                             "loss='categorical_crossentropy'; received loss=None")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metrics = metric_table.get(metrics)
        self.backend = engine.check_backend(backend)
        return self

    # -- training -----------------------------------------------------------------------------
    def fit(self, X, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=0,
            sample_weight=None):
        """Train the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class indices or one-hot rows (categorical cross-entropy), 0/1 (binary
            cross-entropy), real values (squared error, Huber).
        epochs : int
        batch_size : int
            Rows per mini-batch, 1 (pure SGD) to n_samples (full batch); the last, smaller
            batch of an epoch is trained on.
        validation_data : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Evaluated after every epoch; reported as ``val_loss`` and ``val_<metric>``.
        shuffle : bool
            Visit the rows in a new random order every epoch (from the model's seed).
        verbose : int
            0 silent, 1 one line per epoch.
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights in the loss, the gradients and the metrics.

        Returns
        -------
        History
        """
        self._require_compiled("fit")
        epochs = check_int(epochs, "epochs", low=1)
        batch_size = check_int(batch_size, "batch_size", low=1)
        verbose = check_int(verbose, "verbose", low=0, high=1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False; received {describe(shuffle)}")
        data = self._prepare(X, y, sample_weight, "X", "y", "sample_weight")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (X_val, y_val) or "
                                 "(X_val, y_val, sample_weight_val); received "
                                 f"{describe(validation_data)}")
            val = self._prepare(*validation_data[:2],
                                validation_data[2] if len(validation_data) == 3 else None,
                                "validation_data[0]", "validation_data[1]", "validation_data[2]",
                                n_features=data[0].shape[1])
        self.build(data[0].shape[1])
        history = History({"epochs": epochs, "batch_size": batch_size, "samples": len(data[0]),
                           "steps": -(-len(data[0]) // batch_size)})
        self.history = history
        self._train(data, val, epochs, batch_size, bool(shuffle), verbose, history)
        return history

    def _prepare(self, X, y, sample_weight, x_name, y_name, w_name, n_features=None):
        """Checked kernel-ready arrays (X, Y, labels, sw) for this model."""
        X = check_matrix(X, x_name, n_features if n_features is not None else self.n_features)
        if y is None:
            raise TypeError(f"{y_name} must be an array-like of targets; received None")
        check_lengths(X, y if hasattr(y, "__len__") else np.asarray(y), (x_name, y_name))
        Y, labels = self.loss.targets(y, self.layers[-1].units, y_name)
        sw = check_sample_weight(sample_weight, len(X), w_name)
        sparse = labels.shape[0] > 0
        for name in self.metrics:
            if metric_table.METRICS[name][1] and sparse:
                raise ValueError(f"metric {name!r} needs dense targets; received class labels. "
                                 f"Pass one-hot rows or drop the metric.")
        return X, Y, labels, sw

    def _acc_kind(self, train=True):
        if train and not self.metrics:
            return codes.ACC_SKIP
        if "accuracy" not in self.metrics:
            return codes.ACC_NONE
        out = self.layers[-1]
        if out.activation == "softmax" or self.loss.code == codes.CATEGORICAL_CROSSENTROPY:
            return codes.ACC_ARGMAX
        if out.activation == "sigmoid" or self.loss.code == codes.BINARY_CROSSENTROPY:
            return codes.ACC_THRESHOLD
        return codes.ACC_ARGMAX if out.units > 1 else codes.ACC_THRESHOLD

    def _train(self, data, val, epochs, batch_size, shuffle, verbose, history):
        X, Y, labels, sw = data
        backend = engine.get(self.backend)
        lay = self.layout
        opt = self.optimizer
        state = opt.ensure_state(lay.n_params)
        hyper = opt.hyper()
        loss_param = self.loss.loss_param(lay.n_outputs)
        n = len(X)
        batch_size = min(batch_size, n)
        shards = _threads.n_shards(batch_size)
        parallel = backend.name == "numba" and _threads.parallel(shards)
        act_off, xb, acts, deltas, grads, seg, scratch = lay.shard_buffers(batch_size, shards)
        acc_kind = self._acc_kind()
        for epoch in range(epochs):
            start = time.perf_counter()
            order = self._rng.permutation(n) if shuffle else np.arange(n, dtype=np.int64)
            stats = np.zeros((shards, codes.N_STATS))
            saved = (self.params.copy(), state.copy(), opt.iterations)
            with _threads.single_threaded_blas(parallel):
                status, t = backend.train_epoch(
                    X, Y, labels, sw, order, batch_size, lay.sizes, lay.w_off, lay.b_off,
                    lay.act, lay.alpha, lay.l1, lay.l2, self.loss.code, loss_param, acc_kind,
                    opt.code, hyper, state, opt.iterations, self.params, grads, xb, acts,
                    deltas, act_off, seg, scratch, stats, parallel)
            stats = stats.sum(axis=0)  # shard order: fixed
            if status != codes.OK or not np.isfinite(self.params).all():
                self.params[:], state[:], opt.iterations = saved
                where = f"batch {status + 1} of " if status != codes.OK else "the end of "
                raise NonFiniteLossError(
                    f"the training loss became non-finite at {where}epoch {epoch + 1}/{epochs}; "
                    f"the model keeps the weights it had at the start of that epoch (the last "
                    f"finite ones). Try a smaller learning rate, gradient clipping "
                    f"(global_clipnorm=1.0) or standardised inputs.")
            opt.iterations = int(t)
            logs = {"loss": stats[codes.ST_LOSS] / stats[codes.ST_ROWS]}
            for name in self.metrics:
                logs[name] = metric_table.METRICS[name][0](stats)
            if val is not None:
                for key, value in self._evaluate_arrays(*val).items():
                    logs["val_" + key] = value
            logs = {key: float(value) for key, value in logs.items()}
            history.record(epoch, logs)
            if verbose:
                seconds = time.perf_counter() - start
                shown = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())
                print(f"Epoch {epoch + 1}/{epochs} - {shown} - {seconds:.3f}s", flush=True)

    # -- inference -----------------------------------------------------------------------------
    def _chunk(self, n, batch_size):
        if batch_size is not None:
            return min(n, check_int(batch_size, "batch_size", low=1))
        return min(n, max(256, _CHUNK_FLOATS // int(self.layout.sizes[1:].sum())))

    def _evaluate_arrays(self, X, Y, labels, sw, batch_size=None):
        backend = engine.get(self.backend)
        lay = self.layout
        chunk = self._chunk(len(X), batch_size)
        act_off, acts, deltas = lay.buffers(chunk)
        stats = np.zeros(codes.N_STATS)
        loss_param = self.loss.loss_param(lay.n_outputs)
        backend.evaluate(X, Y, labels, sw, lay.sizes, lay.w_off, lay.b_off, lay.act, lay.alpha,
                         self.loss.code, loss_param, self._acc_kind(train=False), self.params,
                         acts, deltas, act_off, chunk, stats)
        value = stats[codes.ST_LOSS] / stats[codes.ST_ROWS]
        if lay.l1.any() or lay.l2.any():
            scale = (1.0 / stats[codes.ST_ROWS]
                     if loss_param[codes.LP_PENALTY_PER_SAMPLE] else 1.0)
            value += backend.penalty(self.params, np.zeros_like(self.params), lay.sizes,
                                     lay.w_off, lay.l1, lay.l2, scale)
        logs = {"loss": value}
        for name in self.metrics:
            logs[name] = metric_table.METRICS[name][0](stats)
        return logs

    def evaluate(self, X, y, batch_size=None, sample_weight=None, return_dict=False):
        """Loss (penalty included) and metrics on the given data.

        Returns the loss alone when no metrics were compiled, else ``[loss, *metrics]``; a
        dict ``{"loss": ..., metric: ...}`` with ``return_dict=True``.
        """
        self._require_fitted("evaluate")
        data = self._prepare(X, y, sample_weight, "X", "y", "sample_weight")
        logs = {k: float(v) for k, v in self._evaluate_arrays(*data, batch_size).items()}
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def predict(self, X, batch_size=None):
        """Outputs of the last layer, float32 array of shape (n_samples, n_outputs).

        ``batch_size`` only sets how many rows are processed per pass (memory vs. speed).
        """
        self._require_fitted("predict")
        X = check_matrix(X, "X", self.n_features)
        backend = engine.get(self.backend)
        lay = self.layout
        chunk = self._chunk(len(X), batch_size)
        act_off, acts, _ = lay.buffers(chunk)
        out = np.empty((len(X), lay.n_outputs), np.float32)
        backend.predict(X, lay.sizes, lay.w_off, lay.b_off, lay.act, lay.alpha, self.params,
                        acts, act_off, chunk, out)
        return out

    def predict_proba(self, X, batch_size=None):
        """Class probabilities: softmax rows, or (1 - p, p) for a single sigmoid output.

        For several sigmoid outputs (multilabel), the probability of each label.
        """
        self._require_fitted("predict_proba")
        out = self.layers[-1]
        if out.activation not in ("softmax", "sigmoid"):
            raise ValueError(f"predict_proba needs a softmax or sigmoid output layer; this "
                             f"model's output activation is {out.activation!r}")
        p = self.predict(X, batch_size)
        if out.activation == "sigmoid" and out.units == 1:
            return np.hstack([1.0 - p, p])
        return p

    # -- weights, saving ------------------------------------------------------------------------
    def get_weights(self):
        """``[W_1, b_1, W_2, b_2, ...]`` as copies (W_l of shape (n_in, n_out))."""
        self._require_built("get_weights")
        return [array.copy() for pair in self.layout.weights(self.params) for array in pair]

    def set_weights(self, weights):
        """Replace every weight from a list shaped like ``get_weights()``."""
        self._require_built("set_weights")
        views = [array for pair in self.layout.weights(self.params) for array in pair]
        if not isinstance(weights, (list, tuple)) or len(weights) != len(views):
            raise ValueError(f"set_weights expects a list of {len(views)} arrays "
                             f"[W_1, b_1, ...]; received {describe(weights)}")
        checked = []
        for i, (new, view) in enumerate(zip(weights, views)):
            new = np.asarray(new)
            if new.shape != view.shape:
                raise ValueError(f"weights[{i}] must have shape {view.shape}; received shape "
                                 f"{new.shape}")
            if new.dtype.kind not in "biuf" or not np.isfinite(new).all():
                raise ValueError(f"weights[{i}] must hold finite numbers; received "
                                 f"{describe(new)}")
            checked.append(new.astype(np.float32))
        for new, view in zip(checked, views):
            view[...] = new

    def count_params(self):
        """Number of trainable parameters."""
        self._require_built("count_params")
        return self.layout.n_params

    def save(self, path):
        """Save architecture, weights, compile settings and optimizer state to ``.npz``."""
        io.save_model(self, path)

    def get_config(self):
        return {"name": self.name, "seed": self.seed,
                "layers": [layer.get_config() for layer in self.layers]}

    def summary(self, print_fn=print):
        """Print a table of layers, output widths and parameter counts."""
        lines = [f'Model: "{self.name or "sequential"}"',
                 f"{'Layer':<28}{'Output':<14}{'Activation':<14}{'Params':>10}"]
        total = 0
        for i, layer in enumerate(self.layers):
            n_in = None if self.layout is None else int(self.layout.sizes[i])
            count = "?" if n_in is None else (n_in + 1) * layer.units
            total = None if n_in is None or total is None else total + count
            lines.append(f"{(layer.name or f'dense_{i}'):<28}{'(None, %d)' % layer.units:<14}"
                         f"{layer.activation:<14}{count:>10}")
        lines.append(f"Total params: {total if total is not None else '? (not built)'}")
        print_fn("\n".join(lines))

    # -- guards -------------------------------------------------------------------------------
    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"call compile(optimizer=..., loss=...) before {what}()")

    def _require_built(self, what):
        if not self.built:
            raise NotFittedError(f"this model has no weights yet; call fit() (or build("
                                 f"n_features)) before {what}()")

    def _require_fitted(self, what):
        if not self.built:
            raise NotFittedError(f"this model is not fitted yet; call fit() before {what}()")
        if self.loss is None and what == "evaluate":
            raise RuntimeError("call compile(optimizer=..., loss=...) before evaluate()")

    def __repr__(self):
        return f"Sequential({self.layers!r})"
