"""Every public entry point rejects bad input with an error that names the argument, what was
expected and what was received; a failed fit leaves the model as it was."""

import numpy as np
import pytest

import fastbp
from fastbp import optimizers


@pytest.fixture
def data(rng):
    X = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    return X, y


@pytest.fixture
def model():
    m = fastbp.Sequential([fastbp.Dense(8, activation="relu"),
                           fastbp.Dense(3, activation="softmax")], seed=0)
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.fixture
def fitted(model, data):
    model.fit(*data, verbose=0)
    return model


def unchanged(model, before):
    if before is None:
        assert not model.built
    else:
        for a, b in zip(model.get_weights(), before):
            np.testing.assert_array_equal(a, b)


BAD_X = [
    (np.ones(40), ValueError, r"X must be a 2-D array.*shape \(40,\)"),
    (np.ones((40, 4, 1)), ValueError, r"2-D array.*\(40, 4, 1\)"),
    (np.ones((0, 4)), ValueError, r"at least one sample"),
    (np.ones((40, 0)), ValueError, r"at least one feature"),
    (np.array([["a"] * 4] * 40), TypeError, r"X must contain only numbers.*<U1"),
    (np.full((40, 4), np.nan), ValueError, r"finite.*nan at index \(0, 0\)"),
    (np.full((40, 4), np.inf), ValueError, r"finite.*inf"),
    (np.full((40, 4), 1e300), ValueError, r"finite.*float32"),
    (np.full((40, 4), 1 + 1j), TypeError, r"complex"),
    ([[1, 2], [3]], ValueError, r"rectangular"),
    (None, TypeError, r"X must be an array-like.*None"),
]


@pytest.mark.parametrize("X, error, message", BAD_X)
def test_fit_rejects_bad_X(model, data, X, error, message):
    with pytest.raises(error, match=message):
        model.fit(X, data[1] if not hasattr(X, "__len__") or len(X) == 40 else data[1][:len(X)], verbose=0)
    unchanged(model, None)


BAD_Y = [
    (np.arange(39) % 3, ValueError, r"same number of samples; received 40 and 39"),
    (np.full(40, 3), ValueError, r"out of range: expected labels among the model's classes "
                                 r"\[0, 1, 2\]; received \[3\]"),
    (np.full(40, -1), ValueError, r"out of range.*received \[-1\]"),
    (np.full(40, 0.5), ValueError, r"out of range.*received \[0.5\]"),
    (np.full(40, np.nan), ValueError, r"y must contain only finite numbers"),
    (np.array(["cat"] * 40), ValueError, r"out of range.*received \['cat'\]"),
    (np.array([{"a": 1}] * 40), TypeError, r"y must contain only numbers"),
    (np.zeros((40, 4)), ValueError, r"one-hot rows of shape \(n_samples, 3\); received shape "
                                    r"\(40, 4\)"),
    (np.zeros((40, 3, 1)), ValueError, r"1-D or 2-D"),
    (None, TypeError, r"y must be an array-like of targets; received None"),
]


@pytest.mark.parametrize("y, error, message", BAD_Y)
def test_fit_rejects_bad_y(fitted, data, y, error, message):
    before = fitted.get_weights()
    with pytest.raises(error, match=message):
        fitted.fit(data[0], y, verbose=0)
    unchanged(fitted, before)


