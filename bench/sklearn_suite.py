"""scikit-learn's own MLP tests, run against fastbp's estimators.

    python bench/sklearn_suite.py              # the installed scikit-learn's test_mlp.py
    python bench/sklearn_suite.py -k lbfgs     # extra arguments go to pytest

Copies ``sklearn/neural_network/tests/test_mlp.py`` from the installed scikit-learn, changes
its import line to ``from fastbp import MLPClassifier, MLPRegressor`` and nothing else, runs it
with pytest, and prints the outcome per test. The control (the same file on scikit-learn's
own estimators) is ``python -m pytest --pyargs sklearn.neural_network.tests.test_mlp``.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"


def main(argv):
    import sklearn.neural_network.tests as tests
    source = Path(tests.__file__).parent / "test_mlp.py"
    text = source.read_text()
    if IMPORT not in text:
        raise SystemExit(f"{source} does not import the estimators as expected")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "test_mlp_fastbp.py"
        target.write_text(text.replace(IMPORT, "from fastbp import MLPClassifier, MLPRegressor"))
        root = Path(__file__).resolve().parent.parent
        return subprocess.call([sys.executable, "-m", "pytest", str(target), "-q", "-rfEs",
                                "-p", "no:cacheprovider", "--rootdir", tmp, "-W",
                                "ignore::DeprecationWarning", *argv],
                               cwd=tmp, env={**__import__("os").environ,
                                             "PYTHONPATH": str(root)})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
