"""fastbp.MLPClassifier as a drop-in for scikit-learn's: a Pipeline tuned by GridSearchCV on the
breast-cancer data bundled with scikit-learn, timed against scikit-learn's own MLP.

Run: python examples/sklearn_dropin.py
"""

import time
import warnings

from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import MLPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                    stratify=y)
grid = {"mlpclassifier__hidden_layer_sizes": [(32,), (64, 64)],
        "mlpclassifier__alpha": [1e-4, 1e-2]}

for name, cls in [("fastbp", MLPClassifier), ("scikit-learn", SklearnMLP)]:
    pipe = make_pipeline(StandardScaler(), cls(max_iter=300, random_state=0))
    search = GridSearchCV(pipe, grid, cv=5)
    start = time.perf_counter()
    search.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    print(f"{name:>12}: best {search.best_params_}, cv accuracy {search.best_score_:.4f}, "
          f"test accuracy {search.score(X_test, y_test):.4f}, search took {seconds:.2f} s")
