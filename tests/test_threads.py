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
from fastbp import _threads, codes

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

    def spy(self, order, stats, hyper, parallel, probe=0):  # no probes: all parallel if alone
        status, t, parallel_batches = epoch(self, order, stats, hyper, parallel, 0)
        untimed = int((self.clock[codes.CK_WAY] == codes.CK_UNTIMED).sum())
        epochs.append((parallel, parallel_batches, untimed, -(-len(order) // self.batch_size)))
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
    (parallel, parallel_batches, untimed, batches), = epochs
    # batches run while the other call was under way: serial, and not timed
    assert parallel and 0 < parallel_batches < batches and 0 < untimed < batches, epochs
    np.testing.assert_array_equal(disturbed, undisturbed)


def drive(scheduler, cost, epochs, batches=1024, steps=None):
    """Run ``scheduler`` for ``epochs`` simulated epochs as the compiled loop would: the way it
    chooses, the other way for its probes (``CK_PROBE_RUN`` steps in a row in every
    ``probe``), batch b of epoch e costing ``cost(e, b, parallel)`` ticks, untimed after a
    change of way. ``steps`` ([int]) carries the step counter over calls. Returns the way
    each batch ran, per epoch (lists of bools)."""
    steps = [0] if steps is None else steps
    ways, last = [], None
    for epoch in range(epochs):
        parallel, probe = scheduler.choose(), scheduler.probe()
        clock = np.zeros((codes.N_CK, batches))
        epoch_ways = []
        for b in range(batches):
            par = parallel != (probe > 0 and steps[0] % probe >= probe - codes.CK_PROBE_RUN)
            clock[codes.CK_TICKS, b] = cost(epoch, b, par)
            clock[codes.CK_WAY, b] = (codes.CK_UNTIMED if par != last else
                                      codes.CK_PARALLEL if par else codes.CK_SERIAL)
            epoch_ways.append(par)
            last = par
            steps[0] += 1
        scheduler.record(clock)
        ways.append(epoch_ways)
    return ways


def serial_share(epoch_ways):
    return 1 - sum(epoch_ways) / len(epoch_ways)


def test_shard_scheduler_probes_a_few_batches_and_keeps_the_cheaper_way():
    """Parallel batches cheaper: a quarter of the first epoch's batches run serially, four
    in a row, then one in 32; serial cheaper (a busy machine, from epoch 5): the next epoch
    is serial but for one batch in 32, which run in parallel."""
    quiet = lambda e, b, par: 1000.0 if par else 1500.0  # noqa: E731
    ways = drive(_threads.ShardScheduler(1000, 16), quiet, 8)
    assert serial_share(ways[0]) == 0.25 and ways[0][8:16] == [True] * 4 + [False] * 4
    assert all(serial_share(w) == 1 / 32 for w in ways[1:])
    busy = lambda e, b, par: 1000.0 if par and e < 5 else 3000.0 if par else 1500.0  # noqa: E731
    ways = drive(_threads.ShardScheduler(1000, 16), busy, 10)
    assert all(serial_share(w) == 1 / 32 for w in ways[1:6])
    assert all(serial_share(w) == 1 - 1 / 32 for w in ways[6:])  # switched after epoch 5


@pytest.mark.skipif(_threads.LAYER is None or _threads.n_shards(64) < 2,
                    reason="no parallel shards here")
def test_epoch_loop_runs_probes_in_a_row_and_does_not_time_the_batch_after_a_switch(monkeypatch):
    """The first epoch of a fine-grained model: steps 12-15 of every 16 serial, the rest
    parallel; each batch's ticks recorded, but a batch whose predecessor ran the other way is
    untimed (it pays for the switch: waking the pool's threads after a run of serial batches
    cost more than a batch on a busy machine, and would keep parallel from coming back)."""
    from fastbp import trainer
    from fastbp.kernels import fpmode
    clocks = []
    epoch = trainer.EpochRunner._epoch

    def spy(self, order, stats, hyper, parallel, probe=0):
        out = epoch(self, order, stats, hyper, parallel, probe)
        clocks.append((parallel, probe, self.clock.copy()))
        return out

    monkeypatch.setattr(trainer.EpochRunner, "_epoch", spy)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((64 * 100, 8)).astype(np.float32)
    model = fastbp.Sequential([fastbp.Dense(16, activation="relu"), fastbp.Dense(1)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, X[:, 0], epochs=1, batch_size=64, verbose=0)
    (parallel, probe, clock), = clocks
    assert parallel and probe == _threads.ShardScheduler.PROBE_FIRST == 16
    steps = np.arange(100)
    serial = steps % 16 >= 16 - codes.CK_PROBE_RUN
    switched = np.r_[True, serial[1:] != serial[:-1]]
    expected = np.where(switched, codes.CK_UNTIMED,
                        np.where(serial, codes.CK_SERIAL, codes.CK_PARALLEL))
    np.testing.assert_array_equal(clock[codes.CK_WAY], expected)
    if fpmode.X86:
        assert np.all(clock[codes.CK_TICKS] > 0)


def test_shard_scheduler_counts_the_batches_a_busy_machine_stretches():
    """A tenth of the parallel batches wait tenfold at the barrier (a descheduled thread): the
    typical parallel batch is cheaper than a serial one, the average one is dearer, and the
    epoch's time is the sum: the scheduler goes serial. With the stretch rarer (one in 50)
    parallel stays."""
    def cost(every):
        return lambda e, b, par: (10000.0 if b % every == 3 else 1000.0) if par else 1500.0
    ways = drive(_threads.ShardScheduler(1000, 16), cost(10), 4)
    assert all(serial_share(w) == 1 - 1 / 32 for w in ways[1:])
    ways = drive(_threads.ShardScheduler(1000, 16), cost(50), 4)
    assert all(serial_share(w) == 1 / 32 for w in ways[1:])


def test_shard_scheduler_forgets_timings_older_than_its_horizon():
    """Under a CPU hog, parallel batches cost 100 times a serial one and the scheduler goes
    serial; once the hog stops, its probes' new timings, no longer outweighed by the hog's
    (dropped after ``HORIZON`` steps), bring parallel back within two epochs."""
    def cost(epoch, b, par):
        if par:
            return 100000.0 if 1 <= epoch <= 4 else 1000.0
        return 1500.0
    ways = drive(_threads.ShardScheduler(1000, 16), cost, 9, batches=1024)
    assert serial_share(ways[1]) == 1 / 32  # parallel, under the hog
    assert all(serial_share(w) == 1 - 1 / 32 for w in ways[2:6])  # serial
    assert serial_share(ways[7]) == 1 / 32 and serial_share(ways[8]) == 1 / 32  # back by epoch 7


def test_shard_scheduler_needs_a_few_batches_of_each_way_to_switch():
    """Short epochs (20 batches): the first, probed at a quarter, times 3 serial batches (4
    in a row, the first untimed), too few to turn the choice; later probes (4 steps in 128)
    fall in every sixth epoch or so and add up until there are enough."""
    cost = lambda e, b, par: 3000.0 if par else 1000.0  # noqa: E731
    scheduler, steps = _threads.ShardScheduler(1000, 16), [0]
    drive(scheduler, cost, 1, batches=20, steps=steps)
    assert scheduler.choose() and len(scheduler.samples[False]) == 3
    drive(scheduler, cost, 6, batches=20, steps=steps)  # steps 124-127 in epoch 6
    assert scheduler.choose() and len(scheduler.samples[False]) == 6
    drive(scheduler, cost, 6, batches=20, steps=steps)  # steps 252-255 in epoch 12
    assert not scheduler.choose()


def test_shard_scheduler_always_parallel_for_coarse_shards_or_without_a_cycle_counter():
    busy = lambda e, b, par: 3000.0 if par else 1500.0  # noqa: E731
    scheduler = _threads.ShardScheduler(10 ** 6, 256)
    assert scheduler.probe() == 0
    assert all(all(w) for w in drive(scheduler, busy, 5))
    no_counter = lambda e, b, par: 0.0  # noqa: E731
    scheduler = _threads.ShardScheduler(1000, 16)
    drive(scheduler, no_counter, 1)
    assert scheduler.probe() == 0 and scheduler.choose()


def test_threads_copy_the_weights_for_two_fine_shards_of_a_small_network():
    assert _threads.replicate(18_817, 16, 2)  # reg
    assert _threads.replicate(7_434, 32, 2)  # small
    assert not _threads.replicate(93_002, 128, 2)  # medium: coarse shards
    assert not _threads.replicate(18_817, 16, 3)  # measured with two shards only
    assert not _threads.replicate(_threads.REPLICA_MAX_PARAMS + 1, 1, 2)


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


ONE_REGION = """
import numba, numpy as np, fastbp
from fastbp import _threads, trainer
numba.set_num_threads(1)
_threads.parallel = lambda shards: True  # shards on the pool, which has one thread
epoch, seen = trainer.EpochRunner._epoch, []

def spy(self, order, stats, hyper, parallel, probe=0):  # all parallel, no probes
    status, t, parallel_batches = epoch(self, order, stats, hyper, True, 0)
    outcome = self.sync[2 * self.shards * 16:][:2]
    seen.append((int(outcome[0]), int(outcome[1]), parallel_batches, len(self.sync) > 0))
    return status, t, parallel_batches

trainer.EpochRunner._epoch = spy
rng = np.random.default_rng(0)
X = rng.standard_normal((640, 8)).astype(np.float32)
params = []
for region in (True, False):
    _threads.one_region = lambda shards, region=region: region
    model = fastbp.Sequential([fastbp.Dense(16, activation="relu"), fastbp.Dense(1)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, X[:, 0], epochs=2, batch_size=64)
    params.append(model.params)
print(int(np.array_equal(*params)), *seen[:2])
"""


@pytest.mark.skipif(_threads.LAYER is None or _threads.n_shards(64) < 2,
                    reason="no parallel shards here")
def test_a_region_whose_threads_cannot_all_run_gives_up_and_trains_the_usual_way():
    """One Numba thread for two shards: the region's two iterations run one after the other
    on one thread, so its barrier would wait forever. The first waits a few milliseconds for
    the second, gives up, and the epoch goes on with a launch per batch: same weights."""
    result = subprocess.run([sys.executable, "-c", ONE_REGION], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    # same weights; in each epoch the region ran no batch (outcome: OK, first batch not run
    # 0) and all 10 batches ran in parallel the usual way
    assert result.stdout.strip() == "1 (-1, 0, 10, True) (-1, 0, 10, True)", result.stdout


@pytest.mark.skipif(not _threads.one_region(_threads.n_shards(64)),
                    reason="no single-region epochs here")
def test_one_region_per_run_of_batches_gives_the_same_bits(monkeypatch):
    """Parallel batches in one region (threads meeting at a spin barrier), on shared weights
    and on a copy per thread, against two launches per batch: the same weights and losses,
    with dropout, a per-step learning-rate schedule, L2 and diagnostics; global-norm clipping
    (which goes the usual way); a loss that turns infinite mid-epoch stops at the same batch.
    The region ran the whole epoch; the threads' copies stayed equal and the leader's came
    back into the model."""
    from fastbp import trainer
    outcomes, copies = [], []
    epoch = trainer.EpochRunner._epoch

    def spy(self, order, stats, hyper, parallel, probe=0):  # all parallel, no probes
        result = epoch(self, order, stats, hyper, True, 0)
        outcomes.append((int(self.sync[2 * self.shards * 16 + 1]), -(-len(order) // 64)))
        if self.replicas.size and result[0] == codes.OK:
            n = len(self.params)
            copies.append(bool(np.array_equal(self.replicas[0], self.replicas[1])
                               and np.array_equal(self.replicas[0, :n], self.params)
                               and np.array_equal(self.replicas[0, n:], self.state.ravel())))
        return result

    monkeypatch.setattr(trainer.EpochRunner, "_epoch", spy)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((64 * 40 + 17, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    schedule = fastbp.schedules.CosineDecay(0.01, decay_steps=100, unit="step")
    cases = [(lambda: fastbp.optimizers.Adam(schedule), False),
             (lambda: fastbp.optimizers.SGD(0.05, momentum=0.9, global_clipnorm=0.5), True),
             (lambda: fastbp.optimizers.SGD(3e5), False)]
    for make_optimizer, diagnostics in cases:
        results = []
        for region, own in ((True, True), (True, False), (False, False)):
            monkeypatch.setattr(_threads, "one_region", lambda shards, region=region: region)
            monkeypatch.setattr(_threads, "replicate", lambda n, rows, shards, own=own: own)
            model = fastbp.Sequential([fastbp.Dense(32, activation="relu", l2=1e-3),
                                       fastbp.Dropout(0.2), fastbp.Dense(2, activation="softmax")],
                                      seed=7)
            model.compile(optimizer=make_optimizer(), loss="categorical_crossentropy",
                          metrics=["accuracy"])
            try:
                history = model.fit(X, y, epochs=2, batch_size=64,
                                    diagnostics=diagnostics).history
            except fastbp.NonFiniteLossError as error:
                history = str(error)
            results.append((model.params.copy(), history))
        usual_params, usual_history = results[-1]
        for region_params, region_history in results[:-1]:
            np.testing.assert_array_equal(region_params, usual_params)
            assert region_history == usual_history
    assert isinstance(usual_history, str) and "batch" in usual_history
    assert outcomes[0] == (41, 41)  # the first epoch: one region from batch 0 to the end
    assert copies == [True] * 2  # the schedule's two epochs (diagnostics: no copies)
