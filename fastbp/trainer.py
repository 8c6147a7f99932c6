"""The epoch loop of ``fit``: Python between compiled epochs.

Per epoch: draw the row order, keep a copy of everything the epoch may spoil, call the
backend's ``train_epoch`` once, then read the epoch's sums into logs (loss, metrics,
validation, learning rate, diagnostics) and run the callbacks.
"""

import copy

import numpy as np

from . import _threads, codes, engine, scheduler, sparse
from . import metrics as metric_table
from ._validation import NonFiniteLossError
from .callbacks import TerminateOnNaN
from .reference.optim import penalty


class EpochRunner:
    """Buffers and one compiled call per epoch, for any front end (Sequential, scikit-learn).

    Parameters
    ----------
    backend : fastbp.engine.NumbaBackend or NumpyBackend
    layout : fastbp.layout.Layout
    params, aux : float32 arrays, updated in place
    optimizer : fastbp.optimizers.Optimizer (its state is allocated here)
    loss_code : int; loss_param : float64 (N_LOSS_PARAM,); acc_kind : int
    data : tuple (X, Y, labels, sw) of prepared arrays
    batch_size : int (clipped to the number of rows)
    seed : int, dropout's seed
    diagnostics : bool
    shards : int or None
        Row shards per batch (None: ``row_shards``, from this machine's cores).
    """

    def __init__(self, backend, layout, params, aux, optimizer, loss_code, loss_param, acc_kind,
                 data, batch_size, seed, diagnostics=False, shards=None):
        self.backend, self.layout, self.params, self.aux = backend, layout, params, aux
        self.optimizer = optimizer
        self.state = optimizer.ensure_state(layout.n_params)
        self.loss_code, self.loss_param, self.acc_kind = loss_code, loss_param, acc_kind
        self.data = data
        self.n = len(data[0])
        self.batch_size = min(batch_size, self.n)
        # row shards per batch: one per core where an epoch is long enough to start threads
        # for; else one (shards run one after the other cost their fixed work twice: 2 shards
        # on one thread made a 3 x 16 network's epochs 2.2x slower than 1 shard, bench/sweep.py).
        # Neither depends on the thread count, so neither do the bits. ``shards`` given: that
        # many (the same bits on another machine, whatever its cores).
        if shards is None:
            shards, self.by_units = batch_parts(layout, self.batch_size, len(data[0]),
                                                data[0], diagnostics)
        else:
            self.by_units = split_by_units(layout, self.batch_size, shards, data[0],
                                           diagnostics)
        self.shards = int(shards)
        self.diagnostics = diagnostics
        self.buf = layout.shard_buffers(self.batch_size, self.shards, diagnostics,
                                        self.by_units)
        self.kernel_X, self.csr = sparse.kernel_input(data[0])
        if isinstance(data[0], sparse.CSR):  # the first layer reads the CSR rows: no gather
            self.buf["xb"] = np.zeros(self.buf["xb"].shape[:2] + (0,), np.float32)
        self.n_stats = codes.N_STATS + codes.ST_PER_OUTPUT * layout.n_outputs
        self.seed = seed
        shard_rows = -(-self.batch_size // self.shards)
        self.scheduler = scheduler.ShardScheduler(layout.n_params, shard_rows)
        self.clock = np.zeros((codes.N_CK, -(-self.n // self.batch_size)))  # batch timings
        # threads pay for their start on epochs long enough, and only on compiled code
        self.threaded = backend.name == "numba" and self.shards > 1
        # a copy of the weights and optimizer state per thread where the parameters are many
        # for a shard's rows (kernels.epoch.train_epoch)
        self.replicas = None
        if self.threaded and not diagnostics and scheduler.replicate(
                layout.n_params, shard_rows, self.shards):
            self.replicas = np.zeros((self.shards, layout.n_params + self.state.size),
                                     np.float32)
        self.lr = None
        self.status = codes.OK

    def run(self, order):
        """Train one epoch over the rows ``order``.

        Returns the epoch's summed stats (N_STATS + 3 k,), or None when the loss became
        non-finite; then parameters, statistics and optimizer state are as before the call and
        ``self.status`` holds the failing batch (``codes.OK`` if the weights went bad at the
        end). ``self.lr`` is the rate of the epoch's last step; ``self.steps`` its step count.
        """
        opt = self.optimizer
        order = sorted_within_batches(order, self.batch_size)
        stats = np.zeros((self.shards, self.n_stats))
        self.buf["diag"][:] = 0.0
        hyper = opt.hyper()
        saved = (self.params.copy(), self.aux.copy(), self.state.copy(), opt.iterations)
        start = opt.iterations
        with _threads.running():
            # the scheduler and the compiled loop pick parallel or serial batches by their
            # measured cost (same bits), timing a few batches the other way; the loop
            # dismisses its helper threads as soon as another fit or predict is under way
            # (checked before every batch): that caller holds a core already.
            alone = _threads.alone()
            threads = _threads.threads_for(self.shards) if self.threaded and alone else 1
            ways = self.scheduler.ways()
            probe = self.scheduler.probe() if threads > 1 else 0
            replicas = self.replicas if hyper[codes.HP_CLIPNORM] <= 0.0 else None
            self.clock[codes.CK_WAY] = codes.CK_UNTIMED
            # BLAS on one thread always: its thread count changes its sums' order, and the
            # weights must not depend on it (nor on what other threads do)
            with _threads.single_threaded_blas(self.backend.name == "numba"):
                status, t, self.parallel_batches = self.backend.train_epoch(
                    self.arguments(order, stats, hyper, opt.code), threads, ways, probe,
                    self.clock, replicas)
            if threads > 1:
                self.scheduler.record(self.clock)
        if status != codes.OK or not np.isfinite(self.params).all():
            self.params[:], self.aux[:], self.state[:], opt.iterations = saved
            self.status = status
            return None
        opt.iterations = int(t)
        opt.advanced(hyper)
        opt.epochs += 1
        self.lr = float(hyper[codes.HP_LR])
        self.steps = opt.iterations - start
        return stats.sum(axis=0)  # shard order: fixed

    def arguments(self, order, stats, hyper, opt_code):
        """The arguments of ``train_epoch`` (the reference's, in order) for one epoch."""
        buf = self.buf
        _, Y, labels, sw = self.data
        opt = self.optimizer
        return (self.kernel_X, self.csr, Y, labels, sw, order, self.batch_size, buf["ops"],
                self.layout.opf,
                self.layout.runs, self.loss_code, self.loss_param, self.acc_kind, opt_code, hyper,
                opt.sched(), self.state, opt.iterations, self.params, self.aux, buf["grads"],
                buf["xb"], buf["acts"], buf["deltas"], buf["seg"], buf["scratch"], stats,
                buf["diag"], buf["prev"], self.seed)

    def failure_message(self, epoch, epochs):
        where = f"batch {self.status + 1} of " if self.status != codes.OK else "the end of "
        return (f"the training loss became non-finite at {where}epoch {epoch + 1}/{epochs}; "
                f"the model keeps the weights it had at the start of that epoch (the last "
                f"finite ones). Try a smaller learning rate, gradient clipping "
                f"(global_clipnorm=1.0) or standardised inputs.")


def sorted_within_batches(order, batch_size):
    """``order`` with each batch's rows in increasing order (a new array): the same batches,
    and a batch's gradient (a sum over its rows) no longer depends on the order its rows were
    drawn in, so the same batches give the same bits (a full-batch epoch: whatever the
    shuffle). Rows in order also gather faster. About 0.1 ms for 50,000 rows."""
    n = len(order)
    full = n // batch_size * batch_size
    out = np.empty(n, np.int64)
    out[:full] = np.sort(order[:full].reshape(-1, batch_size), axis=1).ravel()
    out[full:] = np.sort(order[full:])
    return out


class ArrayEpochs:
    """Epochs over prepared arrays ``(X, Y, labels, sw)``: one runner, one compiled call per
    epoch over the rows in a new order."""

    def __init__(self, model, data, batch_size, shuffle, diagnostics):
        lay = model._loss_layout()
        self.model, self.shuffle, self.diagnostics, self.lay = model, shuffle, diagnostics, lay
        self.runner = runner = EpochRunner(
            engine.get(model.backend), lay, model.params, model.aux, model.optimizer,
            model.loss.code, model.loss.loss_param(lay.n_outputs), model._acc_kind(train=True),
            data, batch_size, model._dropout_seed, diagnostics)
        previous = getattr(model, "_scheduler", None)
        if previous is not None and previous.key == runner.scheduler.key:
            runner.scheduler = previous  # fit after fit: the timings of parallel and serial
        model._scheduler = runner.scheduler

    def run(self, epoch, epochs):
        """The epoch's summed stats; raises ``NonFiniteLossError`` (weights as before it)."""
        runner = self.runner
        order = (self.model._rng.permutation(runner.n) if self.shuffle
                 else np.arange(runner.n, dtype=np.int64))
        stats = runner.run(order)
        if stats is None:
            raise NonFiniteLossError(runner.failure_message(epoch, epochs))
        return stats

    def extra_logs(self):
        logs = {"lr": self.runner.lr}
        if self.diagnostics:
            logs.update(diagnostics_logs(self.model.layers, self.lay, self.model.params,
                                         self.runner.buf["diag"].sum(axis=0), self.runner.steps))
        return logs


class ChunkEpochs:
    """Epochs over a ``streaming.Chunks`` source: each chunk checked, then trained on with one
    compiled call (its rows in mini-batches of ``batch_size``, or as one batch when None)."""

    def __init__(self, model, chunks, batch_size, shuffle, class_weight):
        self.model, self.chunks, self.batch_size = model, chunks, batch_size
        self.shuffle, self.class_weight = shuffle, class_weight
        self.lr = None

    def run(self, epoch, epochs):
        """The epoch's summed stats, or None when the source is spent; a chunk whose loss is
        not finite raises ``NonFiniteLossError`` with the weights of the chunk before it."""
        from . import data as data_module
        from . import streaming
        model, opt = self.model, self.model.optimizer
        source = self.chunks.epoch()
        if source is None:
            return None
        total, epochs_before = None, opt.epochs
        for index, chunk in source:
            x, y, w = streaming.unpack(chunk, index)
            names = (f"chunk {index} x", f"chunk {index} y", f"chunk {index} sample_weight")
            prepared, classes, _ = data_module.prepare(model, x, y, w, self.class_weight, names)
            model.build(prepared[0].shape[1])
            model.classes_ = classes
            lay = model._loss_layout()
            n = len(prepared[0])
            runner = EpochRunner(engine.get(model.backend), lay, model.params, model.aux, opt,
                                 model.loss.code, model.loss.loss_param(lay.n_outputs),
                                 model._acc_kind(train=True), prepared, self.batch_size or n,
                                 model._dropout_seed)
            order = (model._rng.permutation(n) if self.shuffle
                     else np.arange(n, dtype=np.int64))
            opt.epochs = epochs_before  # per-epoch schedules: one epoch, however many chunks
            stats = runner.run(order)
            if stats is None:
                raise NonFiniteLossError(
                    f"the training loss became non-finite in chunk {index} (epoch "
                    f"{epoch + 1}/{epochs}); the model keeps the weights it had before that "
                    f"chunk (the last finite ones). Try a smaller learning rate, gradient "
                    f"clipping (global_clipnorm=1.0) or standardised inputs.")
            total = stats if total is None else total + stats
            self.lr = runner.lr
        if total is None:
            if self.chunks.one_shot:
                return None
            raise ValueError(f"{self.chunks.name} gave no chunks for epoch {epoch + 1}")
        opt.epochs = epochs_before + 1
        return total

    def extra_logs(self):
        return {"lr": self.lr}


def train(model, epochs_source, val, epochs, callbacks, initial_epoch=0, validation_freq=1,
          validation_batch_size=None):
    """Train ``model`` for epochs ``initial_epoch .. epochs - 1`` from ``epochs_source``
    (``ArrayEpochs`` or ``ChunkEpochs``), validating on prepared ``val`` every
    ``validation_freq`` epochs."""
    from .streaming import ran_out
    quiet_nan = any(isinstance(cb, TerminateOnNaN) for cb in callbacks)
    model.stop_training = False
    for cb in callbacks:
        cb.on_train_begin({})
    for epoch in range(initial_epoch, epochs):
        for cb in callbacks:
            cb.on_epoch_begin(epoch, {})
        try:
            stats = epochs_source.run(epoch, epochs)
        except NonFiniteLossError as error:
            if not quiet_nan:
                raise
            print(f"TerminateOnNaN: {error}")
            break
        if stats is None:
            ran_out(epoch, epochs)
            break
        logs = {"loss": stats[codes.ST_LOSS] / stats[codes.ST_ROWS]}
        logs.update(metric_table.compute(model.metrics, stats))
        if val is not None and (epoch + 1 - initial_epoch) % validation_freq == 0:
            for key, value in model._evaluate_arrays(*val, validation_batch_size).items():
                logs["val_" + key] = value
        logs.update(epochs_source.extra_logs())
        logs = {key: float(value) for key, value in logs.items()}
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end({})


def diagnostics_logs(layers, lay, params, diag, steps):
    """Per dense layer: RMS over the epoch's steps of the weight gradient's norm and of the
    update's norm, the weights' norm at the end, their ratio, and for ReLU layers the fraction
    of units whose output was 0 for every row of the epoch."""
    logs = {}
    for layer, op, run in zip(layers, lay.layer_op, lay.layer_run):
        if run is None:
            continue
        start, stop = int(lay.runs[run, codes.RUN_START]), int(lay.runs[run, codes.RUN_STOP])
        weight_norm = float(np.linalg.norm(params[start:stop]))
        grad_norm = np.sqrt(diag[codes.DG_PER_RUN * run] / max(steps, 1))
        update_norm = np.sqrt(diag[codes.DG_PER_RUN * run + 1] / max(steps, 1))
        logs[f"{layer.name}/grad_norm"] = grad_norm
        logs[f"{layer.name}/weight_norm"] = weight_norm
        logs[f"{layer.name}/update_ratio"] = update_norm / weight_norm if weight_norm else np.inf
        alive = lay.ops[op, codes.OC_ALIVE]
        if alive >= 0:
            flags = diag[alive:alive + lay.ops[op, codes.OC_OUT]]
            logs[f"{layer.name}/dead_fraction"] = float(np.mean(flags == 0))
    return logs


def _as_dtype(a, dtype):
    """A float32 array (or a CSR's values) in ``dtype``; other arrays as they are."""
    if isinstance(a, sparse.CSR):
        return sparse.CSR(a.indptr, a.indices, a.values.astype(dtype), a.shape)
    return a.astype(dtype) if a.dtype == np.float32 else a


def row_shards(layout, batch_size, n_rows, max_shards=None):
    """Row shards per batch for an epoch of ``n_rows`` rows in batches of ``batch_size``: one
    per core (at most ``max_shards``) where the epoch is long enough to start threads for,
    else one (``_threads.n_shards``, ``scheduler.worth_threads``)."""
    if layout.has_batchnorm or not scheduler.worth_threads(layout.n_params, n_rows):
        return 1
    return _threads.n_shards(batch_size, max_shards)


def batch_parts(layout, batch_size, n_rows, X, diagnostics=False):
    """``(parts, by_units)``: how an epoch's batches are cut, ``row_shards`` row shards, or
    (``split_by_units``) one block of units per core. A batch too short for two row shards of
    ``_threads.MIN_SHARD_ROWS`` rows (batch 16 on 2 cores) is still split by units where the
    rule allows (``bench/cliffs.py``: a 3 x 512 network on 256 inputs at batch 16 ran on one
    core, 2.2x slower than at batch 32 on two. Split by units, 2-thread epochs at batch 16
    were 1.58x faster there and 1.49x for 2 x 1024 tanh on 512 inputs; held to one thread
    of the 2 cores, with the same bits, 0.88x and 0.94x)."""
    shards = row_shards(layout, batch_size, n_rows)
    if shards == 1 and not layout.has_batchnorm and \
            scheduler.worth_threads(layout.n_params, n_rows):
        cores = min(_threads.cores(), batch_size)
        if cores > 1 and split_by_units(layout, batch_size, cores, X, diagnostics):
            return cores, True
    return shards, split_by_units(layout, batch_size, shards, X, diagnostics)


#: row shards of at most this many rows lose to a batch split by units: BLAS runs a 16-row
#: product at 65-80% of the rate of a 32-row one, and a 32-row one below a 64-row one
#: (``bench/small_products.py``); at 64-row shards the two splits were equal or rows ahead
#: (``bench/units.py``)
UNITS_MAX_SHARD_ROWS = 32
#: floating-point operations a batch split by units must have per meeting of its threads (it
#: has two per layer, row shards two per batch): a meeting cost 3-5 us more than its share of
#: the row shards' on this 2-core machine, about what 20% of 4 MFLOP's product time saves
UNITS_MIN_FLOPS = 4e6


def split_by_units(layout, batch_size, shards, X, diagnostics=False):
    """Whether the batches are split by units (``kernels.units``) rather than into ``shards``
    row shards: where row shards would have at most ``UNITS_MAX_SHARD_ROWS`` rows, a batch's
    products have ``UNITS_MIN_FLOPS`` per meeting of the threads, and the network allows it
    (``Layout.splits_by_units``; dense data, no diagnostics). Like ``shards``, it depends on
    the network, the batch size and the machine's cores, never on the thread count.

    Measured against row shards, fits alternating in one process (``python bench/units.py``):
    1.0-2.0x faster epochs on 2 threads where layers of 256-1024 units meet batches of 32-64
    rows (most 1.13-1.31x), 1.05-1.15x on one; 0.68-0.89x where a batch of layers of 64-128
    units (or one of 512-1024 on 32 inputs) had under 2 MFLOP per meeting.
    """
    if shards < 2 or -(-batch_size // shards) > UNITS_MAX_SHARD_ROWS:
        return False
    meetings = 2 * layout.n_ops  # kernels.units.n_meetings (not imported: no compiled code here)
    if 6.0 * layout.n_params * batch_size < UNITS_MIN_FLOPS * meetings:
        return False
    return bool(layout.splits_by_units and not diagnostics and not isinstance(X, sparse.CSR))


#: rows per chunk of the full-batch objective. Part of its definition, not a speed setting:
#: each chunk's loss and gradient are float32 sums over its rows on one thread, and the
#: chunks' sums are added with their rounding errors kept (``add_exactly``), so the objective
#: does not depend on the thread count, nor on how the chunks are grouped into blocks
#: (``fastbp.dask``'s blocks start on chunk boundaries). Small enough that a few chunks keep
#: every core busy and the work buffers small; a call per chunk costs tens of microseconds
#: (200,000 rows x (32,): 26 ms an iteration, 30-31 ms as one batch in two shards; 3,000
#: rows x (16,), one chunk: 0.37 ms against 0.31, the penalty now in NumPy).
CHUNK_ROWS = 4096


class FullBatchObjective:
    """The mean loss of all the rows and its gradient, penalty included, for L-BFGS.

    The rows are cut into chunks of ``chunk_rows`` (from the first row); each chunk is one
    batch of the epoch loop with ``NO_STEP`` in place of an optimizer and no penalty, in
    ``shards`` row shards summed in shard order. ``sums`` runs the chunks on fastbp's threads,
    each thread a run of consecutive chunks (one shard each: the same bits on any thread
    count), and adds their loss and gradient sums keeping each addition's rounding error
    (``add_exactly``). ``__call__`` divides by the rows' total weight and adds the penalty in
    float64.

    ``objective(params)`` sets the model's parameters and returns ``(loss, gradient float64
    (P,))``. ``dtype`` float64 (the NumPy reference only) computes the chunks in float64 on
    copies of the data, parameters and buffers. One chunk of ``shards`` > 1 shards (on that
    many threads) is a batch's gradient as training computes it (``Model.gradients``).
    """

    def __init__(self, backend, layout, params, aux, loss_code, loss_param, data,
                 dtype=np.float32, chunk_rows=None, shards=1):
        self.chunk_rows = int(CHUNK_ROWS if chunk_rows is None else chunk_rows)
        self.runs, self.loss_param, self.loss_code = layout.runs, loss_param, loss_code
        self.bare = copy.copy(layout)  # the chunks' sums carry no penalty: it is added once
        self.bare.runs = layout.runs.copy()
        self.bare.runs[:, codes.RUN_L1:codes.RUN_L2 + 1] = 0.0
        if dtype != np.float32:
            data = tuple(_as_dtype(a, dtype) for a in data)
            params, aux = params.astype(dtype), aux.astype(dtype)
        self.backend, self.data, self.dtype, self.shards = backend, data, dtype, shards
        self.params, self.aux = params, aux
        self.runners = []  # one per thread, made when first needed (each has its buffers)
        self.hyper = np.zeros(codes.N_HYPER)
        n, sw = len(data[0]), data[3]
        by_weight = len(sw) > 0 and loss_param[codes.LP_NORM_BY_WEIGHT] != 0.0
        self.chunks = []  # (rows, the loss's normaliser of the chunk)
        for lo in range(0, n, self.chunk_rows):
            rows = np.arange(lo, min(lo + self.chunk_rows, n), dtype=np.int64)
            # the kernel's normaliser (``network.loss_norm``): a float64 sum in row order
            self.chunks.append((rows, float(np.cumsum(sw[rows], dtype=np.float64)[-1])
                                if by_weight else float(len(rows))))
        self.norm = sum(norm for _, norm in self.chunks)

    def _runner(self, s):
        """Thread s's runner: its own work buffers over the shared data and parameters."""
        from .optimizers import SGD
        while len(self.runners) <= s:
            r = EpochRunner(self.backend, self.bare, self.params, self.aux, SGD(),
                            self.loss_code, self.loss_param, codes.ACC_SKIP, self.data,
                            self.chunk_rows, 0, shards=self.shards)
            if self.dtype != np.float32:
                r.buf = {k: v.astype(self.dtype) if v.dtype == np.float32 else v
                         for k, v in r.buf.items()}
                r.state = r.optimizer.state = r.state.astype(self.dtype)
            self.runners.append(r)
        return self.runners[s]

    def sums(self, params, step=0):
        """The rows' sums at ``params``, penalty excluded: float64 (2, 1 + P), the loss in
        column 0 and its gradient in the rest, each as ``hi + lo`` (``add_exactly``); None
        when a chunk's loss is not finite. ``step`` seeds dropout's masks."""
        self.params[:] = params
        compiled = self.backend.name == "numba"
        k = len(self.chunks)
        with _threads.running(), _threads.single_threaded_blas(compiled):
            shard_threads = _threads.threads_for(self.shards) if compiled and \
                _threads.alone() else 1
            threads = 1 if not compiled or self.shards > 1 or not _threads.alone() else \
                min(k, _threads.get_num_threads())
            for s in range(threads):
                self._runner(s)
            totals = np.zeros((threads, 2, 1 + self.params.shape[0]))
            failed = []

            def run(s):
                r = self.runners[s]
                chunk = np.zeros(totals.shape[2])
                for c in range(k * s // threads, k * (s + 1) // threads):
                    rows, norm = self.chunks[c]
                    stats = np.zeros((r.shards, r.n_stats))
                    args = list(r.arguments(rows, stats, self.hyper, codes.NO_STEP))
                    args[17] = step
                    status, _, _ = r.backend.train_epoch(tuple(args), shard_threads, None, 0,
                                                         None, None)
                    if status != codes.OK:  # a loss that is not finite
                        failed.append(c)
                        return
                    # the chunk's mean loss and gradient, times its normaliser: its sums
                    chunk[0] = stats[0, codes.ST_LOSS] / stats[0, codes.ST_ROWS] * norm
                    np.multiply(r.buf["grads"][0], norm, out=chunk[1:])
                    add_exactly(totals[s], chunk)
            _threads.run(run, threads, ())
        if failed:
            return None
        for s in range(1, threads):
            add_exactly(totals[0], totals[s])
        return totals[0]

    def __call__(self, params, step=0):
        """``(mean loss + penalty, gradient float64 (P,))``; ``(inf, None)`` when the loss is
        not finite."""
        total = self.sums(params, step)
        if total is None:
            return np.inf, None
        return with_penalty(total, params, self.runs, self.norm, self.loss_param)


def add_exactly(total, x):
    """``total += x`` for sums kept as ``total[0] + total[1]`` (float64 (2, m); x (m,) or such
    a pair): each addition's rounding error (Knuth's TwoSum) goes into ``total[1]``, so the
    sums carry about 106 bits and their grouping changes them by about 1e-30 relative, far
    below float64's resolution."""
    if x.ndim == 2:
        add_exactly(total, x[0])
        total[1] += x[1]
        return
    hi = total[0] + x
    z = hi - total[0]
    total[1] += (total[0] - (hi - z)) + (x - z)
    total[0] = hi


def with_penalty(total, params, runs, norm, loss_param):
    """The objective from the rows' sums (``FullBatchObjective.sums``): ``(loss / norm +
    penalty, gradient / norm + its gradient)`` in float64, the penalty divided by ``norm`` too
    where the loss says so (``LP_PENALTY_PER_SAMPLE``)."""
    whole = (total[0] + total[1]) / norm
    grad = whole[1:]
    scale = 1.0 / norm if loss_param[codes.LP_PENALTY_PER_SAMPLE] != 0.0 else 1.0
    return whole[0] + penalty(np.asarray(params, np.float64), grad, runs, scale), grad
