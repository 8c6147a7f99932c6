"""scikit-learn's own MLP tests, run against fastbp's estimators.

    python bench/sklearn_suite.py              # the installed scikit-learn's test_mlp.py
    python bench/sklearn_suite.py -k lbfgs     # extra arguments go to pytest

Copies ``sklearn/neural_network/tests/test_mlp.py`` from the installed scikit-learn, changes
its import line to ``from fastbp import MLPClassifier, MLPRegressor`` and nothing else, runs it
with pytest, and prints the outcome per test. ``global_random_seed`` is scikit-learn's fixture:
``SKLEARN_TESTS_GLOBAL_RANDOM_SEED=0-19`` runs seeds 0 to 19 (default 42), as scikit-learn's CI
does. The control (the same file on scikit-learn's own estimators) is
``python -m pytest --pyargs sklearn.neural_network.tests.test_mlp``.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"

#: scikit-learn's global_random_seed fixture, as its conftest.py gives it
CONFTEST = """
import os


def pytest_generate_tests(metafunc):
    if "global_random_seed" in metafunc.fixturenames:
        seeds = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED", "42")
        if seeds == "all":
            values = list(range(100))
        elif "-" in seeds:
            lo, hi = map(int, seeds.split("-"))
            values = list(range(lo, hi + 1))
        else:
            values = [int(seeds)]
        metafunc.parametrize("global_random_seed", values)
"""


def main(argv):
    import sklearn.neural_network.tests as tests
    source = Path(tests.__file__).parent / "test_mlp.py"
    text = source.read_text()
    if IMPORT not in text:
        raise SystemExit(f"{source} does not import the estimators as expected")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "test_mlp_fastbp.py"
        target.write_text(text.replace(IMPORT, "from fastbp import MLPClassifier, MLPRegressor"))
        (Path(tmp) / "conftest.py").write_text(CONFTEST)
        root = Path(__file__).resolve().parent.parent
        return subprocess.call([sys.executable, "-m", "pytest", str(target), "-q", "-rfEs",
                                "-p", "no:cacheprovider", "--rootdir", tmp, "-W",
                                "ignore::DeprecationWarning", *argv],
                               cwd=tmp, env={**__import__("os").environ,
                                             "PYTHONPATH": str(root)})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