def test_regression_and_binary_targets_are_checked(rng):
    X = rng.standard_normal((10, 2))
    reg = fastbp.Sequential([fastbp.Dense(2)])
    reg.compile(loss="mse")
    with pytest.raises(ValueError, match=r"y must have shape \(n_samples, 2\).*\(10,\)"):
        reg.fit(X, np.zeros(10))
    with pytest.raises(ValueError, match=r"2 column\(s\).*\(10, 3\)"):
        reg.fit(X, np.zeros((10, 3)))
    binary = fastbp.Sequential([fastbp.Dense(1, activation="sigmoid")])
    binary.compile(loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"3 distinct classes, but the output layer has room "
                                         r"for 2.*\[0, 1, 2\]"):
        binary.fit(X, np.arange(10) % 3)
    multilabel = fastbp.Sequential([fastbp.Dense(2, activation="sigmoid")])
    multilabel.compile(loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"0/1 labels.*\[0.0, 2.0\]"):
        multilabel.fit(X, np.stack([np.arange(10) % 3] * 2, axis=1))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"epochs": 0}, ValueError, r"epochs must be an integer >= 1; received epochs=0"),
    ({"epochs": 2.5}, TypeError, r"epochs must be an integer; received 2.5"),
    ({"batch_size": 0}, ValueError, r"batch_size must be an integer >= 1; received batch_size=0"),
    ({"batch_size": "64"}, TypeError, r"batch_size must be an integer"),
    ({"verbose": 5}, ValueError, r"verbose must be an integer in \[0, 2\]"),
    ({"shuffle": "yes"}, TypeError, r"shuffle must be True or False"),
    ({"validation_data": ([1, 2],)}, ValueError, r"validation_data must be a tuple"),
    ({"sample_weight": np.ones(3)}, ValueError, r"one weight per sample \(40\).*\(3,\)"),
    ({"sample_weight": -np.ones(40)}, ValueError, r"non-negative"),
    ({"sample_weight": np.zeros(40)}, ValueError, r"positive sum"),
])
def test_fit_rejects_bad_arguments(model, data, kwargs, error, message):
    with pytest.raises(error, match=message):
        model.fit(*data, **{"verbose": 0, **kwargs})
    unchanged(model, None)


def test_validation_data_is_checked(fitted, data):
    X, y = data
    before = fitted.get_weights()
    with pytest.raises(ValueError, match=r"validation_data\[0\] has 3 features, but the model "
                                         r"expects 4"):
        fitted.fit(X, y, validation_data=(X[:, :3], y), verbose=0)
    with pytest.raises(ValueError, match=r"validation_data\[1\] holds class labels out of range"):
        fitted.fit(X, y, validation_data=(X, y + 5), verbose=0)
    unchanged(fitted, before)


