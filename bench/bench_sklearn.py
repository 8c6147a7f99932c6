"""fastbp.MLPClassifier against scikit-learn's MLPClassifier, same settings, in the same run.

One epoch = one ``partial_fit`` call on the whole training set (after a warm-up call, so
compilation is not timed). Also recorded in ``extra_info``: test accuracy of both after the
same number of epochs from the same initial weights.

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


@pytest.mark.parametrize("library", ["fastbp", "sklearn"])
@pytest.mark.parametrize("name", ["small", "medium", "digits", "breast_cancer"])
def test_epoch(benchmark, name, library):
    X_tr, X_te, y_tr, y_te, hidden, batch = dataset(name)
    cls = MLPClassifier if library == "fastbp" else SklearnMLP
    model = cls(hidden_layer_sizes=hidden, batch_size=batch, random_state=0)
    classes = np.unique(y_tr)
    model.partial_fit(X_tr, y_tr, classes=classes)  # warm-up (compiles or loads the cache)
    benchmark.group = f"sklearn-api epoch {name}"
    benchmark.extra_info.update({"samples": len(X_tr), **accuracy(name)})
    rounds = 3 if (library == "sklearn" and name in WORKLOADS) else 7
    benchmark.pedantic(model.partial_fit, args=(X_tr, y_tr), rounds=rounds, iterations=1)
