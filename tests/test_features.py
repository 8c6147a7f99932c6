"""Training features: dropout, batch normalisation, schedules, callbacks, weights, labels,
metrics, diagnostics. Each against the NumPy reference and by its observable behaviour."""

import csv

import numpy as np
import pytest

import fastbp
from fastbp import callbacks, optimizers, schedules


def blobs(rng, n=240, f=6, k=3):
    X = rng.standard_normal((n, f)).astype(np.float32)
    y = (X @ rng.standard_normal((f, k))).argmax(axis=1)
    return X, y


def model_with(layers, backend="numba", optimizer="adam", loss="categorical_crossentropy",
               metrics=("accuracy",), seed=0):
    model = fastbp.Sequential(layers, seed=seed)
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics), backend=backend)
    return model


def same_weights(a, b, exact=True):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        if exact:
            np.testing.assert_array_equal(wa, wb)
        else:
            np.testing.assert_allclose(wa, wb, rtol=1e-3, atol=2e-5)


# -- dropout ------------------------------------------------------------------------------------
def dropout_layers():
    return [fastbp.Dropout(0.1), fastbp.Dense(16, activation="relu"), fastbp.Dropout(0.4),
            fastbp.Dense(3, activation="softmax")]


def test_dropout_training_matches_reference(rng):
    X, y = blobs(rng)
    comp = model_with(dropout_layers())
    ref = model_with(dropout_layers(), backend="numpy")
    comp.fit(X, y, epochs=3, batch_size=32)
    ref.fit(X, y, epochs=3, batch_size=32)
    same_weights(comp, ref, exact=False)


def test_dropout_is_reproducible_and_seeded(rng):
    X, y = blobs(rng)
    a, b, c = (model_with(dropout_layers(), seed=s) for s in (1, 1, 2))
    for m in (a, b, c):
        m.fit(X, y, epochs=2, batch_size=32, verbose=0)
    same_weights(a, b)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_dropout_is_off_in_predict_and_rescales_in_training(rng):
    X = np.abs(rng.standard_normal((2000, 4))).astype(np.float32)
    with_drop = model_with([fastbp.Dropout(0.5), fastbp.Dense(1)], loss="mse", metrics=())
    without = model_with([fastbp.Dense(1)], loss="mse", metrics=())
    for m in (with_drop, without):
        m.build(4)
    without.set_weights(with_drop.get_weights())
    np.testing.assert_array_equal(with_drop.predict(X), without.predict(X))  # off in predict
    # in training, E[mask / (1 - rate)] = 1: the training loss on a zero-learning-rate epoch
    # averages to the same mean output, so the mean residual stays near the inference one
    target = without.predict(X)[:, 0]
    with_drop.compile(optimizer=optimizers.SGD(1e-30), loss="mse")
    history = with_drop.fit(X, target, epochs=1, batch_size=2000)
    W = with_drop.get_weights()[0][:, 0]
    expected = np.mean(((X * W) ** 2).sum(axis=1)) * (1 / 0.5 - 1)  # variance from the masks
    assert history.history["loss"][0] == pytest.approx(expected, rel=0.1)


def test_dropout_rate_zero_equals_no_dropout(rng):
    X, y = blobs(rng)
    a = model_with([fastbp.Dropout(0.0), fastbp.Dense(8, activation="relu"),
                    fastbp.Dense(3, activation="softmax")])
    b = model_with([fastbp.Dense(8, activation="relu"), fastbp.Dense(3, activation="softmax")])
    a.fit(X, y, epochs=2, verbose=0)
    b.fit(X, y, epochs=2, verbose=0)
    same_weights(a, b)


# -- batch normalisation ----------------------------------------------------------------------
def bn_layers():
    return [fastbp.Dense(12), fastbp.BatchNormalization(momentum=0.9),
            fastbp.Activation("relu"), fastbp.Dense(8, activation="tanh"),
            fastbp.BatchNormalization(), fastbp.Dense(3, activation="softmax")]


def test_batchnorm_training_matches_reference(rng):
    """(SGD, not Adam: the bias of a Dense before batch norm has gradient 0 in exact
    arithmetic, and Adam would blow its float rounding noise up to full-size steps.)"""
    X, y = blobs(rng)
    X = X * 5 + 3
    sgd = lambda: optimizers.SGD(0.05, momentum=0.9)  # noqa: E731
    comp = model_with(bn_layers(), optimizer=sgd())
    ref = model_with(bn_layers(), backend="numpy", optimizer=sgd())
    comp.fit(X, y, epochs=3, batch_size=32)
    ref.fit(X, y, epochs=3, batch_size=32)
    same_weights(comp, ref, exact=False)
    np.testing.assert_allclose(comp.predict(X), ref.predict(X), rtol=1e-3, atol=1e-5)