def test_predict_checks(fitted, data):
    X, _ = data
    model = fastbp.Sequential([fastbp.Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    with pytest.raises(fastbp.NotFittedError, match=r"not fitted yet; call fit\(\) before "
                                                    r"predict\(\)"):
        model.predict(X)
    with pytest.raises(fastbp.NotFittedError):
        model.predict_proba(X)
    with pytest.raises(fastbp.NotFittedError):
        model.evaluate(X, data[1])
    with pytest.raises(ValueError, match=r"X has 5 features, but the model expects 4"):
        fitted.predict(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"2-D"):
        fitted.predict(np.ones(4))
    with pytest.raises(ValueError, match=r"finite"):
        fitted.predict(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1"):
        fitted.predict(X, batch_size=0)


def test_not_compiled_and_not_built():
    model = fastbp.Sequential([fastbp.Dense(2)])
    with pytest.raises(RuntimeError, match=r"call compile\(optimizer=\.\.\., loss=\.\.\.\) "
                                           r"before fit"):
        model.fit(np.ones((2, 2)), np.ones((2, 2)), verbose=0)
    with pytest.raises(fastbp.NotFittedError, match="get_weights"):
        model.get_weights()
    with pytest.raises(ValueError, match="no layers"):
        fastbp.Sequential().build(3)


@pytest.mark.parametrize("make, error, message", [
    (lambda: fastbp.Dense(0), ValueError, r"units must be an integer >= 1; received units=0"),
    (lambda: fastbp.Dense(2.0), TypeError, r"units must be an integer; received 2.0"),
    (lambda: fastbp.Dense(2, activation="swish"), ValueError,
     r"Unknown activation 'swish'. Expected one of \['elu', 'exponential', 'leaky_relu'"),
    (lambda: fastbp.Dense(2, activation=3), TypeError, r"activation must be a string"),
    (lambda: fastbp.Dense(2, activation="relu", alpha=0.1), ValueError,
     r"alpha applies only to"),
    (lambda: fastbp.Dense(2, activation="elu", alpha=-1), ValueError, r"alpha must be"),
    (lambda: fastbp.Dense(2, l2=-1), ValueError, r"l2 must be a finite number >= 0.0; "
                                                 r"received l2=-1.0"),
    (lambda: fastbp.Dense(2, kernel_initializer="orthogonal"), ValueError,
     r"Unknown initializer 'orthogonal'"),
    (lambda: fastbp.Sequential([fastbp.Dense(2)], seed=-1), ValueError, r"seed must be"),
    (lambda: fastbp.Sequential(["dense"]), TypeError, r"fastbp layers such as fastbp.Dense; "
                                                      r"received 'dense'"),
    (lambda: fastbp.Sequential(fastbp.Dense(2)), TypeError, r"layers must be a list"),
    (lambda: optimizers.Adam(learning_rate=0), ValueError,
     r"learning_rate must be a finite number > 0.0; received learning_rate=0.0"),
    (lambda: optimizers.SGD(learning_rate=-1), ValueError, r"learning_rate must be"),
    (lambda: optimizers.SGD(learning_rate=float("nan")), ValueError, r"learning_rate"),
    (lambda: optimizers.SGD(momentum=1.0), ValueError, r"momentum must be a finite number in "
                                                       r"\[0.0, 1.0\)"),
    (lambda: optimizers.SGD(nesterov="yes"), TypeError, r"nesterov must be True or False"),
    (lambda: optimizers.Adam(beta_1=1.5), ValueError, r"beta_1"),
    (lambda: optimizers.Adam(epsilon=0), ValueError, r"epsilon"),
    (lambda: optimizers.Adam(global_clipnorm=0), ValueError, r"global_clipnorm"),
    (lambda: optimizers.Adam(clipvalue=-1), ValueError, r"clipvalue"),
    (lambda: optimizers.AdamW(weight_decay=-0.1), ValueError, r"weight_decay"),
    (lambda: optimizers.RMSprop(rho=1.0), ValueError, r"rho"),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-1), ValueError,
     r"initial_accumulator_value"),
    (lambda: fastbp.losses.Huber(delta=0), ValueError, r"delta must be"),
])
def test_constructors_reject_bad_values(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"loss": None}, ValueError, r"compile needs a loss"),
    ({"loss": "hinge"}, ValueError, r"Unknown loss 'hinge'. Expected one of"),
    ({"loss": 3}, TypeError, r"loss must be a loss name"),
    ({"loss": "mse", "optimizer": "adadelta"}, ValueError, r"Unknown optimizer 'adadelta'"),
    ({"loss": "mse", "optimizer": 0.1}, TypeError, r"optimizer must be a name"),
    ({"loss": "mse", "metrics": "accuracy"}, TypeError, r"metrics must be a list"),
    ({"loss": "mse", "metrics": ["auc"]}, ValueError, r"Unknown metric 'auc'"),
    ({"loss": "mse", "backend": "cuda"}, ValueError, r"Unknown backend 'cuda'. Expected one "
                                                     r"of \['numba', 'numpy'\]"),
])
def test_compile_rejects_bad_values(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        model.compile(**kwargs)


def test_names_are_case_insensitive_and_aliased(model):
    model.compile(optimizer="Adam", loss="MSE", metrics=["acc", "mean_absolute_error"])
    assert model.loss.name == "squared_error" and model.metrics == ["accuracy", "mae"]


def test_sparse_labels_with_dense_metric_is_rejected(model, data):
    model.compile(loss="categorical_crossentropy", metrics=["mae"])
    with pytest.raises(ValueError, match="metric 'mae' needs dense targets"):
        model.fit(*data, verbose=0)


def test_set_weights_checks(fitted):
    weights = fitted.get_weights()
    with pytest.raises(ValueError, match=r"list of 4 arrays"):
        fitted.set_weights(weights[:3])
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape \(4, 8\); received "
                                         r"shape \(8, 4\)"):
        fitted.set_weights([weights[0].T] + weights[1:])
    with pytest.raises(ValueError, match=r"weights\[1\] must hold finite numbers"):
        fitted.set_weights([weights[0], np.full(8, np.nan)] + weights[2:])
    with pytest.raises(ValueError, match="the model is built for 4 features"):
        fitted.build(5)
    with pytest.raises(ValueError, match="already built"):
        fitted.add(fastbp.Dense(3))


