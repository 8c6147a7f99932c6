"""fastbp.MLPClassifier against scikit-learn's MLPClassifier, same settings, in the same run.

One epoch = one ``partial_fit`` call on the whole training set (after warm-up calls, so
compilation is not timed); also a whole ``fit`` of 10 epochs. Also recorded in ``extra_info``:
test accuracy of both after the same number of epochs from the same initial weights.

Run: python -m pytest bench/bench_sklearn.py --benchmark-group-by=group
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler

from fastbp import MLPClassifier
from workloads import WORKLOADS, data


def dataset(name):
    """(X_train, X_test, y_train, y_test, hidden, batch) of a workload or bundled data set."""
    if name in WORKLOADS:
        X, y = data(name)
        hidden, batch = WORKLOADS[name][2], WORKLOADS[name][4]
    else:
        X, y = (load_digits if name == "digits" else load_breast_cancer)(return_X_y=True)
        X = StandardScaler().fit_transform(X).astype(np.float32)
        hidden, batch = (64, 64), 32
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return X_tr, X_te, y_tr, y_te, hidden, batch


ACCURACY_EPOCHS = {"small": 3, "medium": 3, "digits": 20, "breast_cancer": 20}
_accuracy = {}


def accuracy(name):
    """Test accuracy of both estimators after the same epochs from the same weights."""
    if name not in _accuracy:
        X_tr, X_te, y_tr, y_te, hidden, batch = dataset(name)
        scores = {}
        for label, cls in (("fastbp", MLPClassifier), ("sklearn", SklearnMLP)):
            model = cls(hidden_layer_sizes=hidden, batch_size=batch,
                        max_iter=ACCURACY_EPOCHS[name], random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_tr, y_tr)
            scores[label] = model.score(X_te, y_te)
        _accuracy[name] = scores
    return _accuracy[name]


def estimator(library, hidden, batch, **params):
    cls = MLPClassifier if library == "fastbp" else SklearnMLP
    return cls(hidden_layer_sizes=hidden, batch_size=batch, random_state=0, **params)


@pytest.mark.parametrize("library", ["fastbp", "sklearn"])
@pytest.mark.parametrize("name", ["small", "medium", "digits", "breast_cancer"])
def test_epoch(benchmark, name, library):
    """Steady-state epoch. The accuracy runs go first: scikit-learn's fit leaves NumPy's
    OpenBLAS threads spinning for about 0.1 s, which would slow the next epochs of whichever
    estimator comes after it. Both estimators then get the same 3 untimed warm-up epochs
    (fastbp's shard scheduler times its serial and parallel ways in its first 4)."""
    X_tr, X_te, y_tr, y_te, hidden, batch = dataset(name)
    benchmark.extra_info.update({"samples": len(X_tr), **accuracy(name)})
    model = estimator(library, hidden, batch)
    model.partial_fit(X_tr, y_tr, classes=np.unique(y_tr))  # compiles or loads the cache
    benchmark.group = f"sklearn-api epoch {name}"
    rounds = 3 if (library == "sklearn" and name in WORKLOADS) else 7
    benchmark.pedantic(model.partial_fit, args=(X_tr, y_tr), rounds=rounds, iterations=1,
                       warmup_rounds=3)


FIT_EPOCHS = 10


@pytest.mark.parametrize("library", ["fastbp", "sklearn"])
@pytest.mark.parametrize("name", ["small", "medium", "digits", "breast_cancer"])
def test_fit(benchmark, name, library):
    """A whole ``fit`` of 10 epochs from fresh weights, everything included (validation of
    the input, the scheduler's first epochs, the loss curve); only compilation is not timed.
    One untimed fit first, for both libraries: the one right after the test before ran slower
    (NumPy's BLAS threads still spinning), 15-23 ms against 8 ms for breast cancer."""
    X_tr, X_te, y_tr, y_te, hidden, batch = dataset(name)

    def fit(X=X_tr, y=y_tr, epochs=FIT_EPOCHS):
        model = estimator(library, hidden, batch, max_iter=epochs, tol=0.0,
                          n_iter_no_change=epochs + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        return model

    fit(X_tr[:256], y_tr[:256], 1)  # compiles or loads the cache

    benchmark.group = f"sklearn-api fit {FIT_EPOCHS} epochs {name}"
    rounds = 2 if (library == "sklearn" and name in WORKLOADS) else 5
    model = benchmark.pedantic(fit, rounds=rounds, iterations=1, warmup_rounds=1)
    assert model.n_iter_ == FIT_EPOCHS
    benchmark.extra_info.update({"samples": len(X_tr), "accuracy": model.score(X_te, y_te)})


@pytest.mark.parametrize("library", ["fastbp", "sklearn"])
@pytest.mark.parametrize("rows", ["one row", "test set"])
@pytest.mark.parametrize("name", ["small", "medium", "digits", "breast_cancer"])
def test_predict(benchmark, name, rows, library):
    """``predict`` of a fitted estimator (one epoch from the same initial weights): one row,
    as a model serving requests sees it, and the whole held-out fifth; validation of the input
    included, as the user pays it."""
    X_tr, X_te, y_tr, y_te, hidden, batch = dataset(name)
    model = estimator(library, hidden, batch)
    model.partial_fit(X_tr, y_tr, classes=np.unique(y_tr))
    X = X_te[:1] if rows == "one row" else X_te
    benchmark.group = f"sklearn-api predict {rows} {name}"
    benchmark.extra_info.update({"rows": len(X)})
    predicted = benchmark(model.predict, X)
    assert predicted.shape == (len(X),)