def test_batchnorm_uses_running_statistics_in_predict(rng):
    X = (rng.standard_normal((300, 3)) * [1, 10, 100] + [5, -5, 50]).astype(np.float32)
    model = model_with([fastbp.BatchNormalization(momentum=0.5), fastbp.Dense(1)], loss="mse",
                       metrics=())
    model.fit(X, X[:, 0], epochs=5, batch_size=300, verbose=0)
    gamma, beta, mean, var = model.get_weights()[:4]
    W, b = model.get_weights()[4:]
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=0.05)  # 1 - 0.5**5 of the way
    expected = (gamma * (X - mean) / np.sqrt(var + 1e-3) + beta) @ W + b
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-4, atol=1e-4)
    # one row alone gives the same answer as inside a batch: no batch statistics at inference
    np.testing.assert_allclose(model.predict(X[:1]), model.predict(X)[:1], rtol=1e-6)


def test_batchnorm_models_train_on_one_shard(rng, monkeypatch):
    from fastbp import _threads
    calls = []
    original = _threads.n_shards
    monkeypatch.setattr(_threads, "n_shards", lambda b, m=None: calls.append(b) or original(b))
    X, y = blobs(rng)
    model_with(bn_layers()).fit(X, y, batch_size=64)
    assert calls == []  # batch statistics need the whole batch: never sharded


def test_layer_order_is_checked():
    with pytest.raises(ValueError, match="Activation\\) must follow a Dense or "
                                         "BatchNormalization layer; received it after Dropout"):
        model_with([fastbp.Dense(3), fastbp.Dropout(0.1), fastbp.Activation("relu")]).build(2)
    with pytest.raises(ValueError, match="already has activation 'relu'"):
        model_with([fastbp.Dense(3, activation="relu"), fastbp.Activation("tanh")]).build(2)
    model_with([fastbp.Dense(3), fastbp.Dropout(0.1)]).build(2)  # allowed, as in Keras
    with pytest.raises(ValueError, match=r"rate must be a finite number in \[0.0, 1.0\)"):
        fastbp.Dropout(1.0)
    with pytest.raises(ValueError, match="momentum"):
        fastbp.BatchNormalization(momentum=2)


# -- schedules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", [
    schedules.ExponentialDecay(0.01, decay_steps=5, decay_rate=0.5),
    schedules.CosineDecay(0.01, decay_steps=20, alpha=0.1),
    schedules.LinearDecay(0.01, decay_steps=15, end_learning_rate=0.001),
    schedules.InverseScaling(0.01, power=0.5),
    schedules.StepDecay(0.01, factor=0.5, step_size=2, unit="epoch"),
    schedules.ExponentialDecay(0.01, decay_steps=1, decay_rate=0.8, unit="epoch"),
], ids=lambda s: f"{s.name}-{s.unit}")
def test_schedules_give_the_documented_rates(schedule, rng):
    X, y = blobs(rng, n=80)
    model = model_with([fastbp.Dense(3, activation="softmax")],
                       optimizer=optimizers.SGD(learning_rate=schedule))
    history = model.fit(X, y, epochs=5, batch_size=16, verbose=0)  # 5 steps per epoch
    if schedule.unit == "step":
        expected = [schedule(5 * (e + 1) - 1) for e in range(5)]  # last step of each epoch
    else:
        expected = [schedule(e) for e in range(5)]
    np.testing.assert_allclose(history.history["lr"], expected, rtol=1e-12)
    ref = model_with([fastbp.Dense(3, activation="softmax")], backend="numpy",
                     optimizer=optimizers.SGD(learning_rate=schedule))
    ref.fit(X, y, epochs=5, batch_size=16)
    same_weights(model, ref, exact=False)


def test_step_schedule_is_applied_at_every_step(rng):
    """SGD on a linear model: with lr = 0 after the first step nothing moves after it."""
    X, y = blobs(rng, n=64)
    sched = schedules.LinearDecay(0.1, decay_steps=1, end_learning_rate=1e-30)
    a = model_with([fastbp.Dense(3, activation="softmax")],
                   optimizer=optimizers.SGD(learning_rate=sched))
    a.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    b = model_with([fastbp.Dense(3, activation="softmax")],
                   optimizer=optimizers.SGD(learning_rate=0.1))
    b.fit(X[:16], y[:16], epochs=1, batch_size=16, shuffle=False, verbose=0)
    same_weights(a, b, exact=False)


