"""A batch split by units (``kernels.units``) against its NumPy twin, against the row-shard
split, and on two threads against one."""

import numpy as np
import pytest
from conftest import Net, epoch_args, loss_param, targets_for

import fastbp
from fastbp import _threads, codes, engine, scheduler, trainer
from fastbp.kernels import units as k_units
from fastbp.layout import Layout
from fastbp.reference import units as r_units

SPECS = {
    "relu-tanh": [(40, "relu"), (70, "tanh"), (3, "softmax")],
    "elu-sigmoid": [(33, "elu"), (16, "sigmoid"), (2, "sigmoid")],
    "one-hidden": [(100, "leaky_relu"), (1, "linear")],
}
LOSSES = {"relu-tanh": "categorical_crossentropy", "elu-sigmoid": "binary_crossentropy",
          "one-hidden": "squared_error"}


@pytest.mark.parametrize("n", [1, 15, 16, 17, 40, 100, 512])
@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_unit_blocks_cover_the_layer_in_whole_groups(n, parts):
    blocks = [k_units.units.py_func(n, parts, s) for s in range(parts)]
    assert blocks == [r_units.units(n, parts, s) for s in range(parts)]
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    for (lo, hi), (lo2, _) in zip(blocks, blocks[1:]):
        assert hi == lo2 and (lo % k_units.UNIT_GROUP == 0 or lo == n)
    assert k_units.n_meetings.py_func(3) == 6


