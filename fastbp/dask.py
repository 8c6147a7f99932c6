"""Training where a Dask cluster holds the data: ``fastbp.dask.MLPClassifier`` and
``MLPRegressor`` (``pip install "fastbp[dask]"``; ``import fastbp`` does not import dask).

The estimators are fastbp's scikit-learn estimators whose ``fit`` takes a ``dask.array`` or a
``dask.dataframe`` (NumPy and pandas data train on the client as usual). The row blocks are
computed on the workers and stay there; only parameters, losses and gradients travel.

``solver="lbfgs"``: distributed L-BFGS, as Spark MLlib's MLP. Every iteration the client
sends the parameters to every worker, each worker computes the loss and gradient sums of its
blocks with the compiled full-batch kernel (no penalty), the client adds them in block order
(a fixed order: the same result whatever the workers' timing), adds the L2 penalty and steps
``scipy.optimize``. The blocks are first cut again to start on multiples of the single-
machine objective's chunk (``trainer.CHUNK_ROWS``), and each block sums its chunks as a local
fit does (float32 within a chunk, on one thread; across chunks in float64 with each
addition's rounding error kept): the objective is the single-machine one to about 1e-30
before its rounding to float64, and the fit follows the same path (on workers whose CPU and
BLAS compute a chunk as the client's do; elsewhere, to float32 rounding per chunk). Streaming
(``keep_blocks=False``) does not move rows between blocks (it would read a neighbour's file
for a few of its rows in every pass): each block's chunks start at its first row, and the
fit is the single-machine one to float32 summation order, or to the bit where every block but
the last holds a multiple of ``CHUNK_ROWS`` rows.

``solver="adam"``, ``"sgd"``, ``"adamw"``: data-parallel training by model averaging (local
SGD). Each round, every block trains ``sync_every`` mini-batches (a ``fit`` argument, default
10) with the compiled epoch loop from the current weights and optimizer state, its rows in a
new random order every epoch; the client then averages the blocks' weights and optimizer
states, weighted by the rows each trained on, and sends the average out for the next round.
An epoch is over when every block has visited its rows. ``sync_every=1`` is synchronous
data-parallel SGD with the gradients averaged over the blocks' batches; larger values trade
fidelity to single-machine training for fewer round trips. Adam's second moment, which each
block estimates from its share of the batch, is pooled to the whole batch's at every
averaging (``pooled_second_moment``). The loss curve, ``tol`` and
``n_iter_no_change`` work on the training loss as locally; only constant learning rates.
"""

import numpy as np

from . import codes, engine, trainer
from .reference.optim import penalty
from .sklearn import MLPClassifier as _LocalClassifier
from .sklearn import MLPRegressor as _LocalRegressor


def _distributed():
    try:
        import dask
        import distributed
    except ImportError:
        raise ImportError("fastbp.dask needs dask and distributed: pip install "
                          "\"fastbp[dask]\"") from None
    return dask, distributed


def blocks(X, y):
    """``[(X_block, y_block) delayed, ...]`` in row order from dask collections (a dask
    dataframe or array for X; a dask series, dataframe or array for y), aligned by rows."""
    dask, _ = _distributed()
    import dask.array as da
    if hasattr(X, "columns") and hasattr(X, "to_delayed"):  # a dask dataframe: its partitions
        if not hasattr(y, "to_delayed") or hasattr(y, "chunks"):
            raise TypeError("with a dask dataframe X, y must be a dask series or dataframe "
                            "from the same source (partitioned alike)")
        # one frame, so that X's and y's rows go to the same blocks (dask may plan the
        # partitions of a column projection of a Parquet source apart from the rest)
        targets = [y.name] if not hasattr(y, "columns") else list(y.columns)
        renamed = {t: f"__target_{i}__" for i, t in enumerate(targets)}
        both = X.assign(**{renamed[t]: (y if len(targets) == 1 else y[t]) for t in targets})
        n_x = len(X.columns)
        return [dask.delayed(_split)(part, n_x) for part in both.to_delayed()], n_x

    def as_array(a, name):
        if hasattr(a, "to_dask_array"):
            return a.to_dask_array(lengths=True)
        if isinstance(a, da.Array):
            return a
        raise TypeError(f"{name} must be a dask array or dask dataframe (or NumPy/pandas data "
                        f"for a local fit); received {type(a).__name__}")
    X, y = as_array(X, "X"), as_array(y, "y")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); received shape {X.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of rows; received {X.shape[0]} "
                         f"and {y.shape[0]}")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: X.shape[1]})
    y = y.rechunk({0: X.chunks[0]} if y.ndim == 1 else {0: X.chunks[0], 1: y.shape[1]})
    xs = X.to_delayed().ravel().tolist()
    ys = y.to_delayed().ravel().tolist()
    return [dask.delayed(tuple)([a, b]) for a, b in zip(xs, ys)], X.shape[1]