def test_reduce_lr_on_plateau(rng):
    X, y = blobs(rng, n=80)
    model = model_with([fastbp.Dense(3, activation="softmax")],
                       optimizer=optimizers.SGD(learning_rate=1e-30))  # no progress at all
    cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e-3)
    history = model.fit(X, y, epochs=6, callbacks=[cb], verbose=0)
    lr = np.array(history.history["lr"]) / 1e-30
    np.testing.assert_allclose(lr, [1, 1, 1, 0.5, 0.5, 0.25])


# -- callbacks -------------------------------------------------------------------------------
def overfitting_problem(rng):
    X = rng.standard_normal((60, 20)).astype(np.float32)
    y = rng.integers(0, 2, 60)  # noise: validation loss rises once the net memorises
    Xv = rng.standard_normal((200, 20)).astype(np.float32)
    yv = rng.integers(0, 2, 200)
    return X, y, Xv, yv


def big_model():
    return model_with([fastbp.Dense(64, activation="relu"), fastbp.Dense(2, activation="softmax")],
                      optimizer=optimizers.Adam(0.01), seed=3)


def test_early_stopping_restores_the_best_weights(rng):
    X, y, Xv, yv = overfitting_problem(rng)
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    model = big_model()
    history = model.fit(X, y, epochs=100, batch_size=20, validation_data=(Xv, yv),
                        callbacks=[stop])
    val = history.history["val_loss"]
    assert stop.stopped_epoch is not None and len(val) == stop.best_epoch + 5
    assert stop.best_epoch == int(np.argmin(val))
    twin = big_model()  # same seed, same batches: the weights after the best epoch
    twin.fit(X, y, epochs=stop.best_epoch + 1, batch_size=20, verbose=0)
    same_weights(model, twin)
    assert model.evaluate(Xv, yv)[0] == pytest.approx(min(val), rel=1e-6)


def test_terminate_on_nan_stops_quietly(rng, capsys):
    X = (rng.standard_normal((64, 3)) * 100).astype(np.float32)
    y = X.sum(axis=1) * 1e3
    model = model_with([fastbp.Dense(32, activation="relu"), fastbp.Dense(1)], loss="mse",
                       optimizer=optimizers.SGD(1.0), metrics=())
    model.build(3)
    before = model.get_weights()
    history = model.fit(X, y, epochs=20, batch_size=8, callbacks=[callbacks.TerminateOnNaN()], verbose=0)
    assert history.epoch == [] and "TerminateOnNaN" in capsys.readouterr().out
    same_weights(model, type("W", (), {"get_weights": lambda self: before})())


