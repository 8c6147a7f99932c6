"""Soak test: many threads fitting, predicting, saving and loading for minutes, with Ctrl-C.

    python bench/soak.py --minutes 10        # writes bench/results/soak.md and prints it

Eight Python threads (the main one included) each loop: build a model of a random shape
(depth 1-3, widths 8-128, dropout or batch norm or neither, one of four optimizers), fit it
for 1-3 epochs on random data with a random batch size, predict, save it to memory and load
it back, and check that the loaded model predicts the same bits. Every 50-500 ms a SIGINT
hits the process; the main thread, which receives it, checks that its interrupted model still
predicts, pickles and fits. Resident memory is sampled every second. Any exception other than
the interrupts, any mismatch, or a thread that stops making progress for 60 s fails the run.
"""

import argparse
import io
import os
import pickle
import random
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fastbp  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "soak.md"


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def random_model(rng):
    layers = []
    for _ in range(rng.integers(1, 4)):
        layers.append(fastbp.Dense(int(rng.choice([8, 32, 64, 128])),
                                   activation=str(rng.choice(["relu", "tanh", "elu"]))))
        extra = rng.integers(0, 3)
        if extra == 1:
            layers.append(fastbp.Dropout(0.2))
        elif extra == 2:
            layers.append(fastbp.BatchNormalization())
    layers.append(fastbp.Dense(3, activation="softmax"))
    model = fastbp.Sequential(layers, seed=int(rng.integers(1000)))
    model.compile(optimizer=str(rng.choice(["adam", "sgd", "rmsprop", "adamw"])),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def one_round(rng, stats, name):
    n, f = int(rng.integers(64, 4000)), int(rng.integers(2, 40))
    X = rng.standard_normal((n, f)).astype(np.float32)
    y = rng.integers(0, 3, n)
    model = random_model(rng)
    model.fit(X, y, epochs=int(rng.integers(1, 4)), batch_size=int(rng.choice([16, 32, 64, 256])), verbose=0)
    out = model.predict(X)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = fastbp.load(buffer)
    if not np.array_equal(loaded.predict(X), out):
        raise AssertionError(f"{name}: a loaded model predicts other bits")
    stats[name] = stats.get(name, 0) + 1
    return model, X, y


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    fastbp.warmup()
    deadline = time.monotonic() + 60 * args.minutes
    stats, errors, progress, memory = {}, [], {}, []
    stop = threading.Event()

    def worker(index):
        rng = np.random.default_rng(index)
        name = f"thread {index}"
        while not stop.is_set():
            try:
                one_round(rng, stats, name)
                progress[name] = time.monotonic()
            except Exception as error:  # noqa: BLE001  (reported below)
                errors.append(f"{name}: {type(error).__name__}: {error}")
                stop.set()

    def interrupter():
        while not stop.is_set():
            time.sleep(random.uniform(0.05, 0.5))
            os.kill(os.getpid(), signal.SIGINT)
            stats["SIGINT sent"] = stats.get("SIGINT sent", 0) + 1

    def sampler():
        while not stop.is_set():
            memory.append(rss_mib())
            now = time.monotonic()
            stuck = [k for k, t in progress.items() if now - t > 60]
            if stuck:
                errors.append(f"no progress for 60 s: {stuck}")
                stop.set()
            time.sleep(1.0)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(1, args.threads)]
    helpers = [threading.Thread(target=interrupter, daemon=True),
               threading.Thread(target=sampler, daemon=True)]
    for t in threads + helpers:
        t.start()
    rng = np.random.default_rng(0)
    interrupted = 0
    while time.monotonic() < deadline and not stop.is_set():
        model = None
        try:
            model, X, y = one_round(rng, stats, "main thread")
            progress["main thread"] = time.monotonic()
        except KeyboardInterrupt:
            interrupted += 1
        except Exception as error:  # noqa: BLE001
            errors.append(f"main thread: {type(error).__name__}: {error}")
            break
        try:
            if model is not None and model.built:
                model.predict(X)
                pickle.loads(pickle.dumps(model))
        except KeyboardInterrupt:
            interrupted += 1
    stop.set()
    for t in threads:
        t.join(timeout=120)
    if any(t.is_alive() for t in threads):
        errors.append("a worker did not finish within 120 s of the stop")
    rounds = sum(v for k, v in stats.items() if k != "SIGINT sent")
    memory = memory or [rss_mib()]
    first = float(np.median(memory[5:15])) if len(memory) > 20 else memory[0]
    last = float(np.median(memory[-10:]))
    lines = [f"Soak test, {time.strftime('%Y-%m-%d')} (`python bench/soak.py --minutes "
             f"{args.minutes:g}`), {args.threads} threads, {os.cpu_count()} cores:", "",
             "| measure | value |", "|---|---|",
             f"| rounds (fit, predict, save, load, compare) | {rounds:,} |",
             f"| SIGINTs sent / caught by the main thread | {stats.get('SIGINT sent', 0)} / "
             f"{interrupted} |",
             f"| resident memory: after warm-up / at the end / peak | {first:.0f} / {last:.0f} / "
             f"{max(memory):.0f} MiB |",
             "| resident memory at each minute | " +
             ", ".join(f"{m:.0f}" for m in memory[::60]) + " MiB |",
             f"| errors | {len(errors)} |"]
    lines += [f"\n{e}" for e in errors[:10]]
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