#: per worker process: ``(fit key, block key) -> FullBatchObjective`` (L-BFGS) or
#: ``(estimator, EpochRunner, rows)`` (the stochastic solvers)
_OBJECTIVES = {}


def block_objective(fit_key, block_key, spec, block, params):
    """Run on a worker: the sums of the block's losses and their gradient at ``params``,
    penalty excluded, from the compiled full-batch kernel: float64 (2, 1 + P) as
    ``trainer.FullBatchObjective.sums`` makes them from the block's chunks of ``chunk_rows``
    rows, or None when the loss is not finite. The block's checked float32 arrays and buffers
    are made at the first call and kept for the fit's others (unless ``fit_key`` is None:
    streaming)."""
    entry = _OBJECTIVES.get((fit_key, block_key)) if fit_key is not None else None
    if entry is None:
        cls, params_dict, n_features, classes, chunk_rows = spec
        shell = _shell(cls, params_dict, n_features, classes)
        X, y = block
        X, Y, labels, _ = shell._validate_input(np.asarray(X), np.asarray(y), True, False)
        out_units, out_act = shell._output(Y, labels)
        shell._random_state = np.random.RandomState(0)  # (weights come from the client)
        shell._initialize(n_features, out_units, out_act)
        code, loss_param = shell._loss()
        entry = trainer.FullBatchObjective(engine.get("numba"), shell._layout, shell._params,
                                           shell._aux, code, loss_param,
                                           (X, Y, labels, np.zeros(0, np.float32)),
                                           chunk_rows=chunk_rows)
        if fit_key is not None:
            _OBJECTIVES[(fit_key, block_key)] = entry
    return entry.sums(np.asarray(params, np.float32))


def forget(fit_key):
    """Run on every worker at the end of a fit: drop its blocks' arrays and buffers."""
    for key in [k for k in _OBJECTIVES if k[0] == fit_key]:
        del _OBJECTIVES[key]


