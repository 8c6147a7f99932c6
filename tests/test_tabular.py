"""Tables: the preprocessing kept with the model (TabularModel), and the command line on
files the tests write (train, predict, evaluate, info), errors included."""

import json
import warnings
import subprocess
import sys

import numpy as np
import pytest

import fastbp
from fastbp.tabular import Preprocessor, TabularModel

pd = pytest.importorskip("pandas")


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 1200
    frame = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "income": rng.lognormal(10, 1, n),
        "city": rng.choice(["paris", "oslo", "rome", None], n),
        "member": rng.random(n) > 0.5,
    })
    frame.loc[rng.random(n) < 0.05, "age"] = np.nan
    score = (frame["age"].fillna(40) / 40 + (frame["city"] == "oslo") * 1.5 + frame["member"]
             + rng.normal(0, 0.3, n))
    frame["label"] = np.where(score > 2, "yes", "no")
    frame["value"] = score
    return frame


def test_the_preprocessing(table):
    X_frame = table[["age", "city", "member"]]
    pre = Preprocessor().fit(X_frame)
    assert pre.feature_names() == ["age", "age=missing", "city=oslo", "city=paris",
                                   "city=rome", "city=missing", "member"]
    X = pre.transform(X_frame)
    age = table["age"]
    np.testing.assert_allclose(X[:, 0], np.where(age.isna(), 0.0,
                                                 (age - age.mean()) / age.std(ddof=0)),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(X[:, 1], age.isna())
    np.testing.assert_array_equal(X[:, 2], table["city"] == "oslo")
    np.testing.assert_array_equal(X[:, 5], table["city"].isna())
    unseen = pre.transform(pd.DataFrame({"age": [30.0], "city": ["tokyo"], "member": [True]}))
    assert unseen[0, 2:6].sum() == 0  # an unknown category: zeros
    again = Preprocessor.from_config(json.loads(json.dumps(pre.get_config())))
    np.testing.assert_array_equal(again.transform(X_frame), X)
    with pytest.raises(ValueError, match="lacks the column"):
        pre.transform(X_frame.drop(columns=["city"]))
    with pytest.raises(ValueError, match="column 'when' holds datetime64"):
        Preprocessor().fit(pd.DataFrame({"when": pd.to_datetime(["2020-01-01"])}))


@pytest.mark.parametrize("target, task", [("label", "classification"), ("value", "regression")])
def test_fit_save_load_predict(table, target, task, tmp_path):
    other = "value" if target == "label" else "label"
    frame = table.drop(columns=[other])
    model = TabularModel(hidden=(16,), epochs=15, seed=0)
    model.fit(frame, target)
    assert model.task_ == task
    metrics = model.evaluate(frame)
    if task == "classification":
        assert metrics["accuracy"] > 0.85 and np.sum(metrics["confusion_matrix"]) == len(frame)
    else:
        assert metrics["r2"] > 0.7
    model.save(tmp_path / "m.npz")
    loaded = TabularModel.load(tmp_path / "m.npz")
    new = frame.drop(columns=[target]).head(40)
    np.testing.assert_array_equal(loaded.predict(new), model.predict(new))
    assert fastbp.load(tmp_path / "m.npz").n_features == model.preprocessor.n_features
    with pytest.raises(fastbp.ModelFileError, match="without a table's preprocessing"):
        fastbp.Sequential([fastbp.Input((3,)), fastbp.Dense(1)]).save(tmp_path / "plain.npz")
        TabularModel.load(tmp_path / "plain.npz")


def test_other_tables_and_errors(table):
    model = TabularModel(hidden=(8,), epochs=2)
    with pytest.raises(ValueError, match="no column 'nope'"):
        model.fit(table, "nope")
    with pytest.raises(ValueError, match="one class only"):
        model.fit(table.assign(label="yes"), "label")
    with pytest.raises(TypeError, match="pandas or polars DataFrame or a pyarrow Table"):
        model.fit(np.zeros((3, 3)), "x")
    with pytest.raises(fastbp.NotFittedError):
        model.predict(table)
    pa = pytest.importorskip("pyarrow")
    model.fit(pa.Table.from_pandas(table.drop(columns=["value"])), "label")
    assert model.task_ == "classification"


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fastbp", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_the_command_line_end_to_end(table, tmp_path):
    table.drop(columns=["value"]).to_csv(tmp_path / "train.csv", index=False)
    table.drop(columns=["value", "label"]).head(25).to_csv(tmp_path / "new.csv", index=False)
    result = cli("train", "train.csv", "--target", "label", "--hidden", "16", "--epochs", "5",
                 "--out", "m.npz", "--plot", "curves.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "classification on 1200 rows" in result.stdout and (tmp_path / "m.npz").exists()
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    result = cli("predict", "m.npz", "new.csv", "--out", "p.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns) == ["label", "p(no)", "p(yes)"] and len(predictions) == 25
    result = cli("evaluate", "m.npz", "train.csv", cwd=tmp_path)
    assert result.returncode == 0 and "accuracy" in result.stdout and "true\\pred" in result.stdout
    result = cli("info", "m.npz", cwd=tmp_path)
    details = json.loads(result.stdout)
    assert details["task"] == "classification" and details["features"] == 8
    assert "loss" in details["history"] and "numba" in details["versions"]
    pytest.importorskip("pyarrow")
    table.drop(columns=["label"]).to_parquet(tmp_path / "reg.parquet")
    result = cli("train", "reg.parquet", "--target", "value", "--epochs", "3", "--out", "r.npz",
                 cwd=tmp_path)
    assert result.returncode == 0 and "regression" in result.stdout, result.stderr
    result = cli("predict", "r.npz", "new.csv", "--out", "r.parquet", cwd=tmp_path)
    assert result.returncode == 0 and len(pd.read_parquet(tmp_path / "r.parquet")) == 25


@pytest.mark.parametrize("content, args, message", [
    ("a,b\n1,2\n3,4\n", ["--target", "c"], "no column 'c'"),
    ("", ["--target", "c"], "the file is empty"),
    ("a,b\n", ["--target", "a"], "holds no rows"),
    ("a,when\n1,2020-01-01\n2,2020-01-02\n", ["--target", "a", "--epochs", "1",
                                               "--validation-split", "0"], None),
    ("a,b\n1,2\n3,4\n", ["--target", "a"], "validation_split=0.1 leaves 2 training and 0"),
    ("a,b\n1,2\n3,4\n", ["--target", "a", "--hidden", "x"], "--hidden"),
])
def test_command_line_errors_exit_2_with_one_line(content, args, message, tmp_path):
    (tmp_path / "data.csv").write_text(content)
    result = cli("train", "data.csv", *args, "--out", "m.npz", cwd=tmp_path)
    if message is None:  # strings are categories: this one trains
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.npz").exists()
    (tmp_path / "junk.npz").write_bytes(b"junk")
    result = cli("predict", "junk.npz", "data.csv", cwd=tmp_path)
    assert result.returncode == 2 and "junk.npz" in result.stderr


def test_onnx_export_with_the_preprocessing(table, tmp_path):
    """The table's model as one ONNX graph (one input per column, strings for the
    categories, NaN and "" for missing values): onnxruntime's outputs equal fastbp's."""
    ort = pytest.importorskip("onnxruntime")
    for target in ("label", "value"):
        frame = table.drop(columns=["value" if target == "label" else "label"])
        model = TabularModel(hidden=(16,), epochs=3).fit(frame, target)
        model.save(tmp_path / "m.npz")
        result = cli("export", "m.npz", "m.onnx", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        session = ort.InferenceSession(str(tmp_path / "m.onnx"),
                                       providers=["CPUExecutionProvider"])
        rows = frame.drop(columns=[target]).head(200)
        feed = {}
        for c in model.preprocessor.columns:
            column = rows[c["name"]]
            if c["kind"] == "numeric":
                feed[c["name"]] = column.astype("float32").to_numpy().reshape(-1, 1)
            else:
                feed[c["name"]] = column.fillna("").astype(str).to_numpy(object).reshape(-1, 1)
        got = session.run(None, feed)[0]
        expected = model.predict_proba(rows) if target == "label" else model.predict(rows)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_polars_frames():
    """A polars DataFrame trains a TabularModel and, as scikit-learn's estimators take it,
    fastbp's."""
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")  # polars' to_pandas
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int)
    frame = pl.DataFrame({f"f{i}": X[:, i] for i in range(4)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        clf.fit(frame, pl.Series(y))
        assert list(clf.feature_names_in_) == ["f0", "f1", "f2", "f3"]
        np.testing.assert_array_equal(clf.predict_proba(frame), clf.predict_proba(X))
    model = fastbp.TabularModel(hidden=(8,), epochs=2).fit(frame.with_columns(
        pl.Series("t", y)), "t")
    assert model.task_ == "classification" and model.predict(frame).shape == (200,)


def test_a_missing_extra_is_named(monkeypatch, table):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r'pip install "fastbp\[tabular\]"'):
        fastbp.tabular.as_frame(table)
