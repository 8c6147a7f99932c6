"""Threads: results independent of the thread count, the cached kernels under different thread
counts, several models training and predicting at once from Python threads, the shard
scheduler, and the threads' own copies of the weights."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastbp
from fastbp import _threads, codes, engine, scheduler
from fastbp.kernels import clock

SCRIPT = """
import hashlib, numpy as np, fastbp
fastbp.scheduler.MIN_PARALLEL_FLOPS = 0  # threads for this small data set too
rng = np.random.default_rng(0)
X = rng.standard_normal((600, 8)).astype(np.float32)
y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 0.5)
model = fastbp.Sequential([fastbp.Dense(32, activation="relu"), fastbp.Dense(16, activation="tanh"),
                           fastbp.Dense(3, activation="softmax")], seed=1)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(X, y, epochs=3, batch_size=64, verbose=0)
print(fastbp.get_num_threads(), hashlib.sha256(model.params.tobytes()).hexdigest())
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
    """The first process may compile and cache the kernels with 2 threads; the next ones load
    that cache with 1 and 2 threads. Same weights, bit for bit, every time."""
    digests = {run_with_threads(2), run_with_threads(1), run_with_threads(2)}
    assert len(digests) == 1


def test_no_numba_threading_layer_is_started():
    """fastbp runs its own threads: training and predicting never start Numba's thread pool
    (OpenMP, TBB or workqueue), whose state a forked child cannot use."""
    script = ("import numpy as np, fastbp, numba.np.ufunc.parallel as p\n"
              "fastbp.scheduler.MIN_PARALLEL_FLOPS = 0\n"
              "X = np.random.default_rng(0).standard_normal((512, 4)).astype(np.float32)\n"
              "m = fastbp.Sequential([fastbp.Dense(8, activation='relu'), fastbp.Dense(1)])\n"
              "m.compile(loss='mse'); m.fit(X, X[:, 0], batch_size=64, verbose=0); m.predict(X)\n"
              "print(p._is_initialized)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


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
        model.fit(X, y, epochs=3, batch_size=32, verbose=0)
        sequential.append(model.params.copy())

    models = [make(seed) for seed in range(4)]
    errors = []

    def work(model):
        try:
            model.fit(X, y, epochs=3, batch_size=32, verbose=0)
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


def pinned_ways(parallel):
    """A ``ways`` array whose timings never count enough (``CK_MIN_SAMPLES``) for the loop to
    change way: ``parallel`` throughout, probes every ``CK_PROBE_FIRST`` when probing."""
    ways = np.zeros(codes.N_WAYS)
    ways[codes.W_PARALLEL] = float(parallel)
    ways[codes.W_PAR_N] = ways[codes.W_SER_N] = -1e9
    return ways


def spy_on_epochs(monkeypatch, force=None):
    """Record ``(threads, parallel, probe, parallel_batches, clock)`` of every compiled epoch;
    ``force`` = (parallel, probe) overrides the scheduler's choice (the way pinned)."""
    seen = []
    epoch = engine.NumbaBackend.train_epoch

    def spy(self, args, threads=1, ways=None, probe=0, clock=None, replicas=None):
        if force is not None:
            ways, probe = pinned_ways(force[0]), force[1]
        parallel = ways is None or bool(ways[codes.W_PARALLEL])
        result = epoch(self, args, threads, ways, probe, clock, replicas)
        seen.append((threads, parallel, probe, result[2],
                     None if clock is None else clock.copy()))
        return result

    monkeypatch.setattr(engine.NumbaBackend, "train_epoch", spy)
    return seen


@pytest.mark.skipif(_threads.n_shards(64) < 2, reason="no parallel shards here")
def test_a_call_starting_mid_epoch_turns_the_remaining_batches_serial(monkeypatch):
    """A fit whose epoch began on its threads dismisses its helper thread and runs its batches
    alone once a call from another thread is under way, checked before every batch (that
    thread holds a core); the weights are those of an undisturbed fit."""
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
    epochs = spy_on_epochs(monkeypatch, force=(True, 0))  # all parallel if alone, no probes
    inside = threading.Event()

    def another_call():  # as a predict in another thread would: counted while it runs
        while len(_threads._calls) == 0:
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
    (threads, parallel, _, parallel_batches, clock), = epochs
    batches = clock.shape[1]
    untimed = int((clock[codes.CK_WAY] == codes.CK_UNTIMED).sum())
    # the batches after the other call started: alone, and not timed
    assert threads == 2 and parallel and 0 < parallel_batches < batches, epochs
    # (the first paid for starting the helper; the rest while the other call ran)
    assert 1 < untimed <= batches - parallel_batches + 1
    np.testing.assert_array_equal(disturbed, undisturbed)


def drive(sched, cost, epochs, batches=1024, steps=None):
    """Run ``scheduler`` for ``epochs`` simulated epochs as the compiled loop does, with the
    loop's own choice (``kernels.clock``, run as Python): before each batch the way of the
    lower mean once both ways have enough timed batches, the other way for its probes; batch
    b of epoch e costing ``cost(e, b, parallel)`` ticks, untimed after a change of way and at
    an epoch's start. ``steps`` ([int]) carries the step counter over calls. Returns the way
    each batch ran, per epoch (lists of bools)."""
    choose_way, probe_batch = clock.choose_way.py_func, clock.probe_batch.py_func
    time_batch = clock.time_batch.py_func
    steps = [0] if steps is None else steps
    result = []
    for epoch in range(epochs):
        ways, probe = sched.ways(), sched.probe()
        record = np.zeros((codes.N_CK, batches))
        epoch_ways, last = [], None
        for b in range(batches):
            parallel, every = choose_way(ways, probe)
            par = parallel != probe_batch(every, steps[0])
            spent = cost(epoch, b, par)
            if par == last:
                time_batch(ways, par, spent)
            record[codes.CK_TICKS, b] = spent
            record[codes.CK_WAY, b] = (codes.CK_UNTIMED if par != last else
                                       codes.CK_PARALLEL if par else codes.CK_SERIAL)
            epoch_ways.append(par)
            last = par
            steps[0] += 1
        sched.record(record)
        result.append(epoch_ways)
    return result


def serial_share(epoch_ways):
    return 1 - sum(epoch_ways) / len(epoch_ways)


def serial_steps(epoch_ways):
    return [b for b, par in enumerate(epoch_ways) if not par]


def test_shard_scheduler_probes_a_few_batches_and_keeps_the_cheaper_way():
    """Parallel batches cheaper: the first epoch probes 4 serial batches in a row in every
    16 until 8 of them are timed (the first of each run is untimed), then 4 in every
    128 x 1.5 (the serial way is 1.5x dearer); a busy machine from epoch 5 on: the loop goes
    serial within that epoch, and later epochs probe the parallel way 4 steps in 128 x 3."""
    quiet = lambda e, b, par: 1000.0 if par else 1500.0  # noqa: E731
    ways = drive(scheduler.ShardScheduler(1000, 16), quiet, 3)
    # the 8th timed serial batch is step 46: the loop compares from then on
    assert serial_steps(ways[0])[:11] == [12, 13, 14, 15, 28, 29, 30, 31, 44, 45, 46]
    assert serial_steps(ways[0])[11:15] == [188, 189, 190, 191]  # 192 = 128 x 1.5
    assert all(abs(serial_share(w) - 4 / 192) < 0.003 for w in ways[1:])
    busy = lambda e, b, par: 1000.0 if par and e < 5 else 3000.0 if par else 1500.0  # noqa: E731
    ways = drive(scheduler.ShardScheduler(1000, 16), busy, 8)
    assert all(serial_share(w) < 0.03 for w in ways[1:5])
    assert 0.2 < serial_share(ways[5]) < 0.9  # switched within epoch 5
    assert all(serial_share(w) > 0.97 for w in ways[6:])


def test_a_fit_starting_on_a_busy_machine_goes_serial_in_its_first_epoch():
    """Parallel batches dearer from the start: serial after the 3 probe runs that time 8 of
    them, within the first 48 steps, and the later probes (4 parallel steps) rare: one run in
    128 x 3 steps."""
    busy = lambda e, b, par: 3000.0 if par else 1000.0  # noqa: E731
    ways = drive(scheduler.ShardScheduler(1000, 16), busy, 2)
    assert not any(ways[0][48:48 + 300])
    assert serial_share(ways[1]) > 1 - 4 / 384 - 0.003


@pytest.mark.skipif(_threads.n_shards(64) < 2, reason="no parallel shards here")
@pytest.mark.parametrize("parallel", [True, False])
def test_epoch_loop_runs_probes_in_a_row_and_does_not_time_the_batch_after_a_switch(
        parallel, monkeypatch):
    """An epoch whose way is pinned (its timings never enough to compare): steps 12-15 of
    every 16 the other way, the rest the epoch's way; each batch's ticks recorded, but a batch whose predecessor ran the
    other way is untimed (it pays for the switch), and so is the first (it pays for starting
    the helper thread)."""
    from fastbp.kernels import fpmode
    monkeypatch.setattr(scheduler, "MIN_PARALLEL_FLOPS", 0)
    epochs = spy_on_epochs(monkeypatch, force=(parallel, 16))
    rng = np.random.default_rng(5)
    X = rng.standard_normal((64 * 100, 8)).astype(np.float32)
    model = fastbp.Sequential([fastbp.Dense(16, activation="relu"), fastbp.Dense(1)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, X[:, 0], epochs=1, batch_size=64, verbose=0)
    (threads, _, probe, parallel_batches, clock), = epochs
    assert threads == 2 and probe == codes.CK_PROBE_FIRST == 16
    steps = np.arange(100)
    together = (steps % 16 >= 16 - codes.CK_PROBE_RUN) != parallel
    switched = np.r_[True, together[1:] != together[:-1]]
    expected = np.where(switched, codes.CK_UNTIMED,
                        np.where(together, codes.CK_PARALLEL, codes.CK_SERIAL))
    np.testing.assert_array_equal(clock[codes.CK_WAY], expected)
    assert parallel_batches == together.sum()
    if fpmode.X86:
        assert np.all(clock[codes.CK_TICKS] > 0)


def test_long_batches_need_one_probe_run():
    """Batches of 1e8 ticks (tens of milliseconds: a wide network): 2 timed serial batches
    are enough, so the first epoch of a quiet machine runs 3 of its batches serially (the
    first untimed), not 11; a busy one goes serial after the first probe run."""
    quiet = lambda e, b, par: 1e8 if par else 1.8e8  # noqa: E731
    ways = drive(scheduler.ShardScheduler(10 ** 6, 256), quiet, 1, batches=39)
    assert serial_steps(ways[0]) == [12, 13, 14]
    busy = lambda e, b, par: 1.2e8 if par else 1e8  # noqa: E731
    ways = drive(scheduler.ShardScheduler(10 ** 6, 256), busy, 1, batches=39)
    assert not any(ways[0][16:])


def test_shard_scheduler_counts_the_batches_a_busy_machine_stretches():
    """A tenth of the parallel batches wait tenfold at the barrier (a descheduled thread): the
    typical parallel batch is cheaper than a serial one, the average one is dearer, and the
    epoch's time is the sum: the scheduler goes serial. With the stretch rarer (one in 50)
    parallel stays."""
    def cost(every):
        return lambda e, b, par: (10000.0 if b % every == 3 else 1000.0) if par else 1500.0
    ways = drive(scheduler.ShardScheduler(1000, 16), cost(10), 3)
    assert all(serial_share(w) > 0.95 for w in ways[1:])
    ways = drive(scheduler.ShardScheduler(1000, 16), cost(50), 3)
    assert all(serial_share(w) < 0.05 for w in ways[1:])


def test_shard_scheduler_forgets_timings_older_than_its_horizon():
    """Under a CPU hog (epochs 1-4), parallel batches cost 100 times a serial one and the
    loop goes serial, probing parallel rarely (64 x 128 steps); once the hog stops, the hog's
    timings drop out of the horizon, the loop probes again every 16 steps until it has 8
    new timings, and parallel is back within the next epoch."""
    def cost(epoch, b, par):
        if par:
            return 100000.0 if 1 <= epoch <= 4 else 1000.0
        return 1500.0
    ways = drive(scheduler.ShardScheduler(1000, 16), cost, 9, batches=1024)
    assert serial_share(ways[0]) < 0.05
    assert all(serial_share(w) > 0.95 for w in ways[2:5])  # serial under the hog
    assert serial_share(ways[5]) < 0.1 and all(serial_share(w) < 0.05 for w in ways[6:])


def test_shard_scheduler_needs_a_few_batches_of_each_way_to_switch():
    """Short epochs (20 batches): each times 3 serial batches of a probe run (4 in a row in
    16 steps, the first untimed); they add up over epochs, and the loop goes serial once it
    has 8, in the third epoch."""
    cost = lambda e, b, par: 3000.0 if par else 1000.0  # noqa: E731
    sched, steps = scheduler.ShardScheduler(1000, 16), [0]
    drive(sched, cost, 1, batches=20, steps=steps)
    assert sched.choose() and len(sched.samples[False]) == 3
    drive(sched, cost, 1, batches=20, steps=steps)  # steps 28-31
    assert sched.choose() and len(sched.samples[False]) == 6
    ways = drive(sched, cost, 1, batches=20, steps=steps)  # steps 44-47, then serial
    assert not sched.choose() and not any(ways[0][8:])


def test_shard_scheduler_adapts_coarse_shards_too_and_stays_parallel_without_a_counter():
    """Coarse shards (a wide network) go serial on a busy machine as fine ones do: with the
    other core taken, a parallel batch waits for it whatever its size. Without a cycle
    counter every batch reads 0 ticks: parallel, and no more probes."""
    busy = lambda e, b, par: 3000.0 if par else 1500.0  # noqa: E731
    sched = scheduler.ShardScheduler(10 ** 6, 256)
    assert sched.probe() > 0
    assert serial_share(drive(sched, busy, 2)[1]) > 0.97
    no_counter = lambda e, b, par: 0.0  # noqa: E731
    sched = scheduler.ShardScheduler(1000, 16)
    drive(sched, no_counter, 1)
    assert sched.probe() == 0 and sched.choose()


def test_threads_copy_the_weights_for_two_fine_shards_of_a_small_network():
    assert scheduler.replicate(18_817, 16, 2)  # reg
    assert scheduler.replicate(7_434, 32, 2)  # small
    assert not scheduler.replicate(93_002, 128, 2)  # medium: coarse shards
    assert not scheduler.replicate(18_817, 16, 3)  # measured with two shards only
    assert not scheduler.replicate(scheduler.REPLICA_MAX_PARAMS + 1, 1, 2)


def test_successive_fits_share_one_shard_scheduler(monkeypatch):
    """A second ``fit`` of the same model and batch size carries on with the first one's
    timings (no new probe epochs); another batch size is another shape and starts afresh."""
    monkeypatch.setattr(scheduler, "MIN_PARALLEL_FLOPS", 0)
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


@pytest.mark.skipif(_threads.n_shards(64) < 2, reason="no parallel shards here")
def test_threads_give_the_bits_of_one_thread(monkeypatch):
    """Batches on two threads meeting at barriers, on shared weights and on a copy per thread,
    against one thread running both shards: the same weights and losses, with dropout, a
    per-step learning-rate schedule, L2 and diagnostics; global-norm clipping (a third
    barrier); a loss that turns infinite mid-epoch stops at the same batch. The threads' copies
    stay equal and the leader's comes back into the model."""
    monkeypatch.setattr(scheduler, "MIN_PARALLEL_FLOPS", 0)
    epochs = spy_on_epochs(monkeypatch, force=(True, 0))
    rng = np.random.default_rng(3)
    X = rng.standard_normal((64 * 40 + 17, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    schedule = fastbp.schedules.CosineDecay(0.01, decay_steps=100, unit="step")
    cases = [(lambda: fastbp.optimizers.Adam(schedule), False),
             (lambda: fastbp.optimizers.Adam(0.01), True),
             (lambda: fastbp.optimizers.SGD(0.05, momentum=0.9, global_clipnorm=0.5), False),
             (lambda: fastbp.optimizers.SGD(3e5), False)]
    for make_optimizer, diagnostics in cases:
        results = []
        for threads, own in ((2, True), (2, False), (1, False)):
            monkeypatch.setattr(scheduler, "replicate", lambda n, rows, shards, own=own: own)
            model = fastbp.Sequential([fastbp.Dense(32, activation="relu", l2=1e-3),
                                       fastbp.Dropout(0.2), fastbp.Dense(2, activation="softmax")],
                                      seed=7)
            model.compile(optimizer=make_optimizer(), loss="categorical_crossentropy",
                          metrics=["accuracy"])
            with _threads.limit(threads):
                try:
                    history = model.fit(X, y, epochs=2, batch_size=64, verbose=0,
                                        diagnostics=diagnostics).history
                except fastbp.NonFiniteLossError as error:
                    history = str(error)
            results.append((model.params.copy(), history))
        one_params, one_history = results[-1]
        for params, history in results[:-1]:
            np.testing.assert_array_equal(params, one_params)
            assert history == one_history
    assert isinstance(one_history, str) and "batch" in one_history
    # every batch of the two-thread epochs that did not diverge ran on both threads
    assert sum(threads == 2 and batches == 41 for threads, _, _, batches, _ in epochs) == 12


FORKED = """
import multiprocessing, warnings, numpy as np, joblib, fastbp
from fastbp import MLPClassifier
fastbp.scheduler.MIN_PARALLEL_FLOPS = 0  # threads in the parent and in every child
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
X = rng.standard_normal((800, 6)).astype(np.float32)
y = (X[:, 0] * X[:, 1] > 0).astype(int)

def job(seed):
    return MLPClassifier(hidden_layer_sizes=(32,), random_state=seed, max_iter=5,
                         batch_size=64).fit(X, y).score(X, y)

parent = job(0)  # the parent trains on its threads first
with multiprocessing.get_context("fork").Pool(2) as pool:
    forked = pool.map(job, [0, 1, 2])
joblib_scores = joblib.Parallel(n_jobs=2, backend="multiprocessing")(
    joblib.delayed(job)(seed) for seed in [0, 3])
print(forked[0] == parent and joblib_scores[0] == parent, len(forked) + len(joblib_scores))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_workers_train_after_the_parent_did():
    """The parent fits on its threads, then a fork pool and joblib's "multiprocessing" backend
    fit in children: every child trains (same result as the parent for the same seed), none
    hangs. (With Numba's OpenMP pool, each child aborted: "fork() called from a process
    already using GNU OpenMP", and the pool never returned.)"""
    result = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "5"], result.stdout


SAME_BITS = """
import hashlib, sys, threading, numpy as np, fastbp
rng = np.random.default_rng(0)
X = rng.standard_normal((3000, 64)).astype(np.float32)
y = (X[:, :8].sum(axis=1) > 0).astype(int) + (X[:, 8] > 0)

def fit():
    model = fastbp.Sequential([fastbp.Dense(256, activation="relu"),
                               fastbp.Dense(256, activation="relu"),
                               fastbp.Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(X, y, epochs=3, batch_size=256, verbose=0)
    return hashlib.sha256(model.params.tobytes()).hexdigest()

digests = [fit()]
if sys.argv[1] == "threads":  # three fits at once from Python threads
    out = []
    workers = [threading.Thread(target=lambda: out.append(fit())) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    digests += out
print(*digests)
"""


@pytest.mark.skipif(_threads.n_shards(256) < 2, reason="one shard here")
def test_a_256_256_network_has_the_same_bits_whatever_the_threads():
    """The same fit with the default threads, with one thread, with BLAS held to one thread by
    its own variable, and three at once in Python threads: the same weights, bit for bit.
    (Before, BLAS's own thread count leaked into the sums: up to 6.6e-7 apart.)"""
    runs = {"default": {}, "one thread": {"NUMBA_NUM_THREADS": "1"},
            "OpenBLAS one thread": {"OPENBLAS_NUM_THREADS": "1"},
            "OpenBLAS four threads": {"OPENBLAS_NUM_THREADS": "4"}}
    digests = set()
    for name, env in runs.items():
        result = subprocess.run([sys.executable, "-c", SAME_BITS, "threads" if name == "default"
                                 else "alone"], capture_output=True, text=True, timeout=600,
                                env={**os.environ, **env})
        assert result.returncode == 0, result.stderr
        digests.update(result.stdout.split())
    assert len(digests) == 1, digests


def test_predictions_do_not_depend_on_the_thread_count():
    """A row's outputs are the same bits with 1, 2 or 3 threads and while another call is
    under way (each thread predicts whole chunks, and the chunks depend on the rows only)."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((5000, 30)).astype(np.float32)
    model = fastbp.Sequential([fastbp.Dense(64, activation="relu"),
                               fastbp.Dense(3, activation="softmax")], seed=0)
    model.compile(loss="categorical_crossentropy")
    model.fit(X[:100], rng.integers(0, 3, 100), epochs=1, verbose=0)
    outputs = []
    for threads in (1, 2, 3):
        with _threads.limit(threads):
            outputs.append(model.predict(X))
    with _threads.running():  # as if another fit were under way: one thread
        outputs.append(model.predict(X))
    for other in outputs[1:]:
        np.testing.assert_array_equal(other, outputs[0])


def test_an_epoch_too_short_for_threads_runs_one_shard(monkeypatch):
    """Below ``MIN_PARALLEL_FLOPS`` an epoch runs on one thread, and with one shard (shards
    run one after the other pay their fixed work once each); above, one shard per core (at
    most one per 16 rows). Neither depends on the thread count."""
    from fastbp import trainer
    shards = []
    init = trainer.EpochRunner.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        shards.append((self.shards, self.threaded))

    monkeypatch.setattr(trainer.EpochRunner, "__init__", spy)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 8)).astype(np.float32)
    for threads in (1, 2):
        with _threads.limit(threads):
            model = fastbp.Sequential([fastbp.Dense(16, activation="relu"), fastbp.Dense(1)])
            model.compile(optimizer="adam", loss="mse")
            model.fit(X, X[:, 0], epochs=1, batch_size=64, verbose=0)
    assert shards == [(1, False), (1, False)]
    monkeypatch.setattr(scheduler, "MIN_PARALLEL_FLOPS", 0)
    model.fit(X, X[:, 0], epochs=1, batch_size=64, verbose=0)
    assert shards[-1] == (_threads.n_shards(64), _threads.n_shards(64) > 1)


def helper_names():
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("fastbp-"))


def test_helper_threads_are_kept_between_calls_and_run_every_part():
    """``_threads.run`` runs part 0 on the caller and part s on helper s; the helpers stay
    for the next call (the same threads), and an error in a helper reaches the caller, after
    which the helpers still serve."""

    def kernel(s, out):
        out[s] = threading.get_ident()
        return int(s)

    out = np.zeros(3, np.int64)
    assert _threads.run(kernel, 3, (out,)) == 0
    first = out.copy()
    assert out[0] == threading.get_ident() and len(set(out)) == 3
    _threads.run(kernel, 3, (out,))
    assert (out == first).all()  # the same helper threads
    assert helper_names() == ["fastbp-1", "fastbp-2"]

    def failing(s):
        if s == 1:
            raise ZeroDivisionError("in helper 1")

    with pytest.raises(ZeroDivisionError, match="in helper 1"):
        _threads.run(failing, 2, ())
    _threads.run(kernel, 3, (out,))
    assert (out == first).all()


def test_a_call_while_the_kept_helpers_are_busy_gets_helpers_of_its_own_that_leave():
    """Two Python threads each make a call on two threads at once: the second takes helpers
    of its own, which leave after its call; the kept ones stay."""
    _threads.run(lambda s: None, 2, ())  # the kept helper exists
    kept = helper_names()
    inside, release = threading.Event(), threading.Event()

    def holding(s):
        if s == 0:
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=_threads.run, args=(holding, 2, ()))
    holder.start()
    assert inside.wait(10)
    parts = []
    _threads.run(lambda s: parts.append(int(s)), 2, ())
    assert sorted(parts) == [0, 1]
    release.set()
    holder.join(10)
    deadline = time.monotonic() + 10
    while helper_names() != kept and time.monotonic() < deadline:
        time.sleep(0.01)
    assert helper_names() == kept


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_starts_helpers_of_its_own():
    """The parent's kept helpers do not exist in a forked child: its first call on two
    threads starts its own (a child waiting on the parent's would hang)."""
    _threads.run(lambda s: None, 2, ())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the parts that ran, then leave at once
        try:
            parts = []
            _threads.run(lambda s: parts.append(int(s)), 2, ())
            os.write(write, bytes(sorted(parts)))
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 30
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in its first call on two threads")
        time.sleep(0.01)
    assert os.read(read, 16) == bytes([0, 1])
    os.close(read)
