"""fastbp.dask on a loopback LocalCluster (2 worker processes, 1 thread each) started here:
distributed L-BFGS against the single-machine fit on the same rows."""

import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("distributed")
import dask.array as da  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import fastbp  # noqa: E402
import fastbp.dask  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 8))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 1)
    return X, y


def test_import_fastbp_does_not_import_dask():
    import subprocess
    code = "import sys, fastbp; print('dask' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_the_objective_is_the_single_machine_objective(client, data, kind):
    """The loss and gradient summed over the workers' blocks equal the single-machine
    full-batch objective at the same weights, to float32 summation order: L-BFGS without
    hidden layers (a convex problem) reaches the same loss to 1e-4 relative."""
    X, y = data
    target = y if kind == "classifier" else X[:, 0] - 2 * X[:, 3]
    Local = fastbp.MLPClassifier if kind == "classifier" else fastbp.MLPRegressor
    Dist = fastbp.dask.MLPClassifier if kind == "classifier" else fastbp.dask.MLPRegressor
    settings = dict(hidden_layer_sizes=(), solver="lbfgs", max_iter=200, random_state=0,
                    alpha=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = Local(**settings).fit(X, target)
        dist = Dist(**settings).fit(da.from_array(X, chunks=(700, 8)),
                                    da.from_array(target, chunks=700))
    assert dist.loss_ == pytest.approx(local.loss_, rel=1e-4)
    assert dist.coefs_[0].shape == local.coefs_[0].shape and dist.n_features_in_ == 8
    if kind == "classifier":
        np.testing.assert_array_equal(dist.classes_, local.classes_)
        assert np.mean(dist.predict(X) == local.predict(X)) > 0.99


@pytest.mark.parametrize("source", ["array", "dataframe"])
def test_a_hidden_network_takes_the_single_machine_path(client, data, source, monkeypatch):
    """L-BFGS on a network with hidden layers (not convex: float32 sums in another order
    parted the two paths by 3e-3 within 60 iterations) ends on the single-machine fit's
    weights, to the bit: the blocks (700 rows, or a dataframe's 3 partitions) are cut again
    on the objective's chunks (512 rows here), and the chunks' sums are added exactly."""
    from fastbp import trainer
    monkeypatch.setattr(trainer, "CHUNK_ROWS", 512)
    X, y = data
    if source == "array":
        dX, dy = da.from_array(X, chunks=(700, 8)), da.from_array(y, chunks=700)
    else:
        dd = pytest.importorskip("dask.dataframe")
        pd = pytest.importorskip("pandas")
        dX = dd.from_pandas(pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]),
                            npartitions=3)
        dy = dd.from_pandas(pd.Series(y), npartitions=3)
    settings = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dist = fastbp.dask.MLPClassifier(**settings).fit(dX, dy)
        local = fastbp.MLPClassifier(**settings).fit(X, y)
    assert dist.n_iter_ == local.n_iter_ == 60
    assert dist.loss_ == local.loss_
    for a, b in zip(dist.coefs_ + dist.intercepts_, local.coefs_ + local.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_pooled_second_moment_is_that_of_the_whole_batch():
    """Rounds of 10 Adam steps on k = 4 blocks, each block's gradients noisier by sqrt(k) than
    the whole batch's: the blocks' plainly averaged v carries k times the noise; pooled after
    every round it stays within 10% of a single machine's v on the whole batch, and the first
    moment is left as averaged."""
    rng = np.random.default_rng(0)
    k, p, b1, b2 = 4, 2000, 0.9, 0.999
    mu = rng.standard_normal(p) * 0.1

    def steps(state, noise, n=10):
        state = state.copy()
        for _ in range(n):
            g = mu + noise * rng.standard_normal(p)
            state[0] = b1 * state[0] + (1 - b1) * g
            state[1] = b2 * state[1] + (1 - b2) * g * g
        return state

    whole, pooled, plain = np.zeros((2, p)), np.zeros((2, p)), np.zeros((2, p))
    for r in range(1, 61):
        whole = steps(whole, 1.0)
        averaged = np.mean([steps(pooled, np.sqrt(k)) for _ in range(k)], axis=0)
        pooled = fastbp.dask.pooled_second_moment(pooled, averaged, k, 10, b1, b2, 10 * r)
        np.testing.assert_array_equal(pooled[0], averaged[0])
        plain = np.mean([steps(plain, np.sqrt(k)) for _ in range(k)], axis=0)
    assert abs(pooled[1].mean() / whole[1].mean() - 1) < 0.1
    assert plain[1].mean() / whole[1].mean() > 3


def test_data_parallel_adam(client, data):
    """Model averaging: one block trains as a local fit does (its rows in another random
    order); two blocks come within 3 points of its test accuracy after the same epochs (the
    global batch split over the blocks; 600 test rows: a point is 6 rows); the result does not
    depend on how many workers hold the blocks."""
    X, y = data
    Xt, yt, Xv, yv = X[:2400], y[:2400], X[2400:], y[2400:]
    settings = dict(hidden_layer_sizes=(32,), solver="adam", max_iter=15, random_state=0,
                    tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = fastbp.MLPClassifier(**settings).fit(Xt, yt)
        whole = fastbp.dask.MLPClassifier(**settings).fit(
            da.from_array(Xt, chunks=(2400, 8)), da.from_array(yt, chunks=2400))
        halves = fastbp.dask.MLPClassifier(**settings).fit(
            da.from_array(Xt, chunks=(1200, 8)), da.from_array(yt, chunks=1200), sync_every=5)
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                          dashboard_address=None) as one, Client(one) as single:
            with single.as_current():
                alone = fastbp.dask.MLPClassifier(**settings).fit(
                    da.from_array(Xt, chunks=(1200, 8)), da.from_array(yt, chunks=1200),
                    sync_every=5)
    assert abs(whole.score(Xv, yv) - local.score(Xv, yv)) <= 0.02
    assert halves.score(Xv, yv) >= local.score(Xv, yv) - 0.03
    assert len(halves.loss_curve_) == 15 and halves.loss_curve_[-1] < halves.loss_curve_[0]
    np.testing.assert_array_equal(alone.coefs_[0], halves.coefs_[0])


def test_what_is_not_distributed_yet_says_so(client, data):
    X, y = data
    dX, dy = da.from_array(X, chunks=(1000, 8)), da.from_array(y, chunks=1000)
    with pytest.raises(ValueError, match="sync_every"):
        fastbp.dask.MLPClassifier(solver="adam").fit(dX, dy, sync_every=0)
    with pytest.raises(ValueError, match="constant learning rate"):
        fastbp.dask.MLPClassifier(solver="sgd", learning_rate="adaptive").fit(dX, dy)
    with pytest.raises(ValueError, match="sample_weight"):
        fastbp.dask.MLPClassifier(solver="lbfgs").fit(dX, dy, sample_weight=np.ones(3000))
    with warnings.catch_warnings():  # NumPy data: the local fit
        warnings.simplefilter("ignore")
        fastbp.dask.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "fastbp\[dask\]"'):
        fastbp.dask.blocks(None, None)


def test_dask_ml_incremental_over_partial_fit(client, data):
    """dask-ml's Incremental streams the blocks through fastbp's partial_fit."""
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, _ = data
    labels = (X[:, 0] + X[:, 1] > 0).astype(int)
    inc = wrappers.Incremental(fastbp.MLPClassifier(hidden_layer_sizes=(16,), random_state=0,
                                                    learning_rate_init=0.01),
                               scoring="accuracy")
    inc.fit(da.from_array(X, chunks=(1000, 8)), da.from_array(labels, chunks=1000),
            classes=[0, 1])
    assert inc.estimator_.t_ == 3000  # every row once, block by block
    assert inc.score(da.from_array(X, chunks=(1000, 8)), da.from_array(labels, chunks=1000)) \
        > 0.85


def test_grid_search_under_the_dask_joblib_backend(client, data):
    import joblib
    from sklearn.model_selection import GridSearchCV
    X, _ = data
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    with warnings.catch_warnings(), joblib.parallel_backend("dask"):
        warnings.simplefilter("ignore")
        search = GridSearchCV(fastbp.MLPClassifier(max_iter=20, random_state=0),
                              {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-2]},
                              cv=3, n_jobs=-1).fit(X, y)
    assert search.best_score_ > 0.9 and len(search.cv_results_["params"]) == 4