def test_non_finite_loss_stops_with_epoch_and_keeps_last_finite_weights(rng):
    X = (rng.standard_normal((64, 3)) * 100).astype(np.float32)
    y = (X.sum(axis=1) * 1e3).astype(np.float32)
    model = fastbp.Sequential([fastbp.Dense(32, activation="relu"), fastbp.Dense(1)], seed=0)
    model.compile(optimizer=optimizers.SGD(learning_rate=1e-9), loss="mse")
    model.fit(X, y, epochs=2, batch_size=8, verbose=0)  # small steps: finite
    last_finite = model.get_weights()
    iterations = model.optimizer.iterations
    model.optimizer.learning_rate = 1.0  # now it diverges
    with pytest.raises(fastbp.NonFiniteLossError,
                       match=r"non-finite at batch \d+ of epoch 1/50; the model keeps the "
                             r"weights it had at the start of that epoch"):
        model.fit(X, y, epochs=50, batch_size=8, verbose=0)
    unchanged(model, last_finite)
    assert model.optimizer.iterations == iterations
    assert np.isfinite(model.optimizer.state).all()
    assert model.history.epoch == []
    model.predict(X)  # still usable


def test_divergence_after_some_epochs_keeps_the_weights_of_the_last_finished_epoch():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = X.sum(axis=1).astype(np.float32)

    def make():
        m = fastbp.Sequential([fastbp.Dense(32, activation="relu"), fastbp.Dense(1)], seed=0)
        m.compile(optimizer=optimizers.SGD(learning_rate=0.2, momentum=0.9), loss="mse")
        return m

    model = make()
    with pytest.raises(fastbp.NonFiniteLossError, match=r"epoch (\d+)/50") as info:
        model.fit(X, y, epochs=50, batch_size=8, verbose=0)
    finished = len(model.history.epoch)
    assert finished >= 1 and f"epoch {finished + 1}/50" in str(info.value)
    twin = make()  # same seed, same batches: stop after the epochs that finished
    twin.fit(X, y, epochs=finished, batch_size=8, verbose=0)
    unchanged(model, twin.get_weights())


def model_state(model):
    """Everything a fit may change, as comparable values."""
    import pickle
    return pickle.dumps((model.params, model.aux, model._rng.bit_generator.state,
                         model.classes_, model.history, model.optimizer.state,
                         model.optimizer.iterations, model._dropout_seed))


@pytest.mark.parametrize("bad_fit", [
    lambda m, X, y: m.fit(X, y, validation_split=0.999, verbose=0),
    lambda m, X, y: m.fit(X, y[:-1], verbose=0),
    lambda m, X, y: m.fit(np.where(X > 1, np.nan, X), y, verbose=0),
    lambda m, X, y: m.fit(X, y, sample_weight=np.zeros(len(y)), verbose=0),
    lambda m, X, y: m.fit(X, y, class_weight={"no such class": 1.0}, verbose=0),
    lambda m, X, y: m.fit(X, y, callbacks=[print], verbose=0),
    lambda m, X, y: m.fit(X, y, validation_data=(X[:, :2], y), verbose=0),
    lambda m, X, y: m.fit(X, np.full(len(y), 7), verbose=0),  # a class the model does not have
])
def test_a_failed_fit_changes_nothing(bad_fit):
    """A fit that fails on its arguments leaves the model exactly as it was: weights,
    generator (before, validation_split=0.999 drew the split, then failed), classes, history,
    optimizer."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    model = fastbp.Sequential([fastbp.Dense(5, activation="relu"),
                               fastbp.Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(X, y, epochs=1, verbose=0)
    before = model_state(model)
    with pytest.raises((ValueError, TypeError)):
        bad_fit(model, X, y)
    assert model_state(model) == before


@pytest.mark.parametrize("Estimator", [fastbp.MLPClassifier, fastbp.MLPRegressor])
def test_a_failed_refit_of_an_estimator_changes_nothing(Estimator):
    """A refit that fails after the labels were read (new classes, then a bad sample weight)
    leaves the fitted estimator as it was: predictions in the old labels from the old
    weights. (Before, ``classes_`` took the new labels.)"""
    import pickle

    def state(est):  # (a layout's cache of tables for predict is no state)
        return {k: pickle.dumps(v) for k, v in est.__dict__.items() if k != "_layout"}
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    y = rng.integers(0, 3, 80)
    est = Estimator(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    with pytest.warns(Warning):
        est.fit(X, y)
    before, layout = state(est), est._layout
    prediction = est.predict(X)
    with pytest.raises(ValueError):
        est.fit(X, y + 10, sample_weight=np.ones(79))
    with pytest.raises(ValueError):
        est.set_params(hidden_layer_sizes=(2.5,)).fit(X, y + 10)
    est.set_params(hidden_layer_sizes=(8,))
    assert state(est) == before and est._layout is layout
    np.testing.assert_array_equal(est.predict(X), prediction)


@pytest.mark.parametrize("sizes, message", [((2.5,), "hidden_layer_sizes must hold integers"),
                                            ((10 ** 12,), "at most"),
                                            ((0,), "must be > 0")])
def test_hidden_layer_sizes_are_checked_by_name(sizes, message):
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError, match=message):
        fastbp.MLPClassifier(hidden_layer_sizes=sizes).fit(X, np.arange(20) % 2)


def test_no_hidden_layer_fits_as_scikit_learn_does():
    """``hidden_layer_sizes=()`` is a linear (logistic) model, as in scikit-learn."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = fastbp.MLPClassifier(hidden_layer_sizes=(), max_iter=1000, random_state=0).fit(X, y)
    assert clf.n_layers_ == 2 and [c.shape for c in clf.coefs_] == [(30, 1)]
    assert clf.score(X, y) > 0.95