def test_model_checkpoint_and_csv_logger(rng, tmp_path):
    X, y = blobs(rng)
    model = model_with([fastbp.Dense(8, activation="relu"), fastbp.Dense(3, activation="softmax")])
    every = callbacks.ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}.npz", save_best_only=False)
    best = callbacks.ModelCheckpoint(tmp_path / "best.npz", monitor="val_accuracy",
                                     save_best_only=True)
    log = callbacks.CSVLogger(tmp_path / "log.csv")
    history = model.fit(X, y, epochs=4, validation_split=0.25, callbacks=[every, best, log], verbose=0)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == [f"ckpt-0{i}.npz" for i in range(1, 5)]
    final = fastbp.load(tmp_path / "ckpt-04.npz")
    np.testing.assert_array_equal(final.predict(X), model.predict(X))
    best_epoch = int(np.argmax(history.history["val_accuracy"]))
    from_best = fastbp.load(tmp_path / "best.npz")
    np.testing.assert_array_equal(from_best.params, fastbp.load(
        tmp_path / f"ckpt-0{best_epoch + 1}.npz").params)
    with open(tmp_path / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert float(rows[-1]["val_loss"]) == pytest.approx(history.history["val_loss"][-1])


def test_callback_that_monitors_an_unlogged_value_says_so(rng):
    X, y = blobs(rng)
    model = model_with([fastbp.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match="monitors 'val_loss', which this fit does not log"):
        model.fit(X, y, callbacks=[callbacks.EarlyStopping()], verbose=0)


def test_custom_callback_hooks(rng):
    seen = []

    class Spy(callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append("begin")

        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, round(logs["loss"], 6) == round(logs["loss"], 6)))
            if epoch == 1:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            seen.append("end")

    X, y = blobs(rng)
    model_with([fastbp.Dense(3, activation="softmax")]).fit(X, y, epochs=5, callbacks=[Spy()])
    assert seen == ["begin", (0, True), (1, True), "end"]
    with pytest.raises(TypeError, match="callbacks must be fastbp.callbacks.Callback"):
        model_with([fastbp.Dense(3, activation="softmax")]).fit(X, y, callbacks=[print])


def test_verbose_levels(rng, capsys):
    X, y = blobs(rng)
    model = model_with([fastbp.Dense(3, activation="softmax")])
    model.fit(X, y, epochs=3, verbose=2)  # Keras's levels: 2 is one line per epoch
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[2].startswith("Epoch 3/3 - loss:") and "accuracy" in lines[2]
    for verbose in (1, "auto"):  # a progress bar (Keras's default)
        model.fit(X, y, epochs=3, verbose=verbose)
        out = capsys.readouterr().out
        assert out.count("\r") == 3 and "3/3 [" in out and out.endswith("\n")
    model.fit(X, y, epochs=3)
    assert "3/3 [" in capsys.readouterr().out
    model.fit(X, y, epochs=3, verbose=0)
    assert capsys.readouterr().out == ""


# -- weights, validation split, labels ---------------------------------------------------------
def test_class_weight_balanced_is_the_formula(rng):
    X, y = blobs(rng)
    y[:150] = 0  # imbalanced
    counts = np.bincount(y, minlength=3)
    formula = len(y) / (3 * counts[y])
    a = model_with([fastbp.Dense(3, activation="softmax")])
    b = model_with([fastbp.Dense(3, activation="softmax")])
    c = model_with([fastbp.Dense(3, activation="softmax")])
    a.fit(X, y, epochs=2, class_weight="balanced", verbose=0)
    b.fit(X, y, epochs=2, sample_weight=formula, verbose=0)
    c.fit(X, y, epochs=2, verbose=0)
    same_weights(a, b)
    assert not np.allclose(a.get_weights()[0], c.get_weights()[0])
    d = model_with([fastbp.Dense(3, activation="softmax")])
    d.fit(X, y, epochs=2, class_weight={0: 0.5, 2: 3.0}, sample_weight=np.full(len(y), 2.0), verbose=0)
    e = model_with([fastbp.Dense(3, activation="softmax")])
    e.fit(X, y, epochs=2, sample_weight=2.0 * np.array([0.5, 1.0, 3.0])[y])
    same_weights(d, e)
    with pytest.raises(ValueError, match="weight for 7, which is not one of the model's classes"):
        d.fit(X, y, class_weight={7: 1.0}, verbose=0)


def test_validation_split_is_stratified(rng):
    X, y = blobs(rng, n=300)
    model = model_with([fastbp.Dense(3, activation="softmax")])
    history = model.fit(X, y, epochs=1, validation_split=0.2, verbose=0)
    assert history.params["samples"] == 300 - sum(round(c * 0.2) for c in np.bincount(y))
    assert "val_accuracy" in history.history
    with pytest.raises(ValueError, match="not both"):
        model.fit(X, y, validation_split=0.2, validation_data=(X, y), verbose=0)
    with pytest.raises(ValueError, match="validation_split must be"):
        model.fit(X, y, validation_split=1.0, verbose=0)


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "bird"]), np.array([3, 7, 9]),
                                    np.array([-3, 0, 12])])
def test_arbitrary_class_labels_are_mapped_and_back(labels, rng):
    X, y = blobs(rng)
    model = model_with([fastbp.Dense(16, activation="relu"), fastbp.Dense(3, activation="softmax")],
                       optimizer=optimizers.Adam(0.05))
    model.fit(X, labels[y], epochs=30, verbose=0)
    np.testing.assert_array_equal(model.classes_, np.sort(labels))
    predicted = model.predict_classes(X)
    assert predicted.dtype == labels.dtype
    assert np.mean(predicted == labels[y]) > 0.9
    assert model.evaluate(X, labels[y])[1] == pytest.approx(np.mean(predicted == labels[y]))


def test_binary_string_labels(rng):
    X = rng.standard_normal((200, 3)).astype(np.float32)
    y = np.where(X[:, 0] > 0, "yes", "no")
    model = model_with([fastbp.Dense(1, activation="sigmoid")], loss="binary_crossentropy",
                       optimizer=optimizers.Adam(0.05))
    model.fit(X, y, epochs=30, verbose=0)
    assert list(model.classes_) == ["no", "yes"]
    assert np.mean(model.predict_classes(X) == y) > 0.95


