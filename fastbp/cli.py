"""Command line (``fastbp ...`` or ``python -m fastbp ...``): ``train`` on a CSV or Parquet
table, ``predict``, ``evaluate``, ``info`` and ``export`` (ONNX) a model file, ``demo``,
``warmup``. A command that cannot do its job prints one line naming the file and what was
expected, exits with code 2 and writes nothing."""

import argparse
import sys
import time


def demo(epochs=20, seed=0, batch_size=32):
    """Train a 64-64 ReLU network on scikit-learn's handwritten digits, then the same on the
    NumPy reference, and print per-epoch progress, test accuracy and both times."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    import fastbp

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    print(f"digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels, "
          f"10 classes")

    def make(backend):
        model = fastbp.Sequential([fastbp.Dense(64, activation="relu"),
                                   fastbp.Dense(64, activation="relu"),
                                   fastbp.Dense(10, activation="softmax")], seed=seed)
        model.compile(optimizer=fastbp.optimizers.Adam(learning_rate=1e-3),
                      loss="categorical_crossentropy", metrics=["accuracy"], backend=backend)
        return model

    start = time.perf_counter()
    fastbp.warmup()
    print(f"compiled kernels ready in {time.perf_counter() - start:.2f} s")

    model = make("numba")
    start = time.perf_counter()
    model.fit(X_train, y_train, epochs=epochs, batch_size=batch_size,
              validation_data=(X_test, y_test), verbose=2)
    fast = time.perf_counter() - start
    _, accuracy = model.evaluate(X_test, y_test, verbose=0)

    reference = make("numpy")
    start = time.perf_counter()
    reference.fit(X_train, y_train, epochs=epochs, batch_size=batch_size)
    slow = time.perf_counter() - start
    _, ref_accuracy = reference.evaluate(X_test, y_test, verbose=0)

    print(f"test accuracy: {accuracy:.4f} (NumPy reference: {ref_accuracy:.4f})")
    print(f"training time for {epochs} epochs: fastbp {fast:.3f} s, NumPy reference "
          f"{slow:.3f} s ({slow / fast:.1f}x)")
    return accuracy


def export(model_path, out_path):
    """``fastbp export MODEL OUT``: exit code 2 with one line on stderr when the model file
    cannot be read or exported; nothing is written then."""
    import fastbp
    from . import io
    from .tabular import TabularModel
    try:
        file = io.read(model_path)
        if "tabular" in file.meta:  # a table's model: the preprocessing goes in the graph
            model = TabularModel.load(model_path)
            inputs = f"one input per column ({len(model.preprocessor.columns)})"
        else:
            model = fastbp.load(model_path)
            inputs = f"input (N, {model.n_features}) float32"
        proto = model.to_onnx()
    except (OSError, ValueError, ImportError, fastbp.NotFittedError) as error:
        print(f"fastbp: {model_path}: {error}", file=sys.stderr)
        return 2
    import onnx
    onnx.save(proto, out_path)
    print(f"{out_path}: ONNX graph of {len(proto.graph.node)} nodes, {inputs}, "
          f"output as predict")
    return 0


def _fail(path, error):
    print(f"fastbp: {path}: {error}", file=sys.stderr)
    return 2


def train(args):
    """``fastbp train DATA --target COL ...``: read, preprocess, train, report, save."""
    from .tabular import TabularModel, read_table
    try:
        hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip())
        if not hidden or min(hidden) < 1:
            raise ValueError
    except ValueError:
        return _fail("--hidden", f"expected layer widths such as 64,64; received "
                                 f"{args.hidden!r}")
    try:
        frame = read_table(args.data)
        model = TabularModel(hidden=hidden, task=args.task, epochs=args.epochs,
                             batch_size=args.batch_size, optimizer=args.optimizer,
                             learning_rate=args.learning_rate,
                             validation_split=args.validation_split,
                             early_stopping=args.early_stopping, seed=args.seed)
        history = model.fit(frame, args.target, verbose=1).history
    except (OSError, ValueError, TypeError, ImportError) as error:
        return _fail(args.data, error)
    logs = {k: v[-1] for k, v in history.history.items() if k != "lr"}
    print(f"{model.task_} on {len(frame)} rows, {model.preprocessor.n_features} features from "
          f"{len(model.preprocessor.columns)} columns; "
          + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    model.save(args.out)
    print(f"saved {args.out}")
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return _fail(args.plot, "plots need matplotlib: pip install \"fastbp[plot]\"")
        figure, axes = plt.subplots(figsize=(6, 4))
        for key, values in history.history.items():
            if key in ("loss", "val_loss"):
                axes.plot(range(1, len(values) + 1), values, label=key)
        axes.set_xlabel("epoch")
        axes.legend()
        figure.savefig(args.plot, dpi=100)
        print(f"saved {args.plot}")
    return 0


def predict(args):
    """``fastbp predict MODEL DATA --out FILE``: one prediction per row (and probabilities)."""
    from .tabular import TabularModel, read_table
    import importlib.util
    if str(args.out).endswith((".parquet", ".pq")) and not importlib.util.find_spec("pyarrow"):
        return _fail(args.out, "Parquet files need pyarrow: pip install \"fastbp[tabular]\"")
    try:
        model = TabularModel.load(args.model)
    except (OSError, ValueError) as error:
        return _fail(args.model, error)
    try:
        frame = read_table(args.data)
        frame = frame.drop(columns=[model.target]) if model.target in frame.columns else frame
        import pandas as pd
        out = pd.DataFrame({model.target: model.predict(frame)})
        if model.task_ == "classification":
            proba = model.predict_proba(frame)
            for i, c in enumerate(model.classes_.tolist()):
                out[f"p({c})"] = proba[:, i]
    except (OSError, ValueError, TypeError, ImportError) as error:
        return _fail(args.data, error)
    if str(args.out).endswith((".parquet", ".pq")):
        out.to_parquet(args.out, index=False)
    else:
        out.to_csv(args.out, index=False)
    print(f"{len(out)} predictions written to {args.out}")
    return 0


def evaluate(args):
    """``fastbp evaluate MODEL DATA``: metrics (a confusion matrix for classifiers)."""
    from .tabular import TabularModel, read_table
    try:
        model = TabularModel.load(args.model)
    except (OSError, ValueError) as error:
        return _fail(args.model, error)
    try:
        metrics = model.evaluate(read_table(args.data))
    except (OSError, ValueError, TypeError, ImportError) as error:
        return _fail(args.data, error)
    confusion = metrics.pop("confusion_matrix", None)
    classes = metrics.pop("classes", None)
    print(", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in metrics.items()))
    if confusion is not None:
        width = max(len(str(c)) for c in classes + ["true\\pred"]) + 2
        print("true\\pred".ljust(width) + "".join(str(c).rjust(width) for c in classes))
        for c, row in zip(classes, confusion):
            print(str(c).ljust(width) + "".join(str(v).rjust(width) for v in row))
    return 0


def info(args):
    """``fastbp info MODEL``: task, columns, network, history, versions."""
    import json

    import numba
    import numpy

    import fastbp
    from .tabular import TabularModel
    try:
        model = TabularModel.load(args.model)
    except (OSError, ValueError) as error:
        return _fail(args.model, error)
    details = model.info()
    details["versions"] = {"fastbp": fastbp.__version__, "numpy": numpy.__version__,
                           "numba": numba.__version__}
    print(json.dumps(details, indent=2, default=str))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastbp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="train on the handwritten digits bundled with scikit-learn")
    p_demo.add_argument("--epochs", type=int, default=20)
    p_demo.add_argument("--seed", type=int, default=0)
    p_demo.add_argument("--batch-size", type=int, default=32)
    sub.add_parser("warmup", help="compile every kernel into the on-disk cache")
    p_train = sub.add_parser("train", help="train on a CSV or Parquet table")
    p_train.add_argument("data")
    p_train.add_argument("--target", required=True, help="the column to predict")
    p_train.add_argument("--task", choices=["auto", "classification", "regression"],
                         default="auto")
    p_train.add_argument("--hidden", default="64,64", help="hidden widths, e.g. 64,64")
    p_train.add_argument("--epochs", type=int, default=20)
    p_train.add_argument("--batch-size", type=int, default=32)
    p_train.add_argument("--optimizer", default="adam")
    p_train.add_argument("--learning-rate", type=float, default=1e-3)
    p_train.add_argument("--validation-split", type=float, default=0.1)
    p_train.add_argument("--early-stopping", action="store_true")
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument("--out", default="model.npz")
    p_train.add_argument("--plot", help="write the loss curves to this PNG")
    p_predict = sub.add_parser("predict", help="predict the rows of a table")
    p_predict.add_argument("model")
    p_predict.add_argument("data")
    p_predict.add_argument("--out", default="predictions.csv")
    p_evaluate = sub.add_parser("evaluate", help="metrics of a model on a table with targets")
    p_evaluate.add_argument("model")
    p_evaluate.add_argument("data")
    p_info = sub.add_parser("info", help="what a model file holds")
    p_info.add_argument("model")
    p_export = sub.add_parser("export", help="write a saved model (.npz) as an ONNX graph")
    p_export.add_argument("model", help="a file written by Sequential.save")
    p_export.add_argument("out", help="the .onnx file to write")
    args = parser.parse_args(argv)
    if args.command == "export":
        return export(args.model, args.out)
    commands = {"train": train, "predict": predict, "evaluate": evaluate, "info": info}
    if args.command in commands:
        return commands[args.command](args)
    if args.command == "demo":
        demo(args.epochs, args.seed, args.batch_size)
    elif args.command == "warmup":
        import fastbp
        from fastbp import _cache
        total = fastbp.warmup(verbose=True)
        print(f"kernels ready in {total:.1f} s (cache: {_cache.user_dir() or 'memory only'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