def interrupted_at(step, run):
    """Run ``run()`` with a KeyboardInterrupt raised at the ``step``-th line executed in
    fastbp's Python code (None: not interrupted); returns the number of lines executed. Lines
    run while fastbp holds SIGINT back (``_threads.interrupts_deferred``) are skipped: Ctrl-C
    cannot land there."""
    import sys
    from fastbp import _threads
    count = [0]

    def trace(frame, event, arg):
        if not frame.f_code.co_filename.startswith(FASTBP_DIR):
            return None
        # (not in a finaliser: Python ignores what is raised there, printing it)
        if event == "line" and not _threads.deferring and frame.f_code.co_name != "__del__":
            count[0] += 1
            if count[0] == step:
                raise KeyboardInterrupt
        return trace
    sys.settrace(trace)
    try:
        run()
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    return count[0]


FASTBP_DIR = str(__import__("pathlib").Path(fastbp.__file__).resolve().parent)


@pytest.mark.parametrize("kind", ["sequential", "estimator"])
def test_an_interrupt_anywhere_in_a_fit_leaves_a_usable_model(kind, tmp_path):
    """Ctrl-C at each of 60 points spread over a fit's Python code (validation, building,
    between epochs, in the scheduler's bookkeeping, in callbacks): the model still predicts,
    saves or pickles, and fits again."""
    import pickle
    import warnings
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5)).astype(np.float32)
    y = (X[:, 0] > X[:, 1]).astype(int)

    def make():
        if kind == "estimator":
            return fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                                        batch_size=32)
        model = fastbp.Sequential([fastbp.Dense(8, activation="relu"),
                                   fastbp.Dense(2, activation="softmax")], seed=0)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "estimator":
                model.fit(X, y)
            else:
                model.fit(X, y, epochs=3, batch_size=32, validation_split=0.2, verbose=0)

    fitted = make()
    fit(fitted)
    total = interrupted_at(None, lambda: fit(fitted))
    assert total > 100
    for step in np.unique(np.linspace(1, total, 60).astype(int)):
        for model in (make(), fitted):  # a first fit, and a refit
            interrupted_at(step, lambda: fit(model))
            if kind == "estimator" and not hasattr(model, "coefs_"):
                continue  # interrupted before anything was fitted: nothing to use yet
            if kind == "sequential" and not model.built:
                continue
            assert model.predict(X).shape[0] == len(X)
            pickle.loads(pickle.dumps(model))
            if kind == "sequential":
                model.save(tmp_path / "m.npz")
                fastbp.load(tmp_path / "m.npz")
            fit(model)
