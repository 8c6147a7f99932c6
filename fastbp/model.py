"""The Keras-like Model API: ``Sequential``, ``compile``, ``fit``, ``evaluate``, ``predict``.

Python runs only between epochs (``fastbp.trainer``); each epoch is one call into the
backend (``fastbp.engine``), which holds the whole mini-batch loop.
"""

import os

import numpy as np

from . import callbacks as callbacks_module
from . import codes, data, engine, inference, io, labels, losses, optimizers, trainer
from . import metrics as metric_table
from ._validation import (
    NonFiniteLossError, NotFittedError, check_float, check_int, check_matrix, check_weights,
    describe,
)
from .layers import DEFAULT_NAMES, Dense, Input, Layer
from .layout import Layout
from .variables import model_variables


class Sequential:
    """A stack of layers trained by backpropagation.

    Parameters
    ----------
    layers : list of layers, optional
        ``Dense``, ``Activation``, ``Dropout``, ``BatchNormalization``.
    seed : int, optional
        Seeds the model's own ``numpy.random.Generator``, which draws the initial weights, the
        dropout masks and the shuffling order of every epoch. Same seed, same data: same
        weights after training, bit for bit.
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
        self._dropout_seed = None
        self.layout = None
        self.params = None
        self.aux = None
        self.loss = None
        self.optimizer = None
        self.metrics = []
        self.backend = "numba"
        self.history = None
        self.classes_ = None
        self.stop_training = False
        self._input_width = None  # from Input(shape=...) or a first layer's input_shape
        if layers is not None:
            if isinstance(layers, Layer) or not hasattr(layers, "__iter__"):
                raise TypeError(f"layers must be a list of layers; received {describe(layers)}")
            for layer in layers:
                self.add(layer)

    # -- building ----------------------------------------------------------------------------
    def add(self, layer):
        """Append a layer (before the model is built); unnamed layers get Keras-style names.
        ``Input(shape=(n,))`` first, or ``input_shape=(n,)`` on the first layer, gives the
        input width: the model is built as soon as its weights are asked for (Keras)."""
        if isinstance(layer, Input):
            if self.layers or self._input_width is not None:
                raise ValueError("Input(...) must come first, once")
            self._input_width = layer.width
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"layers must be fastbp layers such as fastbp.Dense; received "
                            f"{describe(layer)}")
        if self.built:
            raise ValueError("cannot add a layer to a model that is already built")
        if layer.name is None:
            base = DEFAULT_NAMES[type(layer).__name__]
            taken = {other.name for other in self.layers}
            index = 0
            name = base
            while name in taken:
                index += 1
                name = f"{base}_{index}"
            layer.name = name
        if layer.input_width is not None:
            if self.layers or self._input_width is not None:
                raise ValueError(f"input_shape belongs on the first layer; received it on "
                                 f"layer {len(self.layers)} ({layer.name})")
            self._input_width = layer.input_width
        self.layers.append(layer)

    def pop(self):
        """Remove and return the last layer (Keras). A built model keeps the other layers'
        weights; the optimizer's state, shaped for the old parameters, starts afresh at the
        next fit."""
        if not self.layers:
            raise ValueError("pop() on a model with no layers")
        layer = self.layers.pop()
        if self.built:
            if self.layers and any(isinstance(other, Dense) for other in self.layers):
                layout = Layout(self.layout.n_features, self.layers)
                self.params = self.params[:layout.n_params].copy()
                self.aux = self.aux[:layout.n_aux].copy()
                self.layout = layout
            else:
                self.layout = self.params = self.aux = None
        return layer

    @property
    def built(self):
        return self.params is not None

    @property
    def n_features(self):
        """Input width: the built model's, else the declared one (``Input``, ``input_shape``),
        else None until the first fit."""
        return self._input_width if self.layout is None else self.layout.n_features

    def _build_declared(self):
        """Build for the declared input width, if there is one and the model is not built."""
        if not self.built and self._input_width is not None and self.layers:
            self.build(self._input_width)

    def _output_units(self):
        dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        if not dense:
            raise ValueError("the model needs at least one Dense layer")
        return dense[-1].units

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
        aux = np.zeros(layout.n_aux, np.float32)
        for layer, i, p, a, width in zip(self.layers, layout.layer_op, layout.layer_param,
                                         layout.layer_aux, layout.layer_width):
            if layer.n_weights:
                n_p = layer.n_params(width)
                n_a = 2 * width if layer.n_weights == 4 else 0
                layer.initialize(width, params[p:p + n_p], aux[a:a + n_a], self._rng)
        self._dropout_seed = int(self._rng.integers(2 ** 62))
        self.layout, self.params, self.aux = layout, params, aux

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True, backend="numba"):
        """Choose the optimizer, the loss, the metrics, and the backend that trains (Keras 3's
        signature and defaults: ``"rmsprop"``; ``loss_weights``, ``weighted_metrics``,
        ``run_eagerly=True`` and ``steps_per_execution`` other than 1 are not supported and
        raise; every epoch is compiled whatever ``jit_compile`` says).

        Parameters
        ----------
        optimizer : str or Optimizer
            ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"``, ``"nadam"``,
            ``"adamax"`` or an instance
            (whose ``learning_rate`` may be a ``fastbp.schedules`` schedule).
        loss : str or Loss
            ``"mse"``/``"squared_error"``, ``"huber"``, ``"binary_crossentropy"``,
            ``"categorical_crossentropy"`` (or ``"sparse_categorical_crossentropy"``).
        metrics : list of str, optional
            ``"accuracy"``, ``"binary_accuracy"``, ``"mse"``, ``"mae"``, ``"r2"``,
            ``"log_loss"``.
        backend : str
            ``"numba"`` (compiled, default) or ``"numpy"`` (the reference implementation).
        """
        for value, default, what in ((loss_weights, None, "loss_weights"),
                                     (weighted_metrics, None, "weighted_metrics"),
                                     (run_eagerly, False, "run_eagerly"),
                                     (steps_per_execution, 1, "steps_per_execution")):
            if not (value is default or (type(value) is type(default) and value == default)):
                raise ValueError(f"compile({what}={value!r}) is not supported by fastbp (one "
                                 f"loss, compiled epochs): leave {what}={default!r}")
        if jit_compile not in ("auto", True, False) or auto_scale_loss not in (True, False):
            raise ValueError(f"jit_compile must be 'auto', True or False and auto_scale_loss "
                             f"True or False; received {jit_compile!r}, {auto_scale_loss!r}")
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='mse' or "
                             "loss='categorical_crossentropy'; received loss=None")
        optimizer = optimizers.get(optimizer)
        loss = losses.get(loss)
        metrics = metric_table.get(metrics)
        backend = engine.check_backend(backend)
        out = [layer for layer in self.layers if hasattr(layer, "activation")]
        if loss.from_logits and out and out[-1].activation != "linear":
            raise ValueError(f"{type(loss).__name__}(from_logits=True) reads the model's outputs "
                             f"as logits: the last layer must be linear; this model's output "
                             f"activation is {out[-1].activation!r} (give the last Dense "
                             f"activation=None, or use from_logits=False)")
        if "log_loss" in metrics and not loss.from_logits:
            if out and out[-1].activation not in ("softmax", "sigmoid"):
                raise ValueError(f"metric 'log_loss' needs probabilities: a softmax or sigmoid "
                                 f"output layer; this model's output activation is "
                                 f"{out[-1].activation!r}")
        self.optimizer, self.loss, self.metrics, self.backend = optimizer, loss, metrics, backend
        return self

    # -- training -----------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, diagnostics=False):
        """Train the model (Keras 3's signature and defaults).

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features), or an iterable of chunks
            An array (dense or scipy.sparse), or a generator, list or ``tf.data``-like object
            of ``(x, y)`` or ``(x, y, sample_weight)`` chunks (then ``y`` is None): one chunk
            in memory at a time, each trained on in compiled code (``fastbp.streaming``).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels of any kind or one-hot rows (categorical cross-entropy), 0/1 or two
            labels (binary cross-entropy), real values (squared error, Huber, MAE).
        batch_size : int, optional
            Rows per mini-batch, 1 (pure SGD) to n_samples (full batch); the last, smaller
            batch of an epoch is trained on. Default 32 for arrays; for chunks, each chunk
            is one batch unless a batch size is given.
        epochs : int
            Train until epoch ``epochs`` (from ``initial_epoch``).
        verbose : 0, 1, 2 or "auto"
            0 silent, 1 ("auto") a progress bar across epochs, 2 one line per epoch.
        callbacks : list of fastbp.callbacks.Callback, optional
        validation_split : float in [0, 1)
            Hold out this fraction of the rows for validation (stratified by class for
            classification, drawn from the model's seed). Arrays only.
        validation_data : tuple (x_val, y_val) or (x_val, y_val, sample_weight_val), optional
            Evaluated after every ``validation_freq`` epochs; reported as ``val_loss`` and
            ``val_<metric>``.
        shuffle : bool
            Visit the rows in a new random order every epoch (within each chunk for chunks).
        class_weight : dict {label: weight} or "balanced", optional
            Multiplies each sample's weight by its class's; "balanced" gives class c the
            weight ``n_samples / (n_classes * n_samples_in_c)``.
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights in the loss, the gradients and the metrics.
        initial_epoch : int
            The epoch to start counting from (to resume a run).
        steps_per_epoch : int, optional
            Chunks per epoch when ``x`` is an iterable (a generator is read on across epochs).
        validation_batch_size : int, optional
            Rows per pass when validating.
        validation_freq : int
            Validate every this many epochs.
        diagnostics : bool
            Record per layer and epoch the gradient norm, weight norm, update-to-weight ratio
            and (ReLU layers) the fraction of dead units, as ``"<layer>/grad_norm"`` etc.

        Returns
        -------
        History
        """
        self._require_compiled("fit")
        from . import streaming
        stream = streaming.is_stream(x, y)
        epochs = check_int(epochs, "epochs", low=1)
        initial_epoch = check_int(initial_epoch, "initial_epoch", low=0)
        if initial_epoch >= epochs:
            raise ValueError(f"initial_epoch must be below epochs ({epochs}); received "
                             f"initial_epoch={initial_epoch}")
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", low=1)
        verbose = _check_verbose(verbose, auto=1)
        validation_freq = check_int(validation_freq, "validation_freq", low=1)
        if validation_batch_size is not None:
            validation_batch_size = check_int(validation_batch_size, "validation_batch_size",
                                              low=1)
        if validation_steps is not None:
            raise ValueError("validation_steps is not supported: fastbp validates on all of "
                             "validation_data (arrays) every validation_freq epochs")
        validation_split = check_float(validation_split, "validation_split", low=0.0, high=1.0,
                                       high_open=True)
        for flag, name in ((shuffle, "shuffle"), (diagnostics, "diagnostics")):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False; received {describe(flag)}")
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, callbacks_module.Callback):
                raise TypeError(f"callbacks must be fastbp.callbacks.Callback instances; "
                                f"received {describe(cb)}")
        if validation_split and validation_data is not None:
            raise ValueError("give validation_data or validation_split, not both")
        if stream:
            for value, name in ((sample_weight, "sample_weight"),
                                (validation_split or None, "validation_split"),
                                (diagnostics or None, "diagnostics")):
                if value is not None:
                    raise ValueError(f"{name} does not apply when x is an iterable of chunks "
                                     f"(give sample weights as (x, y, sample_weight) chunks and "
                                     f"validation data as validation_data=(x_val, y_val))")
            source = streaming.Chunks(x, steps_per_epoch)
            n_features, classes, n_rows = self._input_width, self.classes_, None
            if self.built:
                n_features = self.n_features
        else:
            if steps_per_epoch is not None:
                raise ValueError("steps_per_epoch applies when x is an iterable of chunks; "
                                 "with arrays, every epoch visits every row")
            batch_size = 32 if batch_size is None else batch_size
            prepared, classes, class_index = data.prepare(self, x, y, sample_weight,
                                                          class_weight)
            n_features, n_rows = prepared[0].shape[1], len(prepared[0])
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (X_val, y_val) or "
                                 "(X_val, y_val, sample_weight_val); received "
                                 f"{describe(validation_data)}")
            saved_classes, self.classes_ = self.classes_, classes
            try:
                val, _, _ = data.prepare(
                    self, validation_data[0], validation_data[1],
                    validation_data[2] if len(validation_data) == 3 else None, None,
                    ("validation_data[0]", "validation_data[1]", "validation_data[2]"),
                    n_features=n_features)
            finally:
                self.classes_ = saved_classes
        # the split draws from a copy of the model's generator, kept only if the fit goes ahead
        rng = np.random.Generator(type(self._rng.bit_generator)())
        rng.bit_generator.state = self._rng.bit_generator.state
        if not stream and validation_data is None and validation_split:
            train_rows, val_rows = data.split_rows(n_rows, validation_split, rng, class_index)
            if len(val_rows) == 0 or len(train_rows) == 0:
                raise ValueError(f"validation_split={validation_split} leaves "
                                 f"{len(train_rows)} training and {len(val_rows)} validation "
                                 f"rows out of {n_rows}; both must be at least 1")
            val = data.take(prepared, val_rows)
            prepared = data.take(prepared, train_rows)
            n_rows = len(train_rows)
            if prepared[3].shape[0] and prepared[3].sum() <= 0:
                raise ValueError("the training rows left by validation_split all have weight 0")
        # everything is checked: from here on the model changes
        self._rng.bit_generator.state = rng.bit_generator.state
        if stream:
            epochs_source = trainer.ChunkEpochs(self, source, batch_size, bool(shuffle),
                                                class_weight)
            params = {"epochs": epochs, "batch_size": batch_size, "samples": None,
                      "steps": steps_per_epoch}
        else:
            self.build(n_features)
            self.classes_ = classes
            epochs_source = trainer.ArrayEpochs(self, prepared, batch_size, bool(shuffle),
                                                bool(diagnostics))
            params = {"epochs": epochs, "batch_size": batch_size, "samples": n_rows,
                      "steps": -(-n_rows // batch_size)}
        history = callbacks_module.History(params)
        self.history = history
        shown = []
        if verbose == 2:
            shown = [callbacks_module.EpochLines(epochs)]
        elif verbose == 1:
            shown = [callbacks_module.ProgressBar(epochs)]
        everything = [history] + callbacks + shown
        for cb in everything:
            cb.set_model(self)
        trainer.train(self, epochs_source, val, epochs, everything, initial_epoch,
                      validation_freq, validation_batch_size)
        return history

    def _acc_kind(self, train=True):
        if train and not self.metrics:
            return codes.ACC_SKIP
        if not {"accuracy", "log_loss"} & set(self.metrics):
            return codes.ACC_NONE
        out = self._loss_layout().output_activation if self.layout is not None else None
        if out == codes.SOFTMAX:
            return codes.ACC_ARGMAX
        if out == codes.SIGMOID:
            return codes.ACC_THRESHOLD
        if self.loss.code == codes.CATEGORICAL_CROSSENTROPY:
            return codes.ACC_ARGMAX
        if self.loss.code == codes.BINARY_CROSSENTROPY:
            return codes.ACC_THRESHOLD
        return codes.ACC_ARGMAX if self._output_units() > 1 else codes.ACC_THRESHOLD

    def _loss_layout(self, loss=None):
        """The layout the loss and the metrics are computed on: ``self.layout``, or with a
        ``from_logits`` loss, its twin whose last op is the loss's softmax or sigmoid."""
        loss = self.loss if loss is None else loss
        if loss is None or not loss.from_logits:
            return self.layout
        act = loss.logits_activation
        cached = getattr(self, "_logits_layout", None)
        if cached is None or cached[0] is not self.layout or cached[1] != act:
            cached = (self.layout, act, self.layout.reading_logits_as(act))
            self._logits_layout = cached
        return cached[2]

    def _snapshot_weights(self):
        return self.params.copy(), self.aux.copy()

    def _restore_weights(self, snapshot):
        self.params[:], self.aux[:] = snapshot

    # -- inference -----------------------------------------------------------------------------
    def _evaluate_stats(self, X, Y, label_index, sw, batch_size=None):
        """Metric sums (``inference.evaluate``) of prepared data, penalty excluded."""
        lay = self._loss_layout()
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", low=1)
        return inference.evaluate(engine.get(self.backend), lay, self.params, self.aux,
                                  (X, Y, label_index, sw), self.loss.code,
                                  self.loss.loss_param(lay.n_outputs),
                                  self._acc_kind(train=False), batch_size)

    def _logs(self, stats):
        """Loss (penalty included) and metrics from summed stats."""
        lay = self.layout
        value = stats[codes.ST_LOSS] / stats[codes.ST_ROWS]
        if lay.runs[:, codes.RUN_L1].any() or lay.runs[:, codes.RUN_L2].any():
            loss_param = self.loss.loss_param(lay.n_outputs)
            scale = (1.0 / stats[codes.ST_ROWS]
                     if loss_param[codes.LP_PENALTY_PER_SAMPLE] else 1.0)
            value += engine.get(self.backend).penalty(self.params, lay.runs, scale)
        logs = {"loss": float(value)}
        logs.update(metric_table.compute(self.metrics, stats))
        return logs

    def _evaluate_arrays(self, X, Y, label_index, sw, batch_size=None):
        return self._logs(self._evaluate_stats(X, Y, label_index, sw, batch_size))

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss (penalty included) and metrics on the given data, in inference mode.

        ``x`` is an array, or an iterable of ``(x, y)`` / ``(x, y, sample_weight)`` chunks (then
        ``y`` is None; ``steps`` chunks at most), whose sums are added chunk by chunk. Returns
        the loss alone when no metrics were compiled, else ``[loss, *metrics]``; a dict
        ``{"loss": ..., metric: ...}`` with ``return_dict=True``. ``verbose`` (0, 1, 2 or
        "auto", as Keras's): above 0, one line with the results.
        """
        from . import streaming
        verbose = _check_verbose(verbose)
        _no_callbacks(callbacks, "evaluate")
        self._require_fitted("evaluate")
        if streaming.is_stream(x, y):
            if sample_weight is not None:
                raise ValueError("sample_weight does not apply when x is an iterable of "
                                 "chunks: give (x, y, sample_weight) chunks")
            stats = None
            source = streaming.Chunks(x, steps, "x").epoch()
            for index, chunk in source:
                cx, cy, cw = streaming.unpack(chunk, index)
                names = (f"chunk {index} x", f"chunk {index} y", f"chunk {index} sample_weight")
                prepared, _, _ = data.prepare(self, cx, cy, cw, names=names)
                part = self._evaluate_stats(*prepared, batch_size)
                stats = part if stats is None else stats + part
            if stats is None:
                raise ValueError("evaluate received an iterable with no chunks")
            logs = self._logs(stats)
        else:
            if steps is not None:
                raise ValueError("steps applies when x is an iterable of chunks")
            prepared, _, _ = data.prepare(self, x, y, sample_weight)
            logs = self._evaluate_arrays(*prepared, batch_size)
        if verbose:
            print(" - ".join(f"{key}: {value:.4f}" for key, value in logs.items()))
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs of the last layer, float32 array of shape (n_samples, n_outputs).

        ``x`` is an array, or an iterable of chunks (arrays, or tuples whose first item is
        the rows; ``steps`` chunks at most), whose outputs are stacked in order.
        ``batch_size`` only sets how many rows are processed per pass (memory vs. speed);
        ``verbose`` is accepted as Keras's (a prediction prints nothing).
        """
        from . import streaming
        _check_verbose(verbose)
        _no_callbacks(callbacks, "predict")
        self._require_fitted("predict")
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", low=1)
        if streaming.is_stream(x, None, rows=True):
            outputs = []
            for index, chunk in streaming.Chunks(x, steps, "x").epoch():
                rows, _, _ = streaming.unpack(chunk, index, need_y=False)
                rows = check_matrix(rows, f"chunk {index} x", self.n_features, sparse=True)
                outputs.append(inference.predict(engine.get(self.backend), self.layout,
                                                 self.params, self.aux, rows, batch_size))
            if not outputs:
                raise ValueError("predict received an iterable with no chunks")
            return np.concatenate(outputs)
        if steps is not None:
            raise ValueError("steps applies when x is an iterable of chunks")
        X = check_matrix(x, "X", self.n_features, sparse=True)
        return inference.predict(engine.get(self.backend), self.layout, self.params, self.aux, X,
                                 batch_size)

    def __call__(self, X):
        """``model(X)``: the outputs of the last layer for ``X``, as ``predict`` (Keras)."""
        return self.predict(X)

    def predict_on_batch(self, X):
        """The outputs for one batch ``X`` (Keras's name; the same as ``predict``)."""
        return self.predict(X)

    def test_on_batch(self, X, y, sample_weight=None, return_dict=False):
        """Loss and metrics of one batch, inference mode (Keras's name for ``evaluate`` on
        one batch)."""
        return self.evaluate(X, y, verbose=0, sample_weight=sample_weight,
                             return_dict=return_dict)

    def train_on_batch(self, X, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on the batch ``X``, ``y`` (all its rows, in order) through the
        compiled epoch loop; returns the batch's loss and metrics as ``evaluate`` does
        (training-mode values, before the step)."""
        history = self.fit(X, y, epochs=1, batch_size=len(X), shuffle=False, verbose=0,
                           sample_weight=sample_weight, class_weight=class_weight)
        logs = {key: values[-1] for key, values in history.history.items() if key != "lr"}
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    # -- a hand-written training loop --------------------------------------------------------
    @property
    def trainable_variables(self):
        """The arrays training changes, as ``fastbp.variables.Variable`` objects in Keras's
        order (per Dense ``kernel``, ``bias``; per BatchNormalization ``gamma``, ``beta``):
        what ``gradients`` returns arrays for and ``optimizer.apply_gradients`` steps."""
        self._require_built("trainable_variables")
        return [v for v in model_variables(self) if v.trainable]

    trainable_weights = trainable_variables

    @property
    def non_trainable_variables(self):
        """Batch normalization's moving means and variances, as Variables."""
        self._require_built("non_trainable_variables")
        return [v for v in model_variables(self) if not v.trainable]

    def gradients(self, X, y, loss=None, sample_weight=None, training=True):
        """The gradient of the loss of the batch ``X``, ``y`` with respect to each trainable
        variable, from the compiled kernels (one forward and one backward pass over the rows,
        on fastbp's threads): what ``tape.gradient(loss, model.trainable_variables)`` gives in
        a Keras loop. The weights do not change.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
        y : array-like of shape (m,) or (m, n_outputs)
        loss : str or Loss, optional
            The loss to differentiate (default: the compiled one): the mean over the rows
            (weighted by ``sample_weight``), plus the layers' L1/L2 penalties.
        training : bool
            True: dropout drops (its masks drawn from the optimizer's step count, as in
            ``fit``), batch normalization uses the batch's statistics (and updates its moving
            ones). False: inference mode.

        Returns
        -------
        list of float32 arrays, shaped and ordered as ``trainable_variables``
        """
        if loss is None:
            self._require_compiled("gradients")
            loss = self.loss
        else:
            loss = losses.get(loss)
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be True or False; received {describe(training)}")
        if not training:
            raise ValueError("gradients(training=False) is not supported: the compiled "
                             "backward pass runs in training mode (dropout and batch "
                             "normalization as in fit); for a model without either, the "
                             "two are the same")
        classes = self.classes_
        if classes is None and data.is_classifier(loss, self._output_units(), None):
            classes = np.arange(max(2, self._output_units()))  # indices, as Keras's losses
        prepared, classes, _ = data.prepare(self, X, y, sample_weight, loss=loss,
                                            classes=classes)
        self.build(prepared[0].shape[1])
        lay = self._loss_layout(loss)
        n = len(prepared[0])  # one chunk, as training computes a batch's gradient
        objective = trainer.FullBatchObjective(
            engine.get(self.backend), lay, self.params, self.aux, loss.code,
            loss.loss_param(lay.n_outputs), prepared, chunk_rows=max(n, 1),
            shards=trainer.row_shards(lay, n, n))
        step = self.optimizer.iterations if self.optimizer is not None else 0
        value, grad = objective(self.params, step)
        if not np.isfinite(value):
            raise NonFiniteLossError("gradients: the loss of this batch is not finite (the "
                                     "weights or the data hold extreme values)")
        grad = grad.astype(np.float32)
        return [grad[v.offset:v.offset + v.size].reshape(v.shape)
                for v in self.trainable_variables]

    def predict_proba(self, X, batch_size=None):
        """Class probabilities: softmax rows, or (1 - p, p) for a single sigmoid output.

        For several sigmoid outputs (multilabel), the probability of each label.
        """
        self._require_fitted("predict_proba")
        act = self._loss_layout().output_activation
        if act not in (codes.SOFTMAX, codes.SIGMOID):
            name = next(k for k, v in codes.ACTIVATIONS.items() if v == act)
            raise ValueError(f"predict_proba needs a softmax or sigmoid output layer (or a "
                             f"from_logits loss); this model's output activation is {name!r}")
        p = self._probabilities(self.predict(X, batch_size))
        if act == codes.SIGMOID and self.layout.n_outputs == 1:
            return np.hstack([1.0 - p, p])
        return p

    def predict_classes(self, X, batch_size=None):
        """Predicted class labels, in the labels the model was trained with.

        Several outputs: the class of the largest output; one sigmoid output: the second
        class when p > 0.5. (Multilabel models: a 0/1 matrix.)
        """
        self._require_fitted("predict_classes")
        out = self._probabilities(self.predict(X, batch_size))
        classes = self.classes_ if self.classes_ is not None else np.arange(max(2, out.shape[1]))
        if out.shape[1] == 1:
            return labels.decode((out[:, 0] > 0.5).astype(np.int64), classes)
        if self._loss_layout().output_activation == codes.SIGMOID and self.loss is not None \
                and self.loss.code == codes.BINARY_CROSSENTROPY:
            return (out > 0.5).astype(np.int64)
        return labels.decode(out.argmax(axis=1), classes)

    def _probabilities(self, out):
        """``predict``'s outputs as probabilities: as they are, or through the softmax or
        sigmoid of a ``from_logits`` loss (in float64, returned as float32)."""
        if self.loss is None or not self.loss.from_logits:
            return out
        z = out.astype(np.float64)
        if self.loss.logits_activation == codes.SIGMOID:
            p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
        return p.astype(np.float32)

    # -- weights, saving ------------------------------------------------------------------------
    def _weight_views(self):
        lay = self.layout
        views = []
        for layer, p, a, width in zip(self.layers, lay.layer_param, lay.layer_aux,
                                      lay.layer_width):
            if layer.n_weights:
                views += layer.weights(width, self.params[p:p + layer.n_params(width)],
                                       self.aux[a:a + 2 * width])
        return views

    def get_weights(self):
        """Copies of every layer's arrays in order: Dense ``W (n_in, n_out), b``;
        BatchNormalization ``gamma, beta, moving_mean, moving_variance``."""
        self._require_built("get_weights")
        return [array.copy() for array in self._weight_views()]

    def set_weights(self, weights):
        """Replace every weight from a list shaped like ``get_weights()``."""
        self._require_built("set_weights")
        views = self._weight_views()
        if not isinstance(weights, (list, tuple)) or len(weights) != len(views):
            raise ValueError(f"set_weights expects a list of {len(views)} arrays "
                             f"(as get_weights returns); received {describe(weights)}")
        checked = [check_weights(new, view.shape, f"weights[{i}]")
                   for i, (new, view) in enumerate(zip(weights, views))]
        for new, view in zip(checked, views):
            view[...] = new

    def count_params(self):
        """Number of trainable parameters."""
        self._require_built("count_params")
        return self.layout.n_params

    def save(self, path, overwrite=True):
        """Save architecture, weights, compile settings and optimizer state to ``.npz``
        (a file name, ``.npz`` appended if missing, or a binary file object); read it back
        with ``fastbp.load``. The format is ``fastbp.io``'s. ``overwrite=False`` refuses to
        replace an existing file (Keras asks; fastbp raises ``FileExistsError``)."""
        if not overwrite and isinstance(path, (str, os.PathLike)):
            target = os.fspath(path)
            target = target if target.endswith(".npz") else target + ".npz"
            if os.path.exists(target):
                raise FileExistsError(f"{target} exists and overwrite=False")
        self._save(path)

    def _save(self, path, extra=None):
        """``save``, with ``extra`` keys (JSON) added to the metadata."""
        self._build_declared()  # a declared input width: the weights exist, as in Keras
        meta = {
            "format": io.FORMAT,
            "version": io.VERSION,
            "config": self.get_config(),
            "n_features": self.n_features,
            "compile": None,
            "optimizer_iterations": 0,
            "optimizer_epochs": 0,
            "lr_factor": 1.0,
            "classes": None if self.classes_ is None else np.asarray(self.classes_).tolist(),
            "dropout_seed": self._dropout_seed,
            "rng_state": self._rng.bit_generator.state,
        }
        state = np.zeros((0, 0), np.float32)
        if self.loss is not None:
            meta["compile"] = {"optimizer": self.optimizer.get_config(),
                               "loss": self.loss.get_config(), "metrics": list(self.metrics),
                               "backend": self.backend}
            meta["lr_factor"] = self.optimizer.lr_factor
            if self.optimizer.state is not None:
                state = self.optimizer.state
                meta["optimizer_iterations"] = int(self.optimizer.iterations)
                meta["optimizer_epochs"] = int(self.optimizer.epochs)
        meta.update(extra or {})
        empty = np.zeros(0, np.float32)
        io.write(path, meta, self.params if self.params is not None else empty,
                 self.aux if self.aux is not None else empty, state)

    def to_onnx(self, path=None):
        """The model as an ONNX graph (``fastbp.export.to_onnx``): float32 rows ``input`` in,
        ``predict``'s outputs as ``output``; written to ``path`` when given. Needs
        ``pip install "fastbp[onnx]"``."""
        from .export import to_onnx
        return to_onnx(self, path)

    def get_config(self):
        """The architecture: name, seed, the layers' configurations (and the declared input
        width, if any); ``Sequential.from_config`` builds the same model (unfitted)."""
        config = {"name": self.name, "seed": self.seed,
                  "layers": [layer.get_config() for layer in self.layers]}
        if self._input_width is not None:
            config["input_shape"] = [self._input_width]
        return config

    @classmethod
    def from_config(cls, config):
        """A new, unfitted model from ``get_config()``'s dictionary (Keras)."""
        from .layers import from_config as layer_from_config
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"from_config expects a dict with a list of layers (as get_config "
                             f"returns); received {describe(config)}")
        layers = [layer_from_config(c) for c in config["layers"]]
        if config.get("input_shape") is not None:
            layers.insert(0, Input(shape=tuple(config["input_shape"])))
        return cls(layers, seed=config.get("seed"), name=config.get("name"))

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print a table of layers, output widths and parameter counts (through ``print_fn``,
        ``print`` by default). Keras's layout arguments are accepted at their defaults only."""
        for value, what in ((line_length, "line_length"), (positions, "positions"),
                            (layer_range, "layer_range")):
            if value is not None:
                raise ValueError(f"summary({what}=...) is not supported by fastbp")
        print_fn = print if print_fn is None else print_fn
        self._build_declared()
        lines = [f'Model: "{self.name or "sequential"}"',
                 f"{'Layer':<28}{'Output':<14}{'Activation':<14}{'Params':>10}"]
        total = 0 if self.n_features is not None else None
        width = self.n_features
        for layer in self.layers:
            count = "?"
            if width is not None:
                count = layer.n_params(width) if layer.n_weights else 0
                total += count
                width = layer.output_width(width) if hasattr(layer, "output_width") else width
            units = getattr(layer, "units", width)
            activation = getattr(layer, "activation", "")
            lines.append(f"{layer.name:<28}{'(None, %s)' % (units if units else '?'):<14}"
                         f"{activation:<14}{count:>10}")
        lines.append(f"Total params: {total if total is not None else '? (not built)'}")
        print_fn("\n".join(lines))

    # -- guards -------------------------------------------------------------------------------
    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"call compile(optimizer=..., loss=...) before {what}()")

    def _require_built(self, what):
        self._build_declared()
        if not self.built:
            raise NotFittedError(f"this model has no weights yet; call fit() (or build("
                                 f"n_features)) before {what}()")

    def _require_fitted(self, what):
        self._build_declared()
        if not self.built:
            raise NotFittedError(f"this model is not fitted yet; call fit() before {what}()")
        if self.loss is None and what == "evaluate":
            raise RuntimeError("call compile(optimizer=..., loss=...) before evaluate()")

    def __repr__(self):
        return f"Sequential({self.layers!r})"


def load_model(path):
    """A model saved by ``Sequential.save`` (a file name or a binary file object).

    The file is checked before anything is built (``fastbp.io.read``): sizes against the
    architecture before any array is read, numbers after.

    Raises
    ------
    ModelFileError
        If the file is not a fastbp model or is damaged.
    """
    file = io.read(path)
    meta = file.meta
    try:
        model = Sequential(file.layers, seed=meta["config"]["seed"],
                           name=meta["config"]["name"])
        if meta["compile"] is not None:
            c = meta["compile"]
            model.compile(optimizer=optimizers.get(c["optimizer"]), loss=losses.get(c["loss"]),
                          metrics=c["metrics"], backend=c["backend"])
            model.optimizer.lr_factor = float(meta["lr_factor"])
        if meta["n_features"] is not None:
            model.build(meta["n_features"])
            model.params[:] = file.params
            model.aux[:] = file.aux
            model._dropout_seed = meta["dropout_seed"]
            if file.state.size:
                model.optimizer.state = file.state
                model.optimizer.iterations = meta["optimizer_iterations"]
                model.optimizer.epochs = meta["optimizer_epochs"]
        if meta["classes"] is not None:
            model.classes_ = np.asarray(meta["classes"])
        model._rng.bit_generator.state = meta["rng_state"]
    except Exception as err:  # noqa: BLE001  (checked by io.read; any rest is the file's)
        raise io.ModelFileError(f"{path!s} is not a readable fastbp model file: "
                                f"{type(err).__name__}: {err}") from None
    return model


def _no_callbacks(callbacks, method):
    if callbacks:
        raise ValueError(f"callbacks in {method}() are not supported by fastbp (they are in "
                         f"fit); received {describe(callbacks)}")


def _check_verbose(verbose, auto=1):
    """Keras's ``verbose``: 0, 1, 2 or "auto" (``auto``); returns 0, 1 or 2."""
    if isinstance(verbose, str) and verbose == "auto":
        return auto
    return check_int(verbose, "verbose", low=0, high=2)
