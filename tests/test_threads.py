"""Threads: results independent of the thread count, cached parallel kernels under different
thread counts, and several models training and predicting at once from Python threads."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastbp
from fastbp import _threads

SCRIPT = """
import hashlib, numpy as np, numba, fastbp
rng = np.random.default_rng(0)
X = rng.standard_normal((600, 8)).astype(np.float32)
y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 0.5)
model = fastbp.Sequential([fastbp.Dense(32, activation="relu"), fastbp.Dense(16, activation="tanh"),
                           fastbp.Dense(3, activation="softmax")], seed=1)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(X, y, epochs=3, batch_size=64)
print(numba.get_num_threads(), hashlib.sha256(model.params.tobytes()).hexdigest())
"""


def run_with_threads(n):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(n))
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    threads, digest = result.stdout.split()
    assert int(threads) == n
    return digest


@pytest.mark.skipif(_threads.cores() < 2, reason="one core: nothing to compare")
def test_bit_identical_across_thread_counts_and_cache_loads():
    """The first process may compile and cache the parallel kernels with 2 threads; the next
    ones load that cache with 1 and 2 threads. Same weights, bit for bit, every time."""
    digests = {run_with_threads(2), run_with_threads(1), run_with_threads(2)}
    assert len(digests) == 1


def test_threading_layer_is_thread_safe():
    if _threads.LAYER is None:
        pytest.skip("no OpenMP or TBB here: fastbp trains serially")
    import numba
    X = np.random.default_rng(0).standard_normal((256, 4)).astype(np.float32)
    model = fastbp.Sequential([fastbp.Dense(8, activation="relu"), fastbp.Dense(1)], seed=0)
    model.compile(loss="mse")
    model.fit(X, X[:, 0], batch_size=64)
    if _threads.parallel(_threads.n_shards(64)):
        assert numba.threading_layer() in _threads.SAFE_LAYERS


def test_blas_is_restored_after_fitting():
    controllers = _threads._controllers()
    before = [c.get_num_threads() for c in controllers]
    with _threads.single_threaded_blas():
        with _threads.single_threaded_blas():
            assert all(c.get_num_threads() == 1 for c in controllers)
        assert all(c.get_num_threads() == 1 for c in controllers)
    assert [c.get_num_threads() for c in controllers] == before


def test_models_train_and_predict_concurrently_in_threads():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2000, 10)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)

    def make(seed):
        model = fastbp.Sequential([fastbp.Dense(32, activation="relu"),
                                   fastbp.Dense(2, activation="softmax")], seed=seed)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        return model

    sequential = []
    for seed in range(4):
        model = make(seed)
        model.fit(X, y, epochs=3, batch_size=32)
        sequential.append(model.params.copy())

    models = [make(seed) for seed in range(4)]
    errors = []

    def work(model):
        try:
            model.fit(X, y, epochs=3, batch_size=32)
            for _ in range(20):
                model.predict(X[:100])
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for model, expected in zip(models, sequential):
        np.testing.assert_array_equal(model.params, expected)


@pytest.mark.skipif(_threads.LAYER is None or _threads.n_shards(64) < 2,
                    reason="no parallel shards here")
def test_a_call_starting_mid_epoch_turns_the_remaining_batches_serial(monkeypatch):
    """A fit whose epoch began alone on the thread pool runs its batches serially while a
    call from another thread is under way, checked before every batch (that thread holds a
    core), then goes back to the pool; the weights are those of an undisturbed fit."""
    from fastbp import trainer
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300_000, 8)).astype(np.float32)  # an epoch of about 0.1 s
    y = X[:, 0] * X[:, 1]

    def fit():
        model = fastbp.Sequential([fastbp.Dense(64, activation="relu"),
                                   fastbp.Dense(64, activation="relu"), fastbp.Dense(1)], seed=0)
        model.compile(optimizer="adam", loss="mse")
        model.fit(X, y, epochs=1, batch_size=64, verbose=0)
        return model.params

    undisturbed = fit()
    epochs = []
    epoch = trainer.EpochRunner._epoch

    def spy(self, order, stats, hyper, parallel):
        status, t, parallel_batches = epoch(self, order, stats, hyper, parallel)
        epochs.append((parallel, parallel_batches, -(-len(order) // self.batch_size)))
        return status, t, parallel_batches

    monkeypatch.setattr(trainer.EpochRunner, "_epoch", spy)
    inside = threading.Event()

    def another_call():  # as a predict in another thread would: counted while it runs
        while _threads._running == 0:
            time.sleep(1e-4)
        time.sleep(0.005)
        with _threads.running():
            inside.set()
            time.sleep(0.01)

    other = threading.Thread(target=another_call)
    other.start()
    disturbed = fit()
    other.join()
    assert inside.is_set()
    (parallel, parallel_batches, batches), = epochs
    assert parallel and 0 < parallel_batches < batches, (parallel_batches, batches)
    np.testing.assert_array_equal(disturbed, undisturbed)


def drive(scheduler, seconds_per_way, epochs):
    """Run ``scheduler`` for ``epochs`` epochs whose times are ``seconds_per_way(epoch)``:
    a dict {parallel: seconds}; the ways it chose, in order."""
    ways = []
    for epoch in range(epochs):
        parallel = scheduler.choose()
        ways.append(parallel)
        scheduler.record(parallel, seconds_per_way(epoch)[parallel], 1000)
    return ways


def test_shard_scheduler_keeps_the_faster_way_and_probes_less_when_confirmed():
    quiet = {True: 1.0, False: 1.5}  # parallel faster
    ways = drive(_threads.ShardScheduler(1000, 16), lambda e: quiet, 80)
    assert ways[:4] == [True, False, True, True]  # warm-up, one epoch serial, two parallel
    serial_epochs = [e for e, w in enumerate(ways) if not w]
    assert serial_epochs == [1, 6, 10, 18, 34, 66]  # probes 2, 4, 8, 16, 32 epochs apart
    # a busy machine: serial faster from epoch 20 on -> switched within a probe or two
    busy = lambda e: quiet if e < 20 else {True: 3.0, False: 1.5}  # noqa: E731
    ways = drive(_threads.ShardScheduler(1000, 16), busy, 60)
    assert ways[20:22] == [True, True] and not any(ways[22:34])  # two slow epochs, then serial
    assert ways[22:].count(True) <= 2  # only probes


def test_shard_scheduler_is_not_turned_by_one_slow_epoch():
    """Parallel is faster, but its first timed epoch (and a later one) is slowed by another
    process: the scheduler stays parallel, apart from its probes."""
    def times(epoch):
        slow = epoch in (2, 20)
        return {True: 3.0 if slow else 1.0, False: 1.5}
    ways = drive(_threads.ShardScheduler(1000, 16), times, 40)
    assert [e for e, w in enumerate(ways) if not w] == [1, 6, 10, 18, 34]


def test_shard_scheduler_recovers_soon_from_a_disturbed_warm_up():
    """Both timed parallel epochs of the warm-up are slowed (another library's BLAS threads
    still spinning): serial is chosen, but the first probe, two epochs later, finds parallel
    faster and every later epoch runs parallel, apart from the probes."""
    def times(epoch):
        return {True: 3.0 if epoch in (2, 3) else 1.0, False: 1.5}
    ways = drive(_threads.ShardScheduler(1000, 16), times, 40)
    assert ways[:7] == [True, False, True, True, False, False, True]
    assert [e for e, w in enumerate(ways) if not w] == [1, 4, 5, 8, 12, 20, 36]


def test_shard_scheduler_always_parallel_for_coarse_shards():
    busy = {True: 3.0, False: 1.5}
    assert all(drive(_threads.ShardScheduler(10 ** 6, 256), lambda e: busy, 20))


def test_successive_fits_share_one_shard_scheduler():
    """A second ``fit`` of the same model and batch size carries on with the first one's
    timings (no new probe epochs); another batch size is another shape and starts afresh."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 6)).astype(np.float32)
    y = rng.integers(0, 3, 256)
    model = fastbp.Sequential([fastbp.Dense(8, activation="relu"),
                               fastbp.Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=2, batch_size=64, verbose=0)
    first = model._scheduler
    model.fit(X, y, epochs=3, batch_size=64, verbose=0)
    assert model._scheduler is first and first.epoch == 5
    model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    assert model._scheduler is not first and model._scheduler.epoch == 1