def one_batch(net, X, Y, labels, sw, rows, loss, p, backend, shards, by_units, threads=1,
              l2=0.0):
    args, buf = epoch_args(net, X, Y, labels, sw, rows, len(rows), loss, p, shards=shards,
                           acc_kind=codes.ACC_ARGMAX if loss == "categorical_crossentropy"
                           else codes.ACC_NONE, by_units=by_units)
    if backend == "numba":
        engine.get("numba").train_epoch(args, threads)
    else:
        engine.get("numpy").train_epoch(args)
    return buf


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_units_gradient_against_the_reference_and_the_row_shards(spec, parts, weighted, rng):
    """One batch (``NO_STEP``, L2 on): the compiled gradient, loss and metric sums split by
    units against the NumPy twin in float64, which equals the row-shard split's gradient up
    to float64 rounding (the same math cut another way)."""
    net = Net(9, SPECS[spec], rng, l2=1e-2)
    loss = LOSSES[spec]
    k = net.layout.n_outputs
    Y, labels = targets_for(loss, "softmax", 60, k, rng, sparse=True)
    X = rng.standard_normal((60, 9)).astype(np.float32)
    sw = rng.uniform(0.2, 2.0, 60).astype(np.float32) if weighted else np.zeros(0, np.float32)
    rows = np.sort(rng.permutation(60)[:37]).astype(np.int64)
    p = loss_param(loss, k, norm_by_weight=float(weighted))
    comp = one_batch(net, X, Y, labels, sw, rows, loss, p, "numba", parts, True)
    ref_net = net.astype(np.float64)
    f64 = (X.astype(np.float64), Y.astype(np.float64), labels, sw.astype(np.float64))
    ref = one_batch(ref_net, *f64, rows, loss, p, "numpy", parts, True)
    by_rows = one_batch(net.astype(np.float64), *f64, rows, loss, p, "numpy", parts, False)
    np.testing.assert_allclose(comp["grads"][0], ref["grads"][0], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(comp["stats"], ref["stats"], rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(ref["grads"][0], by_rows["grads"][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref["stats"].sum(0), by_rows["stats"].sum(0), rtol=1e-10)


@pytest.mark.skipif(_threads.cores() < 2, reason="one core: no second thread to meet")
@pytest.mark.parametrize("spec", sorted(SPECS))
def test_units_on_two_threads_give_the_bits_of_one(spec, rng):
    """The same batch split by units, two threads meeting at every layer against one thread
    running both blocks: the same gradient and sums, bit for bit."""
    net = Net(9, SPECS[spec], rng)
    loss = LOSSES[spec]
    k = net.layout.n_outputs
    Y, labels = targets_for(loss, "softmax", 60, k, rng, sparse=True)
    X = rng.standard_normal((60, 9)).astype(np.float32)
    sw = np.zeros(0, np.float32)
    rows = np.arange(5, 42, dtype=np.int64)
    p = loss_param(loss, k)
    two = one_batch(net, X, Y, labels, sw, rows, loss, p, "numba", 2, True, threads=2)
    one = one_batch(net, X, Y, labels, sw, rows, loss, p, "numba", 2, True, threads=1)
    np.testing.assert_array_equal(two["grads"], one["grads"])
    np.testing.assert_array_equal(two["stats"], one["stats"])


def test_which_networks_and_batches_split_by_units():
    """Row shards of at most 32 rows and 4 MFLOP a meeting: 512 units on 256 inputs at batch 32
    (6.4 MFLOP a meeting) and 64 on two shards; not at batch 128, not on one shard, not 64
    units (0.8 MFLOP a meeting), not with diagnostics, dropout, a hidden softmax or no hidden
    layer."""
    wide = Layout(256, [fastbp.Dense(512, activation="relu"), fastbp.Dense(2)])
    assert wide.splits_by_units
    X = np.zeros((100, 256), np.float32)
    assert trainer.split_by_units(wide, 32, 2, X)  # 16-row shards
    assert trainer.split_by_units(wide, 64, 2, X)  # 32-row shards
    assert not trainer.split_by_units(wide, 128, 2, X)  # 64-row shards
    assert not trainer.split_by_units(wide, 32, 1, X)
    assert not trainer.split_by_units(wide, 32, 2, X, diagnostics=True)
    narrow = Layout(256, [fastbp.Dense(64, activation="relu"), fastbp.Dense(2)])
    assert narrow.splits_by_units and not trainer.split_by_units(narrow, 32, 2, X)
    assert not Layout(8, [fastbp.Dense(2)]).splits_by_units  # no hidden layer
    assert not Layout(8, [fastbp.Dense(64, activation="softmax"), fastbp.Dense(2)]) \
        .splits_by_units
    assert not Layout(8, [fastbp.Dense(64), fastbp.Dropout(0.1), fastbp.Dense(2)]) \
        .splits_by_units


def test_batches_too_short_for_two_row_shards_split_by_units(monkeypatch):
    """At batch 16 (24) a 2-core machine has no two row shards of 16 rows: the batch is split
    by units on both cores where the rule allows it (three layers of 512 units: 4 MFLOP a
    meeting at batch 16; one layer of 512 at batch 24, not 16), on one shard otherwise; one
    core, batch norm or an epoch too short for threads keep one shard."""
    monkeypatch.setattr(_threads, "cores", lambda: 2)
    deep = Layout(256, [fastbp.Dense(512, activation="relu") for _ in range(3)]
                  + [fastbp.Dense(10)])
    one = Layout(256, [fastbp.Dense(512, activation="relu"), fastbp.Dense(2)])
    X = np.zeros((100, 256), np.float32)
    rows = 10 ** 6
    assert trainer.batch_parts(deep, 16, rows, X) == (2, True)
    assert trainer.batch_parts(deep, 8, rows, X) == (1, False)  # under 4 MFLOP a meeting
    assert trainer.batch_parts(one, 24, rows, X) == (2, True)
    assert trainer.batch_parts(one, 16, rows, X) == (1, False)
    assert trainer.batch_parts(one, 64, rows, X) == (2, True)  # two 32-row shards: units
    assert trainer.batch_parts(one, 256, rows, X) == (2, False)  # two row shards
    assert trainer.batch_parts(deep, 16, 10, X) == (1, False)  # too short for threads
    normed = Layout(256, [fastbp.Dense(512), fastbp.BatchNormalization(), fastbp.Dense(2)])
    assert trainer.batch_parts(normed, 16, rows, X) == (1, False)
    monkeypatch.setattr(_threads, "cores", lambda: 1)
    assert trainer.batch_parts(deep, 16, rows, X) == (1, False)


def splits_of_every_fit(monkeypatch):
    """Threads and the split by units for any network (no flop limits); returns the list
    that receives each fit's ``(shards, by_units)``."""
    monkeypatch.setattr(scheduler, "MIN_PARALLEL_FLOPS", 0)
    monkeypatch.setattr(trainer, "UNITS_MIN_FLOPS", 0)
    seen = []
    init = trainer.EpochRunner.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen.append((self.shards, self.by_units))
    monkeypatch.setattr(trainer.EpochRunner, "__init__", spy)
    return seen


@pytest.mark.skipif(_threads.cores() < 2, reason="one core: nothing to compare")
def test_a_batch_of_16_split_by_units_has_the_bits_of_one_thread(monkeypatch):
    """A fit at batch 16 (no two row shards) split by units: two threads, one thread."""
    seen = splits_of_every_fit(monkeypatch)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((16 * 12 + 5, 10)).astype(np.float32)
    y = X[:, 0] * X[:, 1] + X[:, 2]
    results = []
    for threads in (2, 1):
        model = fastbp.Sequential([fastbp.Dense(40, activation="tanh"),
                                   fastbp.Dense(24, activation="relu"), fastbp.Dense(1)],
                                  seed=3)
        model.compile(optimizer="adam", loss="mse")
        with _threads.limit(threads):
            history = model.fit(X, y, epochs=2, batch_size=16, verbose=0).history
        results.append((model.params.copy(), history))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
    assert seen == [(min(_threads.cores(), 16), True)] * 2


@pytest.mark.skipif(_threads.n_shards(32) < 2, reason="no parallel shards here")
def test_fits_split_by_units_have_the_same_bits_on_any_thread_count(monkeypatch):
    """Whole fits at batch 32 (16-row shards: split by units), with L2, a per-step schedule,
    global-norm clipping and a last short batch: two threads (shared weights and a copy per
    thread) against one, the same weights and history; a loss that turns infinite mid-epoch
    stops at the same batch with the same weights."""
    seen = splits_of_every_fit(monkeypatch)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((32 * 20 + 9, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    schedule = fastbp.schedules.CosineDecay(0.01, decay_steps=50, unit="step")
    for make_optimizer in (lambda: fastbp.optimizers.Adam(schedule),
                           lambda: fastbp.optimizers.SGD(0.05, momentum=0.9,
                                                         global_clipnorm=0.5),
                           lambda: fastbp.optimizers.SGD(3e5)):
        results = []
        for threads, own in ((2, True), (2, False), (1, False)):
            monkeypatch.setattr(scheduler, "replicate", lambda n, rows, shards, own=own: own)
            model = fastbp.Sequential([fastbp.Dense(48, activation="relu", l2=1e-3),
                                       fastbp.Dense(20, activation="tanh"),
                                       fastbp.Dense(2, activation="softmax")], seed=7)
            model.compile(optimizer=make_optimizer(), loss="categorical_crossentropy",
                          metrics=["accuracy"])
            with _threads.limit(threads):
                try:
                    history = model.fit(X, y, epochs=2, batch_size=32, verbose=0).history
                except fastbp.NonFiniteLossError as error:
                    history = str(error)
            results.append((model.params.copy(), history))
        for params, history in results[:-1]:
            np.testing.assert_array_equal(params, results[-1][0])
            assert history == results[-1][1]
    assert isinstance(history, str) and "batch" in history
    assert all(by_units for _, by_units in seen)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_multiplies_blocks_in_place_with_leading_dimensions(trans_a, trans_b, rng):
    """``blas.gemm`` on blocks inside larger row-major matrices (each operand cut at its
    block's first element, with the whole matrix's row length), all four transpose pairs,
    against NumPy; the rest of the output matrix is left alone."""
    from fastbp.kernels import blas
    m, n, k = 7, 19, 11
    A = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    B = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    big_a = rng.standard_normal((A.shape[0] + 2, A.shape[1] + 5)).astype(np.float32)
    big_b = rng.standard_normal((B.shape[0] + 1, B.shape[1] + 3)).astype(np.float32)
    big_a[2:, 5:], big_b[1:, 3:] = A, B
    big_c = rng.standard_normal((m + 3, n + 4)).astype(np.float32)
    before = big_c.copy()
    blas.gemm(blas.T if trans_a else blas.N, blas.T if trans_b else blas.N, m, n, k,
              big_a.ravel()[2 * big_a.shape[1] + 5:], big_a.shape[1],
              big_b.ravel()[big_b.shape[1] + 3:], big_b.shape[1],
              big_c.ravel()[3 * big_c.shape[1] + 4:], big_c.shape[1])
    expected = (A.T if trans_a else A) @ (B.T if trans_b else B)
    np.testing.assert_allclose(big_c[3:, 4:], expected, rtol=1e-5, atol=1e-5)
    big_c[3:, 4:] = before[3:, 4:]
    np.testing.assert_array_equal(big_c, before)


def test_units_gradient_against_central_differences(rng):
    """The compiled gradient split by units (3 blocks, float32, L2 on) against float64
    central differences of the reference's objective of the same batch."""
    from conftest import objective
    from test_gradients import central_differences, relative_error
    net = Net(5, [(20, "tanh"), (17, "elu"), (3, "softmax")], rng, dtype=np.float64, l2=1e-2,
              alpha=0.3)
    m, loss = 9, "categorical_crossentropy"
    X = rng.standard_normal((m, 5))
    Y, labels = targets_for(loss, "softmax", m, 3, rng, dtype=np.float64)
    sw = np.zeros(0)
    p = loss_param(loss, 3)
    rows = np.arange(m, dtype=np.int64)
    comp = one_batch(net.astype(np.float32), X.astype(np.float32), Y.astype(np.float32), labels,
                     sw.astype(np.float32), rows, loss, p, "numba", 3, True)
    numeric = central_differences(net, lambda: objective(net, X, Y, labels, sw, loss, p), 1e-6)
    assert relative_error(comp["grads"][0], numeric) <= 1e-5