def test_a_worker_killed_mid_fit_does_not_lose_the_fit(client):
    """A worker process killed (SIGKILL) during distributed L-BFGS: its blocks are computed
    again elsewhere, its tasks run again, and the fit ends where an undisturbed one does, bit
    for bit (each block's sums do not depend on which worker makes them)."""
    import os
    import signal
    import threading
    import time
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8000, 8))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    dX, dy = da.from_array(X, chunks=(1000, 8)), da.from_array(y, chunks=1000)
    settings = dict(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=100, tol=0.0,
                    random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = fastbp.dask.MLPClassifier(**settings).fit(dX, dy)
    disturbed = fastbp.dask.MLPClassifier(**settings)
    errors = []

    def fit():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                disturbed.fit(dX, dy)
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)
    thread = threading.Thread(target=fit)
    thread.start()
    deadline = time.monotonic() + 60
    while getattr(disturbed, "n_evaluations_", 0) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert thread.is_alive(), "the fit ended before a worker could be killed"
    pids = client.run(os.getpid)
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    thread.join(300)
    assert not errors, errors
    assert disturbed.n_iter_ == clean.n_iter_
    np.testing.assert_array_equal(disturbed.coefs_[0], clean.coefs_[0])
    assert disturbed.loss_ == clean.loss_


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_streaming_from_parquet_keeps_no_block(client, data, solver, tmp_path, monkeypatch):
    """keep_blocks=False: every task reads its block from the Parquet files and drops it (no
    block stays on a worker), and the fit is the one that keeps the blocks (with one
    averaging an epoch, as streaming averages), bit for bit (L-BFGS: partitions of whole
    chunks, which streaming does not cut again)."""
    from fastbp import trainer
    monkeypatch.setattr(trainer, "CHUNK_ROWS", 200)  # (1,000-row partitions: 5 chunks each)
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(y=y)
    settings = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=5, random_state=0)
    fits = []
    with warnings.catch_warnings():  # (dask's own use of pandas warns of deprecations)
        warnings.simplefilter("ignore")
        dd.from_pandas(frame, npartitions=3).to_parquet(tmp_path / "table")
        table = dd.read_parquet(tmp_path / "table")
        for keep in (True, False):
            fits.append(fastbp.dask.MLPClassifier(**settings).fit(  # (streaming: one
                table.drop(columns="y"), table["y"], keep_blocks=keep,  # averaging an epoch)
                sync_every=10**6))
            assert sum(client.run(lambda: len(fastbp.dask._OBJECTIVES)).values()) == 0
    np.testing.assert_array_equal(fits[0].coefs_[0], fits[1].coefs_[0])
