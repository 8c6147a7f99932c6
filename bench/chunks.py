"""fit on a generator of chunks against fit on the same rows as one array: time per epoch and
the memory the chunked fit holds (the chunks are made on the fly and dropped after use).

    python bench/chunks.py [--rows 400000] [--chunk 20000]
"""

import argparse
import resource
import time

import numpy as np

import fastbp


def model():
    m = fastbp.Sequential([fastbp.Input((32,)), fastbp.Dense(64, activation="relu"),
                           fastbp.Dense(64, activation="relu"),
                           fastbp.Dense(10, activation="softmax")], seed=0)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def chunk(k, size):
    """Rows of chunk k, made on demand (as a reader of a file too large for memory would)."""
    rng = np.random.default_rng(k)
    X = rng.standard_normal((size, 32)).astype(np.float32)
    y = (X[:, :10].argmax(axis=1) + (X[:, 10] > 1)) % 10
    return X, y


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    n_chunks = args.rows // args.chunk
    model().fit(*chunk(0, 256), epochs=1, verbose=0)  # compile or load first
    base = peak_mib()

    class Chunks:  # iterable again every epoch, nothing kept
        def __iter__(self):
            return (chunk(k, args.chunk) for k in range(n_chunks))

    start = time.perf_counter()
    for _ in Chunks():
        pass
    making = time.perf_counter() - start
    m = model()
    start = time.perf_counter()
    history = m.fit(Chunks(), batch_size=128, epochs=args.epochs, verbose=0)
    chunked = (time.perf_counter() - start) / args.epochs
    chunked_peak = peak_mib() - base

    parts = [chunk(k, args.chunk) for k in range(n_chunks)]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    del parts
    m2 = model()
    start = time.perf_counter()
    history2 = m2.fit(X, y, batch_size=128, epochs=args.epochs, shuffle=False, verbose=0)
    whole = (time.perf_counter() - start) / args.epochs
    print(f"{args.rows} rows x 32 in chunks of {args.chunk}, 32-64-64-10, batch 128, "
          f"{args.epochs} epochs")
    print(f"chunks (made on the fly): {chunked:.3f} s/epoch, of which {making:.3f} s making "
          f"the rows; peak memory +{chunked_peak:.0f} MiB; loss {history.history['loss'][-1]:.4f}")
    print(f"one array ({X.nbytes / 2**20:.0f} MiB of X): {whole:.3f} s/epoch (includes none "
          f"of the row generation), loss {history2.history['loss'][-1]:.4f}")


if __name__ == "__main__":
    main()