def test_save_load_keeps_labels_batchnorm_and_dropout(rng, tmp_path):
    X, y = blobs(rng)
    labels = np.array(["a", "b", "c"])
    layers = [fastbp.Dense(8), fastbp.BatchNormalization(), fastbp.Activation("relu"),
              fastbp.Dropout(0.2), fastbp.Dense(3, activation="softmax")]
    model = model_with(layers)
    model.fit(X, labels[y], epochs=2, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = fastbp.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_classes(X), model.predict_classes(X))
    model.fit(X, labels[y], epochs=2, verbose=0)  # continues identically: rng, dropout seed, state saved
    loaded.fit(X, labels[y], epochs=2, verbose=0)
    same_weights(model, loaded)


# -- metrics -----------------------------------------------------------------------------------
def test_metrics_match_scikit_learn(rng):
    from sklearn import metrics as skm
    X = rng.standard_normal((300, 5)).astype(np.float32)
    Y = np.stack([X[:, 0] * 2 + 1, X[:, 1] - X[:, 2]], axis=1)
    w = rng.uniform(0.2, 2.0, 300)
    reg = model_with([fastbp.Dense(16, activation="tanh"), fastbp.Dense(2)], loss="mse",
                     metrics=["mse", "mae", "r2"])
    reg.fit(X, Y, epochs=20)
    logs = reg.evaluate(X, Y, sample_weight=w, return_dict=True)
    P = reg.predict(X)
    assert logs["r2"] == pytest.approx(skm.r2_score(Y, P, sample_weight=w), rel=1e-4)
    assert logs["mae"] == pytest.approx(skm.mean_absolute_error(Y, P, sample_weight=w), rel=1e-4)
    assert logs["mse"] == pytest.approx(skm.mean_squared_error(Y, P, sample_weight=w), rel=1e-4)

    y = (X[:, 0] + 0.5 * rng.standard_normal(300) > 0).astype(int) + (X[:, 1] > 1)
    clf = model_with([fastbp.Dense(3, activation="softmax")],
                     metrics=["accuracy", "log_loss", "binary_accuracy"])
    clf.fit(X, y, epochs=10)
    logs = clf.evaluate(X, y, sample_weight=w, return_dict=True)
    proba = clf.predict_proba(X)
    assert logs["log_loss"] == pytest.approx(skm.log_loss(y, proba, sample_weight=w, labels=[0, 1, 2]),
                                             rel=1e-4)
    assert logs["accuracy"] == pytest.approx(skm.accuracy_score(y, proba.argmax(1), sample_weight=w))
    one_hot = np.eye(3)[y]
    assert logs["binary_accuracy"] == pytest.approx(
        np.average(((proba > 0.5) == one_hot).mean(axis=1), weights=w))


# -- diagnostics --------------------------------------------------------------------------------
def test_diagnostics_are_recorded_and_match_the_reference(rng):
    X, y = blobs(rng)
    layers = lambda: [fastbp.Dense(16, activation="relu", name="hidden"),  # noqa: E731
                      fastbp.Dense(3, activation="softmax", name="out")]
    comp = model_with(layers())
    ref = model_with(layers(), backend="numpy")
    h = comp.fit(X, y, epochs=2, batch_size=32, diagnostics=True).history
    r = ref.fit(X, y, epochs=2, batch_size=32, diagnostics=True).history
    keys = {"hidden/grad_norm", "hidden/weight_norm", "hidden/update_ratio",
            "hidden/dead_fraction", "out/grad_norm", "out/weight_norm", "out/update_ratio"}
    assert keys <= set(h)
    for key in keys:
        np.testing.assert_allclose(h[key], r[key], rtol=1e-3, atol=1e-6)
    assert np.linalg.norm(comp.get_weights()[0]) == pytest.approx(h["hidden/weight_norm"][-1],
                                                                   rel=1e-5)
    assert all(v > 0 for v in h["out/grad_norm"])
    assert 0 < h["hidden/update_ratio"][0] < 1


def test_dead_relu_units_are_counted(rng):
    X, y = blobs(rng)
    model = model_with([fastbp.Dense(10, activation="relu", name="hidden"),
                        fastbp.Dense(3, activation="softmax")],
                       optimizer=optimizers.SGD(1e-30))
    model.build(X.shape[1])
    W, b, W2, b2 = model.get_weights()
    b[:4] = -1e4  # four units can never fire
    model.set_weights([W, b, W2, b2])
    history = model.fit(X, y, epochs=1, diagnostics=True, verbose=0)
    assert history.history["hidden/dead_fraction"] == [pytest.approx(0.4)]
