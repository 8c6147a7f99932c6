"""Tables in, predictions out: the preprocessing a table needs, kept with the model.

``TabularModel`` takes a pandas DataFrame (a polars DataFrame or a pyarrow Table is converted
to one) and a target column, builds the preprocessing from the training rows, and trains a
``Sequential`` network on the result:

* numeric columns (integers, floats, booleans): standardised with the training rows' mean and
  standard deviation; a missing value becomes the mean, with an indicator column ``1`` beside
  it (for columns that had missing values in training);
* other columns (strings, categories, objects): one-hot over the categories seen in training,
  in sorted order, a missing value its own category; a category not seen in training gives a
  row of zeros.

``save`` writes one ``fastbp.io`` model file (plain arrays and JSON, no pickle) whose metadata
also holds the preprocessing and the target's encoding; ``load`` reads it back, checked.

Needs pandas (``pip install "fastbp[tabular]"``, which brings pyarrow for Parquet files).
"""

import importlib.util
import math

import numpy as np

from ._validation import describe

#: a column with at most this many distinct integer values is a class label under task "auto"
MAX_AUTO_CLASSES = 20


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("tables need pandas: pip install \"fastbp[tabular]\"") from None
    return pandas


def as_frame(table, name="data"):
    """A pandas DataFrame from a pandas or polars DataFrame or a pyarrow Table."""
    pd = _pandas()
    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, "to_pandas"):  # polars DataFrame, pyarrow Table
        return table.to_pandas()
    raise TypeError(f"{name} must be a pandas or polars DataFrame or a pyarrow Table; "
                    f"received {describe(table)}")


def _kind(series, column):
    pd = _pandas()
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        raise ValueError(f"column {column!r} holds {series.dtype} values, which fastbp cannot "
                         f"use: expected numbers, booleans or categories (drop it, or convert "
                         f"it, e.g. to a number of days)")
    return "categorical"