class _Distributed:
    """``fit`` on dask collections (see the module docstring); the rest is the local
    estimator's."""

    def _fit_averaged(self, *args):
        return _fit_averaged(self, *args)

    def fit(self, X, y, sample_weight=None, sync_every=10, keep_blocks=True):
        """Fit on dask collections where they live (NumPy or pandas data: a local fit).
        ``sync_every``: mini-batches each block trains between averagings (stochastic
        solvers). ``keep_blocks=False`` streams: no block is kept on the workers, each task
        computes its block from the collection's source (a Parquet file read by
        ``dask.dataframe.read_parquet``, say) and drops it, so a worker holds one block per
        thread however large the data; every pass then reads the data again (L-BFGS: every
        evaluation; the stochastic solvers: every epoch, with one averaging an epoch, as
        ``sync_every`` covering a whole block)."""
        if not (hasattr(X, "dask") or hasattr(X, "to_dask_array")):
            return super().fit(X, y, sample_weight)
        _, distributed = _distributed()
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by fastbp.dask yet")
        if self.solver != "lbfgs":
            if isinstance(sync_every, bool) or not isinstance(sync_every, (int, np.integer)) \
                    or sync_every < 1:
                raise ValueError(f"sync_every must be an integer >= 1; received {sync_every!r}")
            if self.solver == "sgd" and self.learning_rate != "constant":
                raise ValueError(f"fastbp.dask trains with a constant learning rate; received "
                                 f"learning_rate={self.learning_rate!r}")
            if self.early_stopping:
                raise ValueError("early_stopping=True is not supported by fastbp.dask yet")
        client = distributed.get_client()
        parts, n_features = blocks(X, y)
        if not keep_blocks:
            return self._fit_on(_Blocks(client, parts, False), n_features, int(sync_every))
        kept = _Blocks(client, client.compute(parts), True)  # kept on the workers
        try:
            return self._fit_on(kept, n_features, int(sync_every))
        finally:
            client.cancel(kept.blocks)

    def _fit_on(self, futures, n_features, sync_every):
        import uuid

        import scipy.optimize
        from sklearn.utils.multiclass import unique_labels
        client = futures.client
        classifier = isinstance(self, _LocalClassifier)
        described = client.gather(futures.map(_describe, classifier))
        classes = unique_labels(*[d[0] for d in described]) if classifier else None
        rows = [d[1] for d in described]
        n = int(sum(rows))
        # the client's model: a few rows of every class set up its structure exactly as a
        # local fit would; its weights are then drawn afresh from random_state
        Xs = np.concatenate([d[2] for d in described])
        ys = np.concatenate([d[3] for d in described])
        local_params = {k: v for k, v in self.get_params().items()}
        self.set_params(max_iter=1)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            super().fit(Xs, ys)
        self.set_params(**local_params)
        from sklearn.utils import check_random_state

        from .sklearn import OUT_NAMES
        self._random_state = check_random_state(self.random_state)  # as a local fit draws
        out_act = {v: k for k, v in OUT_NAMES.items()}[self.out_activation_]
        self._initialize(n_features, self._layout.n_outputs, out_act)
        local = _LocalClassifier if classifier else _LocalRegressor
        spec = (local, local_params, n_features, None if classes is None else classes.tolist())
        fit_key = uuid.uuid4().hex if futures.kept else None  # None: nothing cached
        if self.solver != "lbfgs":
            try:
                return self._fit_averaged(futures, spec, fit_key, rows, sync_every)
            finally:
                client.run(forget, fit_key)
        lay = self._layout
        self.n_evaluations_ = 0
        # the single-machine objective's chunks: blocks cut on chunk boundaries then sum
        # exactly the chunks a local fit sums (trainer.FullBatchObjective)
        chunk_rows = trainer.CHUNK_ROWS
        if futures.kept:  # (streaming: each block's own chunks, see the module docstring)
            futures.regrid(rows, chunk_rows)
        spec = spec + (chunk_rows,)
        loss_param = self._loss()[1]

        def objective(packed):
            # the parameters go with each task (P floats): nothing to replicate to a worker
            # that may be gone
            weights = packed.astype(np.float32)
            parts = futures.tasks(lambda k, b: (block_objective, fit_key, k, spec, b, weights))
            total = np.zeros((2, 1 + packed.shape[0]))
            for part in client.gather(parts):  # block order (the grouping changes ~1e-30)
                if part is None:  # a loss that is not finite
                    return np.inf, np.full(packed.shape[0], np.nan)
                trainer.add_exactly(total, part)
            self.n_evaluations_ += 1
            return trainer.with_penalty(total, packed, lay.runs, n, loss_param)

        try:
            options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
            result = scipy.optimize.minimize(objective, self._params.astype(np.float64),
                                             method="L-BFGS-B", jac=True, options=options)
        finally:
            client.run(forget, fit_key)
        from .sklearn import _check_optimize_result
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self._params[:] = result.x
        pen = penalty(result.x, np.zeros_like(result.x), lay.runs, 1.0 / n)
        k = self.n_outputs_ if self._loss()[0] == codes.SQUARED_ERROR else 1
        self.loss_ = float((result.fun - pen) / k + pen)  # as the local fit reports it
        self.loss_curve_ = None
        self.n_features_in_ = n_features
        self._link()
        self._publish(np.float64)
        return self


def block_train(fit_key, block_key, spec, block, weights, state, t, epoch, start, stop,
                batch_size):
    """Run on a worker: train the block's rows ``start:stop`` of this epoch's order (mini-
    batches of ``batch_size``, the block's share of the fit's batch size) from ``weights``
    and optimizer ``state`` at step ``t``.
    Returns ``(weights, state, steps, rows, stats)``, or None when the loss became
    non-finite."""
    entry = _OBJECTIVES.get((fit_key, block_key)) if fit_key is not None else None
    if entry is None:
        cls, params_dict, n_features, classes = spec
        shell = _shell(cls, params_dict, n_features, classes)
        X, y = block
        X, Y, labels, _ = shell._validate_input(np.asarray(X), np.asarray(y), True, False)
        out_units, out_act = shell._output(Y, labels)
        shell._random_state = np.random.RandomState(0)
        shell._initialize(n_features, out_units, out_act)
        code, loss_param = shell._loss()
        opt = shell._make_optimizer()
        runner = trainer.EpochRunner(engine.get("numba"), shell._layout, shell._params,
                                     shell._aux, opt, code, loss_param, codes.ACC_SKIP,
                                     (X, Y, labels, np.zeros(0, np.float32)), batch_size, 0)
        entry = (shell, runner, len(X))
        if fit_key is not None:
            _OBJECTIVES[(fit_key, block_key)] = entry
    shell, runner, n = entry
    order = np.random.default_rng([int(spec[1].get("random_state") or 0), epoch, block_key]) \
        .permutation(n)[start:stop]
    shell._params[:] = weights
    runner.optimizer.state[:] = state
    runner.optimizer.iterations = t
    stats = runner.run(order)
    if stats is None:
        return None
    return (shell._params.copy(), runner.optimizer.state.copy(), runner.optimizer.iterations - t,
            len(order), stats)


