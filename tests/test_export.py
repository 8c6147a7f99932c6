"""ONNX export: onnxruntime's outputs against fastbp's predictions, for every activation,
batch normalization, dropout and the scikit-learn estimators; the command line; the message
when the extra is missing."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastbp

ort = pytest.importorskip("onnxruntime")


def run(proto, X):
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"input": np.asarray(X, np.float32)})[0]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, y


@pytest.mark.parametrize("hidden", ["relu", "leaky_relu", "elu", "sigmoid", "tanh", "linear"])
@pytest.mark.parametrize("out", ["softmax", "sigmoid", "linear", "exponential"])
def test_sequential_matches_onnxruntime(hidden, out, data):
    X, y = data
    model = fastbp.Sequential([fastbp.Input((6,)), fastbp.Dense(16, activation=hidden),
                               fastbp.BatchNormalization(), fastbp.Dropout(0.2),
                               fastbp.Dense(8, activation=hidden),
                               fastbp.Dense(3, activation=out)], seed=1)
    loss = {"softmax": "sparse_categorical_crossentropy", "sigmoid": "binary_crossentropy",
            "linear": "mse", "exponential": "poisson"}[out]
    target = {"softmax": y, "sigmoid": np.eye(3)[y], "linear": X[:, :3],
              "exponential": np.abs(X[:, :3])}[out]
    model.compile(optimizer="adam", loss=loss)
    model.fit(X, target, epochs=2, verbose=0)  # batch statistics move off their start
    np.testing.assert_allclose(run(model.to_onnx(), X), model.predict(X), rtol=1e-5,
                               atol=1e-5)


def test_from_logits_exports_the_logits(data):
    X, y = data
    model = fastbp.Sequential([fastbp.Input((6,)), fastbp.Dense(3)], seed=0)
    model.compile(loss=fastbp.losses.SparseCategoricalCrossentropy(from_logits=True))
    np.testing.assert_allclose(run(model.to_onnx(), X), model.predict(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regressor",
                                  "regressor2"])
def test_estimators_match_onnxruntime(kind, data, tmp_path):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind.startswith("regressor"):
            target = X[:, 0] if kind == "regressor" else X[:, :2]
            est = fastbp.MLPRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
            est.fit(X.astype(np.float64), target)
            expected = est.predict(X)
        else:
            target = {"binary": y > 0, "multiclass": y, "multilabel": np.eye(3)[y]}[kind]
            est = fastbp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
            est.fit(X, target)
            expected = est.predict_proba(X)
    path = tmp_path / "model.onnx"
    est.to_onnx(path)
    import onnx
    got = run(onnx.load(str(path)), X)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_export_command_line(data, tmp_path):
    X, y = data
    model = fastbp.Sequential([fastbp.Input((6,)), fastbp.Dense(4, activation="tanh"),
                               fastbp.Dense(3, activation="softmax")], seed=0)
    model.save(tmp_path / "m.npz")
    out = tmp_path / "m.onnx"
    result = subprocess.run([sys.executable, "-m", "fastbp", "export", str(tmp_path / "m.npz"),
                             str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    import onnx
    np.testing.assert_allclose(run(onnx.load(str(out)), X), model.predict(X), rtol=1e-5,
                               atol=1e-6)
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    result = subprocess.run([sys.executable, "-m", "fastbp", "export", str(tmp_path / "bad.npz"),
                             str(tmp_path / "bad.onnx")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "bad.npz" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.onnx").exists()


def test_a_missing_extra_is_named(monkeypatch, data):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    model = fastbp.Sequential([fastbp.Input((6,)), fastbp.Dense(3)], seed=0)
    with pytest.raises(ImportError, match=r'pip install "fastbp\[onnx\]"'):
        model.to_onnx()


def test_an_unbuilt_or_foreign_model_is_refused():
    with pytest.raises(fastbp.NotFittedError):
        fastbp.Sequential([fastbp.Dense(3)]).to_onnx()
    from fastbp.export import to_onnx
    with pytest.raises(TypeError, match="exports a fastbp.Sequential"):
        to_onnx("model")