def _json_value(value):
    """A category as JSON keeps it (int, float, str, bool)."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value if isinstance(value, (int, float, str, bool)) else str(value)


class Preprocessor:
    """The columns of a table as a float32 matrix (see the module docstring)."""

    def __init__(self, columns=None):
        #: per input column: {"name", "kind", and "mean", "std", "missing" (numeric) or
        #: "categories" (categorical)}
        self.columns = columns

    def fit(self, frame):
        columns = []
        for name in frame.columns:
            series = frame[name]
            kind = _kind(series, name)
            if kind == "numeric":
                values = series.astype("float64")
                mean = float(values.mean()) if values.notna().any() else 0.0
                std = float(values.std(ddof=0)) if values.notna().sum() > 1 else 0.0
                columns.append({"name": str(name), "kind": kind, "mean": mean,
                                "std": std if std > 0 and math.isfinite(std) else 1.0,
                                "missing": bool(values.isna().any())})
            else:
                seen = series.dropna().unique().tolist()
                try:
                    seen = sorted(seen)
                except TypeError:  # mixed kinds: sorted by their text
                    seen = sorted(seen, key=str)
                by_text = {}
                for value in seen:  # matched by their text: one category per text
                    by_text.setdefault(str(value), _json_value(value))
                columns.append({"name": str(name), "kind": kind,
                                "categories": list(by_text.values()),
                                "missing": bool(series.isna().any())})
        self.columns = columns
        return self

    @property
    def n_features(self):
        return sum(1 + c["missing"] if c["kind"] == "numeric"
                   else len(c["categories"]) + c["missing"] for c in self.columns)

    def feature_names(self):
        names = []
        for c in self.columns:
            if c["kind"] == "numeric":
                names.append(c["name"])
            else:
                names += [f"{c['name']}={v}" for v in c["categories"]]
            if c["missing"]:
                names.append(f"{c['name']}=missing")
        return names

    def transform(self, frame, name="data"):
        """float32 array (n_rows, n_features)."""
        missing = [c["name"] for c in self.columns if c["name"] not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks the column(s) {missing} the model was trained with")
        n = len(frame)
        out = np.zeros((n, self.n_features), np.float32)
        at = 0
        for c in self.columns:
            series = frame[c["name"]]
            if c["kind"] == "numeric":
                try:
                    values = series.astype("float64").to_numpy()
                except (TypeError, ValueError):
                    raise ValueError(f"column {c['name']!r} of {name} must hold numbers, as in "
                                     f"training; received {series.dtype} values such as "
                                     f"{series.iloc[0]!r}") from None
                absent = np.isnan(values)
                out[:, at] = np.where(absent, 0.0, (values - c["mean"]) / c["std"])
                at += 1
            else:  # categories matched by their text (as the ONNX graph matches them)
                absent = series.isna().to_numpy()
                pd = _pandas()
                text = series.astype(str).where(~absent)
                codes = pd.Index([str(v) for v in c["categories"]]).get_indexer(text)
                known = np.flatnonzero(codes >= 0)  # unseen categories and missing: -1
                out[known, at + codes[known]] = 1.0
                at += len(c["categories"])
            if c["missing"]:
                out[:, at] = absent
                at += 1
        return out

    def get_config(self):
        return {"columns": self.columns}

    @classmethod
    def from_config(cls, config, path="the model file"):
        columns = config.get("columns") if isinstance(config, dict) else None
        if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
            raise ValueError(f"{path}: its preprocessing must be a list of column objects")
        for c in columns:
            kind = c.get("kind")
            ok = isinstance(c.get("name"), str) and isinstance(c.get("missing"), bool)
            if kind == "numeric":
                ok = ok and all(isinstance(c.get(k), (int, float)) and math.isfinite(c[k])
                                for k in ("mean", "std")) and c["std"] > 0
            elif kind == "categorical":
                ok = ok and isinstance(c.get("categories"), list) and all(
                    isinstance(v, (int, float, str, bool)) for v in c["categories"])
            else:
                ok = False
            if not ok:
                raise ValueError(f"{path}: its preprocessing has a damaged column entry "
                                 f"{str(c)[:200]}")
        return cls(columns)


class TabularModel:
    """A table's preprocessing and a network trained on it, as one model.

    Parameters
    ----------
    hidden : tuple of int
        Units of the ReLU hidden layers.
    task : "auto", "classification" or "regression"
        "auto": classification when the target holds strings, categories, booleans or at
        most ``MAX_AUTO_CLASSES`` distinct integers; regression otherwise.
    epochs, batch_size, optimizer, learning_rate, validation_split, seed
        As ``Sequential.fit`` and ``compile``; ``optimizer`` a name.
    early_stopping : bool
        Stop when the validation loss has not improved for 5 epochs, keeping the best weights.
    """

    def __init__(self, hidden=(64, 64), task="auto", epochs=20, batch_size=32,
                 optimizer="adam", learning_rate=1e-3, validation_split=0.1,
                 early_stopping=False, seed=0):
        if task not in ("auto", "classification", "regression"):
            raise ValueError(f"task must be 'auto', 'classification' or 'regression'; "
                             f"received {task!r}")
        self.hidden, self.task, self.epochs, self.batch_size = tuple(hidden), task, epochs, \
            batch_size
        self.optimizer, self.learning_rate = optimizer, learning_rate
        self.validation_split, self.early_stopping, self.seed = validation_split, \
            early_stopping, seed
        self.preprocessor = self.network = self.target = None
        self.target_scale = (0.0, 1.0)

    def _task(self, y):
        pd = _pandas()
        if self.task != "auto":
            return self.task
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            return "classification"
        values = y.dropna().to_numpy()
        integral = np.array_equal(values, np.round(values))
        return "classification" if integral and len(np.unique(values)) <= MAX_AUTO_CLASSES \
            else "regression"

    def fit(self, table, target, verbose=0):
        """Train on ``table`` (its column ``target`` is what is predicted). Returns the model;
        ``history`` holds the training ``History``."""
        from . import callbacks, optimizers
        from .layers import Dense, Input
        from .model import Sequential
        frame = as_frame(table)
        if target not in frame.columns:
            raise ValueError(f"the table has no column {target!r} (its columns: "
                             f"{list(frame.columns)[:20]})")
        y = frame[target]
        if y.isna().any():
            raise ValueError(f"the target column {target!r} has {int(y.isna().sum())} missing "
                             f"values; drop those rows first")
        if len(frame) < 2:
            raise ValueError(f"the table has {len(frame)} row(s); at least 2 are needed")
        X_frame = frame.drop(columns=[target])
        if X_frame.shape[1] == 0:
            raise ValueError(f"the table has no column besides the target {target!r}")
        task = self._task(y)
        pre = Preprocessor().fit(X_frame)
        X = pre.transform(X_frame)
        if task == "classification":
            classes = np.array(sorted(y.unique().tolist(), key=str), dtype=object)
            index = {v: i for i, v in enumerate(classes.tolist())}
            labels = np.array([index[v] for v in y.tolist()], np.int64)
            units, activation, loss = len(classes), "softmax", \
                "sparse_categorical_crossentropy"
            targets, metrics, scale = labels, ["accuracy"], (0.0, 1.0)
            if len(classes) < 2:
                raise ValueError(f"the target column {target!r} holds one class only "
                                 f"({classes[0]!r}); a classifier needs two or more")
        else:
            try:
                values = y.astype("float64").to_numpy()
            except (TypeError, ValueError):
                raise ValueError(f"the target column {target!r} must hold numbers for "
                                 f"regression; received {y.dtype}") from None
            scale = (float(values.mean()), float(values.std()) or 1.0)
            targets = ((values - scale[0]) / scale[1]).astype(np.float32)
            units, activation, loss, metrics, classes = 1, None, "mse", ["mae"], None
        layers = [Input((X.shape[1],))] + [Dense(h, activation="relu") for h in self.hidden]
        network = Sequential(layers + [Dense(units, activation=activation)], seed=self.seed)
        network.compile(optimizer=optimizers.get({"name": self.optimizer,
                                                  "learning_rate": self.learning_rate}),
                        loss=loss, metrics=metrics)
        stop = [callbacks.EarlyStopping(patience=5, restore_best_weights=True)] \
            if self.early_stopping and self.validation_split else []
        history = network.fit(X, targets, batch_size=self.batch_size, epochs=self.epochs,
                              validation_split=self.validation_split, verbose=verbose,
                              callbacks=stop)
        self.preprocessor, self.network, self.target, self.task_ = pre, network, target, task
        self.classes_, self.target_scale = classes, scale
        self.history = history
        return self

    def _check_fitted(self):
        if self.network is None:
            from ._validation import NotFittedError
            raise NotFittedError("this TabularModel is not fitted; call fit(table, target)")

    def _outputs(self, table):
        self._check_fitted()
        frame = as_frame(table)
        return self.network.predict(self.preprocessor.transform(frame))

    def predict(self, table):
        """Class labels (classification) or values (regression), one per row."""
        out = self._outputs(table)
        if self.task_ == "classification":
            return self.classes_[out.argmax(axis=1)]
        return out[:, 0].astype(np.float64) * self.target_scale[1] + self.target_scale[0]

    def predict_proba(self, table):
        """Class probabilities (n_rows, n_classes), columns in ``classes_`` order."""
        if self.task_ != "classification":
            raise AttributeError("predict_proba is for classification models")
        return self._outputs(table)

    def evaluate(self, table):
        """Metrics on a table holding the target column: accuracy, log loss and the
        confusion matrix (rows: true classes, columns: predicted), or R^2, MAE and RMSE."""
        self._check_fitted()
        frame = as_frame(table)
        if self.target not in frame.columns:
            raise ValueError(f"the table has no target column {self.target!r}")
        truth = frame[self.target]
        if self.task_ == "classification":
            p = self.predict_proba(frame.drop(columns=[self.target]))
            index = {v: i for i, v in enumerate(self.classes_.tolist())}
            unknown = [v for v in truth.unique().tolist() if v not in index]
            if unknown:
                raise ValueError(f"the target column {self.target!r} holds classes the model "
                                 f"was not trained on: {unknown[:5]}")
            t = np.array([index[v] for v in truth.tolist()])
            k = len(self.classes_)
            confusion = np.zeros((k, k), np.int64)
            np.add.at(confusion, (t, p.argmax(axis=1)), 1)
            picked = np.clip(p[np.arange(len(t)), t], 1e-7, 1.0)
            return {"rows": len(t), "accuracy": float(np.mean(p.argmax(axis=1) == t)),
                    "log_loss": float(-np.mean(np.log(picked))),
                    "classes": [_json_value(c) for c in self.classes_.tolist()],
                    "confusion_matrix": confusion.tolist()}
        values = truth.astype("float64").to_numpy()
        pred = self.predict(frame.drop(columns=[self.target]))
        residual = values - pred
        total = np.sum((values - values.mean()) ** 2)
        return {"rows": len(values), "r2": float(1 - np.sum(residual ** 2) / total)
                if total > 0 else float("nan"),
                "mae": float(np.mean(np.abs(residual))),
                "rmse": float(np.sqrt(np.mean(residual ** 2)))}

    def info(self):
        """A dict describing the model: task, target, columns, network, training history."""
        self._check_fitted()
        return {"task": self.task_, "target": self.target,
                "classes": None if self.classes_ is None
                else [_json_value(c) for c in self.classes_.tolist()],
                "columns": [{k: v for k, v in c.items() if k != "categories"} |
                            ({"categories": len(c["categories"])} if "categories" in c else {})
                            for c in self.preprocessor.columns],
                "features": self.preprocessor.n_features,
                "network": self.network.get_config(),
                "history": getattr(self.network.history, "history", None)}

    def to_onnx(self, path=None):
        """The preprocessing and the network as one ONNX graph
        (``fastbp.export.tabular_to_onnx``: one input per column)."""
        from .export import tabular_to_onnx
        return tabular_to_onnx(self, path)

    def save(self, path):
        """One fastbp model file with the preprocessing in its metadata."""
        self._check_fitted()
        self.network._save(path, extra={"tabular": {
            "preprocessing": self.preprocessor.get_config(), "target": self.target,
            "task": self.task_, "target_scale": list(self.target_scale),
            "classes": None if self.classes_ is None
            else [_json_value(c) for c in self.classes_.tolist()],
            "history": {k: [float(v) for v in vs] for k, vs in
                        getattr(self.network.history, "history", {}).items()}}})

    @classmethod
    def load(cls, path):
        """A TabularModel saved by ``save`` (checked as ``fastbp.load`` checks)."""
        from . import io
        from .callbacks import History
        from .model import load_model
        network = load_model(path)
        meta = io.read(path).meta.get("tabular")
        if not isinstance(meta, dict):
            raise io.ModelFileError(f"{path!s} is a fastbp model without a table's "
                                    f"preprocessing (saved by Sequential.save, not "
                                    f"TabularModel.save)")
        try:
            pre = Preprocessor.from_config(meta["preprocessing"], str(path))
            if pre.n_features != network.n_features:
                raise ValueError(f"{path}: its preprocessing makes {pre.n_features} features "
                                 f"and its network reads {network.n_features}")
            model = cls()
            model.preprocessor, model.network, model.target = pre, network, str(meta["target"])
            model.task_ = meta["task"]
            if model.task_ not in ("classification", "regression"):
                raise ValueError(f"{path}: unknown task {model.task_!r}")
            model.target_scale = tuple(float(v) for v in meta["target_scale"])
            model.classes_ = None if meta["classes"] is None else np.array(meta["classes"],
                                                                           dtype=object)
            network.history = History({})
            network.history.history = {str(k): list(v) for k, v in
                                       (meta.get("history") or {}).items()}
        except (KeyError, TypeError, ValueError) as err:
            raise io.ModelFileError(f"{path!s} is not a readable fastbp table model: "
                                    f"{err}") from None
        return model


def read_table(path):
    """A DataFrame from a CSV or Parquet file (by its extension; pyarrow reads Parquet)."""
    pd = _pandas()
    text = str(path)
    has_pyarrow = importlib.util.find_spec("pyarrow") is not None
    if text.endswith((".parquet", ".pq")):
        if not has_pyarrow:
            raise ImportError("Parquet files need pyarrow: pip install \"fastbp[tabular]\"")
        return pd.read_parquet(text)
    engine = "pyarrow" if has_pyarrow else "c"
    try:
        frame = pd.read_csv(text, engine=engine)
    except pd.errors.EmptyDataError:
        raise ValueError("the file is empty: expected a CSV table with a header row") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ValueError(f"the file is not a CSV table ({type(err).__name__})") from None
    except Exception as err:  # pyarrow's own parse errors
        if type(err).__module__.startswith("pyarrow"):
            raise ValueError(f"the file is not a CSV table ({err})") from None
        raise
    if frame.shape[1] == 0 or len(frame) == 0:
        raise ValueError("the file holds no rows: expected a CSV table with a header row and "
                         "data")
    return frame
