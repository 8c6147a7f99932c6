"""Command line: ``python -m fastbp demo`` and ``python -m fastbp warmup``."""

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
    try:
        model = fastbp.load(model_path)
        proto = model.to_onnx()
    except (OSError, ValueError, ImportError, fastbp.NotFittedError) as error:
        print(f"fastbp export: {model_path}: {error}", file=sys.stderr)
        return 2
    import onnx
    onnx.save(proto, out_path)
    print(f"{out_path}: ONNX graph of {len(proto.graph.node)} nodes, input (N, "
          f"{model.n_features}) float32, output as predict")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastbp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="train on the handwritten digits bundled with scikit-learn")
    p_demo.add_argument("--epochs", type=int, default=20)
    p_demo.add_argument("--seed", type=int, default=0)
    p_demo.add_argument("--batch-size", type=int, default=32)
    sub.add_parser("warmup", help="compile every kernel into the on-disk cache")
    p_export = sub.add_parser("export", help="write a saved model (.npz) as an ONNX graph")
    p_export.add_argument("model", help="a file written by Sequential.save")
    p_export.add_argument("out", help="the .onnx file to write")
    args = parser.parse_args(argv)
    if args.command == "export":
        return export(args.model, args.out)
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