def _shell(cls, params_dict, n_features, classes):
    shell = cls(**params_dict)
    shell.n_features_in_ = n_features
    if classes is not None:
        from sklearn.preprocessing import LabelBinarizer
        shell.classes_ = np.asarray(classes)
        shell._label_binarizer = LabelBinarizer().fit(shell.classes_)
    return shell


def _split(frame, n_x):
    """A partition of X's columns and y's as ``(X, y)`` arrays."""
    values = frame.to_numpy()
    y = values[:, n_x:]
    return values[:, :n_x].astype(np.float64), (y[:, 0] if y.shape[1] == 1 else y)


def _describe(block, classifier):
    """Of a block: its classes (classifier), its rows, and a few rows (the first of each
    class, else the first two) that set up the client's model."""
    X, y = (np.asarray(a) for a in block)
    if classifier:
        classes, first = np.unique(y, return_index=True)
        return classes, len(X), X[first], y[first]
    return None, len(X), X[:2], y[:2]


def _rows_of(block, a, b):
    """Rows ``a:b`` of a block ``(X, y)``."""
    return np.asarray(block[0])[a:b], np.asarray(block[1])[a:b]


def _joined(*blocks):
    """Blocks ``(X, y)`` one after the other, as one."""
    return (np.concatenate([block[0] for block in blocks]),
            np.concatenate([block[1] for block in blocks]))


class _Blocks:
    """The fit's row blocks: futures kept on the workers (``kept``), or delayed objects that
    every task computes afresh (streaming)."""

    def __init__(self, client, blocks, kept):
        self.client, self.blocks, self.kept = client, blocks, kept

    def regrid(self, rows, chunk_rows):
        """Hold the same rows in blocks that start on multiples of ``chunk_rows`` (each block
        boundary moved to the nearest multiple; ``rows``: the blocks' row counts). Kept blocks
        only: each piece is cut where its block lives and only the pieces travel; the new
        blocks are computed before the old ones are let go."""
        from distributed import wait
        ends = np.cumsum(rows)
        n = int(ends[-1])
        cuts = sorted({min(n, int(round(e / chunk_rows)) * chunk_rows) for e in ends[:-1]}
                      - {0} | {n})
        if [int(e) for e in ends] == cuts:
            return
        starts = np.concatenate([[0], ends[:-1]])
        blocks, lo = [], 0
        for hi in cuts:
            pieces = [self.client.submit(_rows_of, self.blocks[k], max(lo, int(a)) - int(a),
                                         min(hi, int(b)) - int(a))
                      for k, (a, b) in enumerate(zip(starts, ends)) if a < hi and b > lo]
            blocks.append(pieces[0] if len(pieces) == 1 else
                          self.client.submit(_joined, *pieces))
            lo = hi
        wait(blocks)
        self.blocks = blocks  # the old blocks' last references: released

    def map(self, fn, *args):
        """Futures of ``fn(block, *args)`` for every block, in block order."""
        return self.tasks(lambda k, block: (fn, block, *args))

    def tasks(self, build, keep=None):
        """Futures of one task per block that ``keep(k)`` accepts (all by default), in block
        order; ``build(k, block) -> (function, *arguments)``."""
        import dask
        out = []
        for k, block in enumerate(self.blocks):
            if keep is not None and not keep(k):
                continue
            fn, *arguments = build(k, block)
            if self.kept:
                out.append(self.client.submit(fn, *arguments, pure=False))
            else:  # the block computed inside the task's graph, and dropped after it
                out.append(self.client.compute(dask.delayed(fn, pure=False)(*arguments)))
        return out


