"""Compile (or load) every kernel the APIs call: ``fastbp.warmup()``, ``python -m fastbp warmup``.

There are three compiled entry points, each compiled for one tuple of argument types whatever
the model, the data or the thread count (``fastbp.engine`` gives every array one type):
``kernels.epoch.train_epoch`` (training epochs, the full-batch objective of L-BFGS and
``model.gradients``), ``kernels.inference.infer`` (``predict`` and ``evaluate``) and
``kernels.optim.optimizer_step`` (``optimizer.apply_gradients``, a hand-written loop's step).
"""

import sys
import time

import numpy as np


def _tiny_model():
    from .layers import Dense
    from .model import Sequential
    model = Sequential([Dense(2, activation="relu"), Dense(2, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def entry_points():
    """``(name, function)`` pairs: each compiles (or loads) one entry point when called."""
    X = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    y = np.array([0, 1])
    model = _tiny_model()
    return [
        ("training epoch (kernels.epoch.train_epoch)",
         lambda: model.fit(X, y, epochs=1, batch_size=2, verbose=0)),
        ("inference (kernels.inference.infer)", lambda: model.evaluate(X, y, verbose=0)),
        ("optimizer step (kernels.optim.optimizer_step)",
         lambda: model.optimizer.apply_gradients(zip(model.gradients(X, y),
                                                     model.trainable_variables))),
    ]


def run(verbose=False, stream=None):
    """Compile or load every entry point; with ``verbose``, one line per entry point with the
    time it took (to ``stream``, stderr by default). Returns the total seconds."""
    stream = sys.stderr if stream is None else stream
    total = 0.0
    from ._threads import interrupts_deferred
    for name, call in entry_points():
        start = time.perf_counter()
        with interrupts_deferred():
            call()
        seconds = time.perf_counter() - start
        total += seconds
        if verbose:
            stream.write(f"fastbp: {name} ready in {seconds:.1f} s\n")
            stream.flush()
    return total
