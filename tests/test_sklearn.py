"""fastbp.MLPClassifier / MLPRegressor: drop-ins for scikit-learn's, checked against them."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data, parametrize_with_checks,
)

import fastbp
from fastbp import MLPClassifier, MLPRegressor

FLOAT32_REASON = (
    "fastbp trains in float32. Fitting with integer weights and fitting on repeated rows "
    "agree to float32 precision (relative 1e-4 after training, tested in "
    "test_sample_weight_equivalence_to_float32_precision), not to the check's rtol=1e-7; "
    "scikit-learn runs this check on its own MLP only with solver='lbfgs' / 'sgd' either.")


def expected_failures(estimator):
    return {"check_sample_weight_equivalence_on_dense_data": FLOAT32_REASON,
            "check_sample_weight_equivalence_on_sparse_data": FLOAT32_REASON}


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_a_rows_prediction_has_the_same_bits_in_any_batch(Estimator):
    """Batch-invariant predictions by construction (``kernels.dense.product_by_rows``): a row
    predicted alone, in any slice, at any chunk boundary or on any thread count gives the
    same bits as in the whole batch, dense and sparse."""
    import scipy.sparse as sp
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 6))
    y = rng.integers(0, 3, 3000) if Estimator is MLPClassifier else rng.standard_normal(3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = Estimator(hidden_layer_sizes=(32, 16), max_iter=5, random_state=0).fit(X, y)
    method = est.predict_proba if Estimator is MLPClassifier else est.predict
    whole = method(X)
    for rows in (slice(0, 1), slice(7, 8), slice(5, 37), slice(100, 3000, 3), slice(1, 2999)):
        np.testing.assert_array_equal(method(X[rows]), whole[rows])
    np.testing.assert_array_equal(method(np.asarray(X, np.float32)).astype(whole.dtype),
                                  whole)
    with _one_thread():
        np.testing.assert_array_equal(method(X), whole)
    sparse = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0.0))
    whole = method(sparse)
    for rows in (slice(0, 1), slice(10, 900, 7)):
        np.testing.assert_array_equal(method(sparse[rows]), whole[rows])


def _one_thread():
    import contextlib

    @contextlib.contextmanager
    def one():
        before = fastbp.get_num_threads()
        fastbp.set_num_threads(1)
        try:
            yield
        finally:
            fastbp.set_num_threads(before)
    return one()


@parametrize_with_checks([MLPClassifier(), MLPRegressor()],
                         expected_failed_checks=expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("make", [lambda: MLPClassifier(solver="lbfgs", random_state=0),
                                  lambda: MLPRegressor(solver="sgd", tol=1e-2, random_state=42)])
def test_sample_weight_equivalence_to_float32_precision(make):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((15, 4))
    y = rng.integers(0, 3, 15) if isinstance(make(), MLPClassifier) else rng.standard_normal(15)
    w = rng.integers(0, 3, 15)
    repeated = np.repeat(np.arange(15), w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = make().fit(X, y, sample_weight=w)
        b = make().fit(X[repeated], y[repeated])
    method = "predict_proba" if hasattr(a, "predict_proba") else "predict"
    np.testing.assert_allclose(getattr(a, method)(X), getattr(b, method)(X), rtol=2e-3,
                               atol=1e-5)


# -- same settings, same result ---------------------------------------------------------------
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


SOLVERS = [("sgd", dict(momentum=0.9, nesterovs_momentum=False)),
           ("sgd", dict(momentum=0.9, nesterovs_momentum=True)),
           ("sgd", dict(momentum=0.0, learning_rate="invscaling", power_t=0.25)),
           ("adam", {})]


@pytest.mark.parametrize("solver, extra", SOLVERS, ids=["momentum", "nesterov", "invscaling",
                                                        "adam"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_classifier_follows_scikit_learn(solver, extra, shuffle):
    X, y = digits()
    settings = dict(hidden_layer_sizes=(32, 16), activation="tanh", solver=solver, max_iter=5, random_state=0,
                    shuffle=shuffle, learning_rate_init=0.01, batch_size=64, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sk.MLPClassifier(**settings).fit(X, y)
        comp = MLPClassifier(**settings).fit(X, y)
    for a, b in zip(comp.coefs_ + comp.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5)
    np.testing.assert_allclose(comp.loss_curve_, ref.loss_curve_, rtol=1e-4)
    assert comp.n_iter_ == ref.n_iter_ == 5 and comp.t_ == ref.t_
    np.testing.assert_array_equal(comp.predict(X), ref.predict(X))


@pytest.mark.parametrize("solver, extra", SOLVERS[1:2] + SOLVERS[3:], ids=["nesterov", "adam"])
@pytest.mark.parametrize("outputs", [1, 3])
def test_regressor_follows_scikit_learn(solver, extra, outputs):
    X, y = make_regression(n_samples=300, n_features=8, n_targets=outputs, noise=5, random_state=0)
    X = X.astype(np.float32)
    y = (y / y.std()).astype(np.float32)
    w = np.random.default_rng(0).uniform(0.5, 2, 300)
    settings = dict(hidden_layer_sizes=(20,), activation="tanh", solver=solver, max_iter=5, random_state=1,
                    learning_rate_init=0.01, alpha=0.01, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sk.MLPRegressor(**settings).fit(X, y, sample_weight=w)
        comp = MLPRegressor(**settings).fit(X, y, sample_weight=w)
    for a, b in zip(comp.coefs_ + comp.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5)
    np.testing.assert_allclose(comp.loss_curve_, ref.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(comp.predict(X), ref.predict(X), rtol=1e-3, atol=1e-4)


def test_poisson_multilabel_early_stopping_adaptive_follow_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)).astype(np.float32)
    counts = rng.poisson(np.exp(0.3 * X[:, 0])).astype(np.float32)
    labels = (X[:, :3] > 0).astype(int)
    cases = [
        (MLPRegressor, dict(loss="poisson", hidden_layer_sizes=(8,)), counts),
        (MLPClassifier, dict(hidden_layer_sizes=(8,)), labels),
        (MLPClassifier, dict(hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=3),
         labels[:, 0]),
        (MLPClassifier, dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
                             n_iter_no_change=2, tol=0.1), labels[:, 0]),
    ]
    for cls, extra, y in cases:
        settings = dict(max_iter=12, random_state=0, learning_rate_init=0.01, **extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = getattr(sk, cls.__name__)(**settings).fit(X, y)
            comp = cls(**settings).fit(X, y)
        assert comp.n_iter_ == ref.n_iter_, extra
        np.testing.assert_allclose(comp.loss_curve_, ref.loss_curve_, rtol=1e-4)
        for a, b in zip(comp.coefs_, ref.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5)
        assert comp.out_activation_ == ref.out_activation_
        if extra.get("early_stopping"):
            np.testing.assert_allclose(comp.validation_scores_, ref.validation_scores_)
            assert comp.best_validation_score_ == ref.best_validation_score_


def test_lbfgs_and_partial_fit():
    X, y = digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sk.MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=50,
                               random_state=0).fit(X, y)
        comp = MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=50,
                             random_state=0).fit(X, y)
    assert comp.n_iter_ == 50 and comp.loss_ == pytest.approx(ref.loss_, rel=0.2)
    assert abs(comp.score(X, y) - ref.score(X, y)) < 0.02
    assert not hasattr(comp, "partial_fit")
    ref = sk.MLPClassifier(hidden_layer_sizes=(16,), random_state=0, shuffle=False)
    comp = MLPClassifier(hidden_layer_sizes=(16,), random_state=0, shuffle=False)
    for _ in range(3):
        ref.partial_fit(X[:500], y[:500], classes=np.arange(10))
        comp.partial_fit(X[:500], y[:500], classes=np.arange(10))
    for a, b in zip(comp.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5)
    assert comp.n_iter_ == ref.n_iter_ == 1 and comp.t_ == ref.t_ == 1500


def test_warm_start_from_given_weights():
    X, y = digits()
    ref = sk.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=5)
    comp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=9, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X, y)
        comp.fit(X, y)
        comp.coefs_ = [c.astype(np.float32) for c in ref.coefs_]  # set through warm_start
        comp.intercepts_ = [b.astype(np.float32) for b in ref.intercepts_]
        ref.set_params(warm_start=True, max_iter=2, shuffle=False).fit(X, y)
        comp.set_params(max_iter=2, shuffle=False).fit(X, y)
    for a, b in zip(comp.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5)
    with pytest.raises(ValueError, match="must keep the shapes"):
        comp.coefs_ = [np.zeros((2, 2))] * 2
        comp.predict(X)


@pytest.mark.parametrize("k", [2, 3])
def test_any_labels_train_the_same_model(k):
    """Class labels reach the kernels as indices into classes_, worked out without
    LabelBinarizer for 1-D targets: any kind of label gives the same model, and the labels a
    later call may not have (unseen ones; under warm_start, missing ones) give
    scikit-learn's errors."""
    X, y = digits()
    X, y = X[:300], y[:300] % k
    kinds = [y, y - 5, y.astype(np.float64) * 2, np.array(["ant", "bee", "cat"])[y],
             np.where(y == 0, -5, y)]  # the last: classes [-5, 1, 2], ints but not 0..k-1
    fits = []
    for labels in kinds:
        model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(model.fit(X, labels))
        np.testing.assert_array_equal(model.predict(X), model.classes_[
            np.argmax(model.predict_proba(X), axis=1)])
        assert set(model.predict(X)) <= set(labels)
    for model in fits[1:]:
        for a, b in zip(model.coefs_ + model.intercepts_, fits[0].coefs_ + fits[0].intercepts_):
            np.testing.assert_array_equal(a, b)
    for labels in kinds:
        model = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
        model.partial_fit(X, labels, classes=np.unique(labels))
        model.partial_fit(X[y == 1], labels[y == 1])  # a subset of the classes is fine
        unseen = labels.copy()
        unseen[0] = 0 if labels.dtype.kind in "iu" and 0 not in labels else unseen[1]
        if unseen[0] != labels[1]:
            with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
                model.partial_fit(X, unseen)
    for cls in (sk.MLPClassifier, MLPClassifier):
        model = cls(hidden_layer_sizes=(8,), max_iter=1, warm_start=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
            with pytest.raises(ValueError, match="warm_start can only be used where `y` has "
                                                 "the same classes"):
                model.fit(X, np.where(y == 1, 0, y))


def test_predictions_take_the_short_way_only_for_arrays_that_pass_scikit_learns_checks():
    """predict skips validate_data for finite float arrays of the fitted width (estimator
    fitted without feature names) and builds labels without LabelBinarizer: the same
    predictions, and every other X still gets scikit-learn's errors and warnings."""
    pd = pytest.importorskip("pandas")
    X, y = digits()
    for labels in (y, y % 2, np.array(["odd", "even"])[y % 2]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
            model.fit(X[:300], labels[:300])
        proba = model.predict_proba(X)
        expected = model.classes_[proba.argmax(axis=1)]
        np.testing.assert_array_equal(model.predict(X), expected)
        np.testing.assert_array_equal(model._label_binarizer.inverse_transform(
            proba if proba.shape[1] > 2 else proba[:, 1]), expected)
        for same in (X.astype(np.float64), np.asfortranarray(X), X.tolist()):
            # (float64 input gives float64 probabilities: the same float32 computation)
            np.testing.assert_array_equal(model.predict_proba(same).astype(proba.dtype), proba)
        assert model.predict(X[5:6])[0] == expected[5]
        assert model.score(X, labels) == np.mean(expected == labels)
    for value, message in ((np.nan, "Input X contains NaN"), (np.inf, "Input X contains inf")):
        bad = X[:3].copy()
        bad[1, 2] = value
        with pytest.raises(ValueError, match=message):
            model.predict(bad)
    with pytest.raises(ValueError, match="0 sample"):
        model.predict(X[:0])
    with pytest.raises(ValueError, match="X has 10 features"):
        model.predict(X[:, :10])
    with pytest.raises(ValueError, match="Expected 2D array"):
        model.predict(X[0])
    named = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        named.fit(pd.DataFrame(X[:300], columns=[f"f{i}" for i in range(64)]), y[:300])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        named.predict(X[:3])


# -- in scikit-learn's tools ------------------------------------------------------------------
def test_pipeline_grid_search_cross_val_clone_pickle():
    pd = pytest.importorskip("pandas")
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    frame["colour"] = np.where(y > 0, 1.0, -1.0) * 0 + np.arange(300) % 3
    pre = ColumnTransformer([("scale", StandardScaler(), [f"f{i}" for i in range(6)])],
                            remainder="passthrough")
    pipe = make_pipeline(pre, MLPClassifier(max_iter=100, learning_rate_init=0.02,
                                            random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(8,), (16,)],
                                     "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3, n_jobs=2)
        search.fit(frame, y)
        scores = cross_val_score(MLPClassifier(max_iter=100, learning_rate_init=0.02,
                                               random_state=0), X, y, cv=3, n_jobs=2)
    assert search.best_score_ > 0.8 and scores.mean() > 0.8
    model = MLPClassifier(max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(frame[[f"f{i}" for i in range(6)]], y)
    assert list(model.feature_names_in_) == [f"f{i}" for i in range(6)]
    again = pickle.loads(pickle.dumps(model))
    features = frame[[f"f{i}" for i in range(6)]]
    np.testing.assert_array_equal(again.predict_proba(features), model.predict_proba(features))
    assert clone(model).get_params() == model.get_params()


def test_errors_are_scikit_learns():
    X, y = digits()
    model = MLPClassifier(max_iter=2)
    with pytest.raises(NotFittedError):
        model.predict(X)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.fit(bad, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    with pytest.raises(ValueError, match="X has 10 features, but MLPClassifier is expecting 64"):
        model.predict(X[:, :10])
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(0,)).fit(X, y)
    with pytest.raises(ValueError, match="The 'solver' parameter of MLPClassifier must be"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="negative which is not allowed for Poisson"):
        MLPRegressor(loss="poisson").fit(X, -np.ones(len(X)))
    with pytest.raises(ValueError, match="dropout must be a rate"):
        MLPClassifier(dropout=[0.1, 0.2]).fit(X, y)
    with pytest.raises(ValueError, match="dropout needs a stochastic solver"):
        MLPClassifier(dropout=0.1, solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="one of them per hidden layer"):
        MLPClassifier(hidden_layer_sizes=(4, 4), activation=["relu"]).fit(X, y)


# -- what scikit-learn's MLP lacks --------------------------------------------------------------
def test_extras():
    X, y = digits()
    kwargs = dict(hidden_layer_sizes=(32, 16), max_iter=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPClassifier(**kwargs).fit(X, y)
        mixed = MLPClassifier(activation=["tanh", "leaky_relu"], dropout=[0.2, 0.0],
                              solver="adamw", weight_decay=0.01, clip_norm=1.0, clip_value=0.5,
                              n_threads=1, diagnostics=True, **kwargs).fit(X, y)
        balanced = MLPClassifier(class_weight="balanced", **kwargs).fit(X[:600], y[:600])
        weighted = MLPClassifier(**kwargs).fit(
            X[:600], y[:600], sample_weight=600 / (10 * np.bincount(y[:600])[y[:600]]))
    assert mixed.score(X, y) > 0.8 and plain.score(X, y) > 0.8
    assert set(mixed.diagnostics_) >= {"hidden_0/grad_norm", "hidden_1/update_ratio",
                                       "output/weight_norm"}
    assert len(mixed.diagnostics_["output/grad_norm"]) == mixed.n_iter_
    for a, b in zip(balanced.coefs_, weighted.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_much_faster_per_epoch_than_scikit_learn_is_measured_in_bench():
    """Speed is a benchmark's business (bench/bench_sklearn.py); here only that it runs."""
    X, y = digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert MLPClassifier(max_iter=1).fit(X, y).n_iter_ == 1


def test_top_level_names():
    assert fastbp.MLPClassifier is MLPClassifier and fastbp.MLPRegressor is MLPRegressor


def test_partial_fit_calls_share_one_shard_scheduler(monkeypatch):
    """Each partial_fit is one epoch; the timings that choose parallel or serial shards carry
    over from call to call (a fresh fit starts again)."""
    from fastbp import scheduler
    monkeypatch.setattr(scheduler, "MIN_PARALLEL_FLOPS", 0)
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(8,), batch_size=64, random_state=0)
    for _ in range(3):
        clf.partial_fit(X, y, classes=[0, 1])
    assert clf._scheduler.epoch == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.set_params(max_iter=2).fit(X, y)
    assert clf._scheduler.epoch == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_come_back_in_the_inputs_float_dtype(dtype):
    """As scikit-learn's estimators: float32 input gives float32 predictions and
    probabilities, float64 (and lists, ints) float64; the values are the same float32
    computation either way."""
    X, y = digits()
    X = X[:200].astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y[:200])
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y[:200])
    assert clf.predict_proba(X).dtype == dtype and reg.predict(X).dtype == dtype
    assert clf.predict_proba(X.tolist()).dtype == np.float64
    np.testing.assert_array_equal(reg.predict(X.astype(np.float32)).astype(np.float64),
                                  reg.predict(X.astype(np.float64)))


def test_predict_log_proba_of_an_underflowed_probability_is_minus_inf_without_warning():
    X = np.array([[0.0], [1.0]] * 20)
    y = np.array([0, 1] * 20)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    clf.coefs_[-1] = np.full_like(clf.coefs_[-1], 500.0)  # probabilities of exactly 0, 1
    log_proba = clf.predict_log_proba(X)  # the suite turns warnings into errors
    assert np.isneginf(log_proba).any() and not np.isnan(log_proba).any()


def test_partial_fit_from_public_fitted_attributes_alone():
    """scikit-learn's own worked example (test_mlp.py::test_fit) sets ``coefs_``,
    ``intercepts_`` and a few counters by hand and calls ``partial_fit``: one SGD step from
    exactly those weights (the expected values are scikit-learn's)."""
    X = np.array([[0.6, 0.8, 0.7]])
    mlp = MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic",
                        random_state=1, max_iter=1, hidden_layer_sizes=2, momentum=0)
    mlp.coefs_ = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]]), np.array([[0.1], [0.2]])]
    mlp.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
    mlp.n_outputs_, mlp.n_features_in_, mlp.n_iter_, mlp.n_layers_ = 1, 3, 0, 3
    mlp.out_activation_, mlp.t_, mlp.best_loss_, mlp.loss_curve_ = "logistic", 0, np.inf, []
    mlp._no_improvement_count = 0
    mlp.partial_fit(X, np.array([0]), classes=[0, 1])
    np.testing.assert_allclose(mlp.coefs_[0], [[0.098, 0.195756], [0.2956664, 0.096008],
                                               [0.4939998, -0.002244]], atol=1e-3)
    np.testing.assert_allclose(mlp.coefs_[1], [[0.04706], [0.154089]], atol=1e-3)
    np.testing.assert_allclose(mlp.intercepts_[0], [0.098333, 0.09626], atol=1e-3)
    np.testing.assert_allclose(mlp.intercepts_[1], [0.9235], atol=1e-3)
    assert mlp.predict_proba(X)[0, 1] == pytest.approx(0.739, abs=1e-3)


