"""Training callbacks: Python that runs between compiled epochs.

A callback's ``on_train_begin(logs)``, ``on_epoch_end(epoch, logs)`` and
``on_train_end(logs)`` are called by ``fit``; ``logs`` holds the epoch's ``loss``, metrics,
``val_*`` values and ``lr``. Setting ``self.model.stop_training = True`` ends training after
the current epoch.
"""

import csv
import math
import os
import sys
import time

import numpy as np

from ._validation import check_float, check_int, describe


class Callback:
    """Base class: every hook does nothing."""

    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


class History(Callback):
    """Per-epoch logs of a ``fit``: ``history["loss"]``, ``history["val_accuracy"]``, ...

    Attributes
    ----------
    history : dict of str -> list of float
    epoch : list of int
        Epoch indices (0-based) the lists refer to.
    params : dict
        ``epochs``, ``batch_size``, ``samples``, ``steps`` of the fit.
    """

    def __init__(self, params=None):
        self.history = {}
        self.epoch = []
        self.params = dict(params or {})

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


def _mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max'; received mode={mode!r}")
    if mode == "auto":
        higher = any(key in monitor for key in ("acc", "r2"))
        return "max" if higher else "min"
    return mode


class _Monitor(Callback):
    """Shared by the callbacks that watch one logged value for improvement."""

    def __init__(self, monitor, mode, min_delta):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be the name of a logged value such as 'val_loss'; "
                            f"received {describe(monitor)}")
        self.monitor = monitor
        self.mode = _mode(mode, monitor)
        self.min_delta = abs(check_float(min_delta, "min_delta"))

    def _value(self, logs):
        if self.monitor not in logs:
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, which this fit "
                             f"does not log; logged values are {sorted(logs)}")
        return logs[self.monitor]

    def _improved(self, value, best):
        if best is None:
            return not math.isnan(value)
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights=True`` the model ends with the weights (and batch-norm
    statistics) of its best epoch.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=False):
        super().__init__(monitor, mode, min_delta)
        self.patience = check_int(patience, "patience", low=0)
        if not isinstance(restore_best_weights, (bool, np.bool_)):
            raise TypeError(f"restore_best_weights must be True or False; received "
                            f"{describe(restore_best_weights)}")
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = self._value(logs)
        if self._improved(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model._snapshot_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model._restore_weights(self.best_weights)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs; then wait ``cooldown`` epochs; never below ``min_lr``."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.factor = check_float(factor, "factor", low=0.0, high=1.0, low_open=True,
                                  high_open=True)
        self.patience = check_int(patience, "patience", low=0)
        self.cooldown = check_int(cooldown, "cooldown", low=0)
        self.min_lr = check_float(min_lr, "min_lr", low=0.0)
        self.verbose = check_int(verbose, "verbose", low=0, high=1)

    def on_train_begin(self, logs=None):
        self.best = None
        self.wait = 0
        self.cooldown_left = 0

    def on_epoch_end(self, epoch, logs=None):
        value = self._value(logs)
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._improved(value, self.best):
            self.best, self.wait = value, 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait > self.patience:
            opt = self.model.optimizer
            old = opt.current_lr()
            if old > self.min_lr:
                new = max(old * self.factor, self.min_lr)
                opt.lr_factor *= new / old
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau: learning rate {old:.3g} -> "
                          f"{new:.3g}")
            self.cooldown_left = self.cooldown
            self.wait = 0


class TerminateOnNaN(Callback):
    """Stop training quietly, instead of raising, when the loss becomes NaN or infinite; the
    model keeps the weights it had at the start of that epoch (the last finite ones)."""

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.model.stop_training = True


class ModelCheckpoint(_Monitor):
    """Save the model after every epoch, or only when ``monitor`` improves
    (``save_best_only``), through the model's save format. ``filepath`` may hold
    ``{epoch}`` and logged names: ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``."""

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto"):
        super().__init__(monitor, mode, 0.0)
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"filepath must be a path; received {describe(filepath)}")
        self.filepath = os.fspath(filepath)
        self.save_best_only = bool(save_best_only)

    def on_train_begin(self, logs=None):
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            value = self._value(logs)
            if not self._improved(value, self.best):
                return
            self.best = value
        self.model.save(self.filepath.format(epoch=epoch + 1, **logs))


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` then every logged value."""

    def __init__(self, filename, separator=",", append=False):
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"filename must be a path; received {describe(filename)}")
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = bool(append)

    def on_train_begin(self, logs=None):
        self.keys = None
        exists = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._has_header = exists
        self._writer = csv.writer(self._file, delimiter=self.separator)

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = list(logs)
            if not self._has_header:
                self._writer.writerow(["epoch"] + self.keys)
        self._writer.writerow([epoch] + [logs.get(key, "") for key in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


class EpochLines(Callback):
    """``verbose=2``: one line per epoch with its logs and its time."""

    def __init__(self, epochs, stream=None):
        self.epochs = epochs
        self.stream = stream

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        shown = " - ".join(f"{k}: {v:.4g}" if k == "lr" else f"{k}: {v:.4f}"
                           for k, v in logs.items() if "/" not in k)
        print(f"Epoch {epoch + 1}/{self.epochs} - {shown} - "
              f"{time.perf_counter() - self.start:.3f}s", file=self.stream or sys.stdout,
              flush=True)


class ProgressBar(Callback):
    """``verbose=1`` (Keras's "auto"): a single line across all epochs, redrawn after each
    one."""

    def __init__(self, epochs, width=30, stream=None):
        self.epochs = epochs
        self.width = width
        self.stream = stream

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        filled = int(self.width * done / self.epochs)
        bar = "=" * max(filled - 1, 0) + (">" if filled < self.width else "=") \
            + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        eta = elapsed / done * (self.epochs - done)
        shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()
                           if "/" not in k and k != "lr")
        print(f"\r{done}/{self.epochs} [{bar}] {elapsed:.1f}s, ETA {eta:.1f}s - {shown}",
              end="", file=self.stream or sys.stdout, flush=True)

    def on_train_end(self, logs=None):
        print(file=self.stream or sys.stdout, flush=True)