def _fit_averaged(self, futures, spec, fit_key, rows, sync_every):
    """Data-parallel training by model averaging (see the module docstring)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from ._validation import NonFiniteLossError
    n = int(sum(rows))
    batch_size = min(200, n) if self.batch_size == "auto" else int(np.clip(self.batch_size, 1, n))
    # the global batch split over the blocks by their rows: a step of every block together
    # covers batch_size rows, and every block takes as many steps an epoch as a local fit
    shares = [max(1, round(batch_size * r / n)) for r in rows]
    opt = self._make_optimizer()
    state = opt.ensure_state(self._params.shape[0]).copy()
    weights, t = self._params.copy(), 0
    self.loss_curve_, self.best_loss_, self._no_improvement_count = [], np.inf, 0
    self.n_rounds_ = 0
    if not futures.kept:  # streaming: a block is read once an epoch, so one round per epoch
        sync_every = max(-(-r // b) for r, b in zip(rows, shares))
    rounds = max(-(-r // (sync_every * b)) for r, b in zip(rows, shares))
    for epoch in range(self.max_iter):
        total = None
        for round_ in range(rounds):
            spans = [(round_ * sync_every * b, min((round_ + 1) * sync_every * b, r))
                     for r, b in zip(rows, shares)]
            tasks = futures.tasks(lambda k, b: (block_train, fit_key, k, spec, b, weights,
                                                state, t, epoch, spans[k][0], spans[k][1],
                                                shares[k]),
                                  keep=lambda k: spans[k][0] < spans[k][1])
            results = futures.client.gather(tasks)  # block order: the same average each time
            if any(r is None for r in results):
                raise NonFiniteLossError(f"the training loss became non-finite in epoch "
                                         f"{epoch + 1}; the model keeps its initial weights")
            trained = np.array([r[3] for r in results], np.float64)
            share = trained / trained.sum()
            weights = np.sum([s * r[0].astype(np.float64) for s, r in zip(share, results)],
                             axis=0).astype(np.float32)
            sent = state
            state = np.sum([s * r[1].astype(np.float64) for s, r in zip(share, results)],
                           axis=0)
            steps = max(r[2] for r in results)
            t += steps
            if opt.code in (codes.ADAM, codes.ADAMW) and len(results) > 1:
                state = pooled_second_moment(sent, state, len(results), steps, opt.beta_1,
                                             opt.beta_2, t)
            state = state.astype(np.float32)
            stats = np.sum([r[4] for r in results], axis=0)
            total = stats if total is None else total + stats
            self.n_rounds_ += 1
        loss = self._reported(total)
        self.loss_curve_.append(loss)
        if loss > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        self.best_loss_ = min(self.best_loss_, loss)
        if self._no_improvement_count > self.n_iter_no_change:
            break
    else:
        warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                      f"the optimization hasn't converged yet.", ConvergenceWarning)
    self._params[:] = weights
    self.n_iter_, self.t_, self.loss_ = epoch + 1, t * batch_size, self.loss_curve_[-1]
    self._link()
    self._publish(np.float64)
    return self


def pooled_second_moment(sent, averaged, k, steps, beta_1, beta_2, t):
    """Adam's averaged state ``(m, v)`` (2, P) after a round in which ``k`` blocks each took
    ``steps`` steps on its share of the global batch from the state ``sent``, with the round's
    addition to ``v`` made that of the whole batch.

    Each block's ``v`` follows the squares of its own gradients, computed on 1/k of the batch:
    E[g_k^2] = mu^2 + k sigma^2, where the whole batch's is mu^2 + sigma^2 (mu the mean
    gradient, sigma^2 the variance of a whole batch's). Averaged as it is, ``v`` overstates
    the noise k-fold and every step shrinks: at 40,000 rows on 4 blocks the averaged fit
    reached 0.861 test accuracy after 5 epochs against 0.926 locally. The round added
    a = v_avg - beta_2^steps v_sent, (1 - beta_2^steps) times the blocks' mean E[g_k^2]; it is
    replaced by a / k + (1 - 1/k) (1 - beta_2^steps) mu^2, with mu from the averaged ``m``
    (bias-corrected to step ``t``). What ``v`` carried from earlier rounds stays as it was.
    """
    m = averaged[0]
    decay = beta_2 ** steps
    added = averaged[1] - decay * sent[1]
    mu = m / (1.0 - beta_1 ** t)
    out = averaged.copy()
    out[1] = decay * sent[1] + added / k + (1.0 - 1.0 / k) * (1.0 - decay) * mu * mu
    return out


class MLPClassifier(_Distributed, _LocalClassifier):
    __doc__ = _LocalClassifier.__doc__


class MLPRegressor(_Distributed, _LocalRegressor):
    __doc__ = _LocalRegressor.__doc__