def test_a_diverging_fit_with_early_stopping_finishes_as_scikit_learns():
    """scikit-learn's test for its issue #29504: no error; the epochs after the divergence
    score NaN, the best weights are kept; and the same counts as scikit-learn's own."""
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor
    X, y = load_iris(return_X_y=True)
    settings = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", alpha=0.0001,
                    learning_rate="constant", learning_rate_init=1, shuffle=True, max_iter=20,
                    early_stopping=True, n_iter_no_change=10, random_state=0)
    fitted = []
    for Estimator in (MLPRegressor, SkMLPRegressor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted.append(Estimator(**settings).fit(X, y))
    ours, theirs = fitted
    assert isinstance(ours.validation_scores_[-1], float) and np.isnan(ours.validation_scores_[-1])
    assert ours.n_iter_ == theirs.n_iter_ and len(ours.loss_curve_) == len(theirs.loss_curve_)
    assert np.isfinite(np.concatenate([c.ravel() for c in ours.coefs_])).all()
    assert np.isfinite(ours.predict(X)).all()
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MLPRegressor(**{**settings, "early_stopping": False}).fit(X, y)


def test_early_stopping_splits_as_scikit_learn_does():
    """Stratified by the one output's boolean column: scikit-learn's split, and its error for
    a class with one member."""
    with pytest.raises(ValueError, match=r"Classes with too few members are: \['True'\]"):
        MLPClassifier(early_stopping=True).fit([[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1])


def test_lbfgs_reaches_scikit_learns_poisson_glm_solution_for_every_seed():
    """scikit-learn's Poisson/GLM equivalence test (a one-unit identity hidden layer and an
    exponential output equal a GLM) for seeds 0-19 with tol=1e-7, tighter than float32 can
    resolve: L-BFGS goes on in float64 where float32 stalls (seed 2 stopped after 8
    iterations at loss 0.661 against 0.565, predictions 52% off), and overflowing trial
    points are taken in float64 too. No warning is left for these seeds."""
    from sklearn.linear_model import PoissonRegressor
    n = 100
    for seed in range(20):
        rng = np.random.default_rng(seed)
        X = np.linspace(0, 1, n)
        y = rng.poisson(np.exp(X + 1))
        X = X.reshape(n, -1)
        glm = PoissonRegressor(alpha=0, tol=1e-7).fit(X, y)
        mlp = MLPRegressor(loss="poisson", hidden_layer_sizes=(1,), activation="identity",
                           alpha=0, solver="lbfgs", tol=1e-7,
                           random_state=np.random.RandomState(seed + 1)).fit(X, y)
        np.testing.assert_allclose(mlp.predict(X), glm.predict(X), rtol=1e-4)


def test_coefs_in_the_dtype_of_the_training_data():
    """As scikit-learn's: float64 data gives float64 ``coefs_``/``intercepts_`` (read-only
    copies of the float32 weights: an in-place edit raises, an assignment is taken), float32
    data float32 views that train in place; predictions in the data's dtype."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = (X[:, 0] > 0).astype(int)
    for dtype in (np.float64, np.float32):
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X.astype(dtype), y)
        assert {c.dtype for c in clf.coefs_ + clf.intercepts_} == {np.dtype(dtype)}
        assert clf.predict_proba(X.astype(dtype)).dtype == dtype
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    with pytest.raises(ValueError, match="read-only"):
        clf.coefs_[0][0, 0] = 1.0
    clf.coefs_[1] = np.zeros_like(clf.coefs_[1])
    clf.intercepts_[1] = np.array([3.0])
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-3.0)), rtol=1e-6)
    state = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(state.predict_proba(X), clf.predict_proba(X))
    assert state.coefs_[0].dtype == np.float64 and not state.coefs_[0].flags.writeable
