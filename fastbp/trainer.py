"""The epoch loop of ``fit``: Python between compiled epochs.

Per epoch: draw the row order, keep a copy of everything the epoch may spoil, call the
backend's ``train_epoch`` once, then read the epoch's sums into logs (loss, metrics,
validation, learning rate, diagnostics) and run the callbacks.
"""

import numpy as np

from . import _threads, codes, engine
from . import metrics as metric_table
from ._validation import NonFiniteLossError
from .callbacks import TerminateOnNaN


def train(model, data, val, epochs, batch_size, shuffle, callbacks, diagnostics):
    """Train ``model`` for up to ``epochs`` epochs on prepared ``data`` (X, Y, labels, sw)."""
    X, Y, labels, sw = data
    backend = engine.get(model.backend)
    lay = model.layout
    opt = model.optimizer
    state = opt.ensure_state(lay.n_params)
    loss_param = model.loss.loss_param(lay.n_outputs)
    n = len(X)
    batch_size = min(batch_size, n)
    shards = 1 if lay.has_batchnorm else _threads.n_shards(batch_size)
    parallel = backend.name == "numba" and _threads.parallel(shards)
    buf = lay.shard_buffers(batch_size, shards, diagnostics)
    acc_kind = model._acc_kind(train=True)
    n_stats = codes.N_STATS + codes.ST_PER_OUTPUT * lay.n_outputs
    quiet_nan = any(isinstance(cb, TerminateOnNaN) for cb in callbacks)
    model.stop_training = False
    for cb in callbacks:
        cb.on_train_begin({})
    for epoch in range(epochs):
        for cb in callbacks:
            cb.on_epoch_begin(epoch, {})
        order = model._rng.permutation(n) if shuffle else np.arange(n, dtype=np.int64)
        stats = np.zeros((shards, n_stats))
        buf["diag"][:] = 0.0
        hyper = opt.hyper()
        saved = (model.params.copy(), model.aux.copy(), state.copy(), opt.iterations)
        start_step = opt.iterations
        with _threads.single_threaded_blas(parallel):
            status, t = backend.train_epoch(
                X, Y, labels, sw, order, batch_size, buf["ops"], lay.opf, lay.runs,
                model.loss.code, loss_param, acc_kind, opt.code, hyper, opt.sched(), state,
                opt.iterations, model.params, model.aux, buf["grads"], buf["xb"], buf["acts"],
                buf["deltas"], buf["seg"], buf["scratch"], stats, buf["diag"], buf["prev"],
                model._dropout_seed, parallel)
        if status != codes.OK or not np.isfinite(model.params).all():
            model.params[:], model.aux[:], state[:], opt.iterations = saved
            where = f"batch {status + 1} of " if status != codes.OK else "the end of "
            message = (f"the training loss became non-finite at {where}epoch {epoch + 1}/"
                       f"{epochs}; the model keeps the weights it had at the start of that "
                       f"epoch (the last finite ones). Try a smaller learning rate, gradient "
                       f"clipping (global_clipnorm=1.0) or standardised inputs.")
            if not quiet_nan:
                raise NonFiniteLossError(message)
            print(f"TerminateOnNaN: {message}")
            break
        opt.iterations = int(t)
        opt.epochs += 1
        stats = stats.sum(axis=0)  # shard order: fixed
        logs = {"loss": stats[codes.ST_LOSS] / stats[codes.ST_ROWS]}
        logs.update(metric_table.compute(model.metrics, stats))
        if val is not None:
            for key, value in model._evaluate_arrays(*val).items():
                logs["val_" + key] = value
        logs["lr"] = float(hyper[codes.HP_LR])
        if diagnostics:
            logs.update(diagnostics_logs(model, buf["diag"].sum(axis=0), opt.iterations -
                                         start_step))
        logs = {key: float(value) for key, value in logs.items()}
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end({})


def diagnostics_logs(model, diag, steps):
    """Per dense layer: RMS over the epoch's steps of the weight gradient's norm and of the
    update's norm, the weights' norm at the end, their ratio, and for ReLU layers the fraction
    of units whose output was 0 for every row of the epoch."""
    lay = model.layout
    logs = {}
    for layer, op, run in zip(model.layers, lay.layer_op, lay.layer_run):
        if run is None:
            continue
        start, stop = int(lay.runs[run, codes.RUN_START]), int(lay.runs[run, codes.RUN_STOP])
        weight_norm = float(np.linalg.norm(model.params[start:stop]))
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
