"""Sparse input: the first layer's compiled kernels against their twin and central
differences, and sparse data through the Model API and the scikit-learn estimators."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

import fastbp
from conftest import Net, dense_spec, epoch_args, loss_param, objective, targets_for
from fastbp import codes, engine
from fastbp.kernels import sparse as k_sparse
from fastbp.reference import sparse as r_sparse
from fastbp.sparse import CSR, from_scipy


def random_csr(rng, n, f, density=0.15, dtype=np.float32):
    dense = ((rng.random((n, f)) < density) * rng.standard_normal((n, f))).astype(dtype)
    dense[3] = 0.0  # a row without entries
    return dense, from_scipy(sp.csr_matrix(dense))


@pytest.mark.parametrize("act", ["relu", "tanh", "softmax"])
def test_sparse_first_layer_against_reference_and_dense(act, rng):
    """Forward output and weight gradient from CSR rows: compiled (float32) against the NumPy
    twin (float64) and against the dense kernels on the same rows."""
    from fastbp.kernels import dense as k_dense
    n, f, units = 40, 30, 7
    dense, csr = random_csr(rng, n, f)
    rows = rng.permutation(n)[:13].astype(np.int64)
    W = rng.standard_normal((f, units)).astype(np.float32)
    b = rng.standard_normal(units).astype(np.float32)
    code = codes.ACTIVATIONS[act]
    comp = np.empty((len(rows), units), np.float32)
    k_sparse.sparse_dense_forward(csr.indptr, csr.indices, csr.values, rows, W, b, code, 0.0,
                                  comp)
    ref = np.empty((len(rows), units))
    r_sparse.sparse_dense_forward(csr.indptr, csr.indices, csr.values.astype(np.float64), rows,
                                  W.astype(np.float64), b.astype(np.float64), code, 0.0, ref)
    dense_out = np.empty_like(comp)
    k_dense.dense_forward(np.ascontiguousarray(dense[rows]), W, b, code, 0.0, dense_out)
    np.testing.assert_allclose(comp, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(comp, dense_out, rtol=1e-5, atol=1e-6)
    delta = rng.standard_normal((len(rows), units)).astype(np.float32)
    comp_w, comp_b = np.full((f, units), 7.0, np.float32), np.full(units, 7.0, np.float32)
    k_sparse.sparse_dense_grad(csr.indptr, csr.indices, csr.values, rows, delta, comp_w, comp_b)
    np.testing.assert_allclose(comp_w, dense[rows].T @ delta, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(comp_b, delta.sum(axis=0), rtol=1e-5)
    assert not comp_w[np.flatnonzero(~dense[rows].any(axis=0))].any()  # untouched rows: 0


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "squared_error"])
def test_sparse_gradient_against_central_differences_and_dense(loss, rng):
    """The objective of a batch of sparse rows through the epoch loop: the float64 reference's
    gradient against central differences, the same as with the rows densified, and the
    compiled kernels' (two shards) against the reference."""
    n, f = 12, 9
    dense, _ = random_csr(rng, n, f, density=0.4, dtype=np.float64)
    m = sp.csr_matrix(dense)  # float64 values (from_scipy would round them to float32)
    csr = CSR(m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data, m.shape)
    net = Net(f, dense_spec([6, 3], ["tanh", "softmax" if loss != "squared_error" else
                                     "linear"]), rng, dtype=np.float64, rows=n, l2=1e-2)
    Y, labels = targets_for(loss, "softmax", n, 3, rng, dtype=np.float64)
    sw = rng.uniform(0.5, 1.5, n)
    p = loss_param(loss, 3, norm_by_weight=1.0, per_sample_penalty=1.0)
    empty_X = np.empty((n, 0))

    def sparse_objective(params, backend="numpy", dtype=np.float64, shards=1):
        other = net.astype(dtype)
        other.params = params.astype(dtype)
        args, buf = epoch_args(other, empty_X.astype(dtype), Y.astype(dtype), labels,
                               sw.astype(dtype), np.arange(n), n, loss, p, shards=shards,
                               csr=(csr.indptr, csr.indices, csr.values.astype(dtype)))
        engine.get(backend).train_epoch(args)
        return buf["stats"][0, codes.ST_LOSS] / n, buf["grads"][0]

    value, grad = sparse_objective(net.params)
    assert value == pytest.approx(objective(net, dense, Y, labels, sw, loss, p), rel=1e-12)
    np.testing.assert_allclose(grad, net.grads, rtol=1e-10, atol=1e-12)
    numeric = np.empty_like(net.params)
    for i in range(net.params.size):
        up, down = net.params.copy(), net.params.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        numeric[i] = (sparse_objective(up)[0] - sparse_objective(down)[0]) / 2e-6
    assert np.linalg.norm(grad - numeric) <= 1e-6 * np.linalg.norm(numeric)
    comp_value, comp_grad = sparse_objective(net.params, "numba", np.float32, shards=2)
    assert comp_value == pytest.approx(value, rel=1e-5)
    np.testing.assert_allclose(comp_grad, grad, rtol=1e-4, atol=1e-6)


def test_csr_container():
    rng = np.random.default_rng(0)
    dense, csr = random_csr(rng, 20, 6)
    rows = np.array([5, 3, 3, 19, 0])
    np.testing.assert_array_equal(csr.take(rows).toarray(), dense[rows])
    assert len(csr) == 20 and csr.shape == (20, 6)
    coo = sp.coo_matrix(([1.0, 2.0], ([0, 0], [1, 1])), shape=(2, 3))  # a duplicate entry
    np.testing.assert_array_equal(from_scipy(coo).toarray(), [[0, 3, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="finite"):
        from_scipy(sp.csr_matrix(np.array([[np.inf, 0.0]])))
    with pytest.raises(ValueError, match="finite"):
        from_scipy(sp.csr_matrix(np.array([[1e300, 0.0]])))  # beyond float32


def test_sequential_trains_on_sparse_rows_as_on_dense(rng):
    """fit (with a validation split), predict and evaluate on CSR: the same model as on the
    dense array, to float32 rounding; a first layer that is not Dense is refused."""
    dense, csr = random_csr(rng, 600, 40, density=0.1)
    y = (dense[:, 0] + dense[:, 1] > 0).astype(int)
    X_sparse = sp.csr_matrix(dense)
    results = []
    for X in (dense, X_sparse):
        model = fastbp.Sequential([fastbp.Dense(16, activation="relu"),
                                   fastbp.Dense(2, activation="softmax")], seed=0)
        model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
        model.fit(X, y, epochs=3, batch_size=32, validation_split=0.2, verbose=0)
        results.append((model.params.copy(), model.predict(X), model.evaluate(X, y)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-6)
    assert results[1][2] == pytest.approx(results[0][2], rel=1e-5)
    model = fastbp.Sequential([fastbp.Dropout(0.1), fastbp.Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse X needs a Dense first layer"):
        model.fit(X_sparse, y, verbose=0)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("solver, early", [("adam", False), ("adam", True), ("lbfgs", False)])
def test_estimators_take_sparse_input(fmt, solver, early, rng):
    dense, _ = random_csr(rng, 400, 30, density=0.2)
    y = (dense[:, 0] - dense[:, 2] > 0).astype(int)
    X_sparse = sp.csr_matrix(dense).asformat(fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_dense = fastbp.MLPClassifier(hidden_layer_sizes=(16,), solver=solver, max_iter=15,
                                        early_stopping=early, random_state=0).fit(dense, y)
        on_sparse = fastbp.MLPClassifier(hidden_layer_sizes=(16,), solver=solver, max_iter=15,
                                         early_stopping=early, random_state=0).fit(X_sparse, y)
        reg = fastbp.MLPRegressor(hidden_layer_sizes=(8,), max_iter=5,
                                  random_state=0).fit(X_sparse, dense[:, 0])
    np.testing.assert_allclose(on_sparse.predict_proba(X_sparse), on_dense.predict_proba(dense),
                               rtol=1e-4, atol=1e-6)
    assert on_sparse.score(X_sparse, y) == pytest.approx(on_dense.score(dense, y))
    assert reg.predict(X_sparse).shape == (400,)


def test_a_one_hot_pipeline_on_a_mixed_table():
    """ColumnTransformer(OneHotEncoder (sparse output) + StandardScaler) -> MLPClassifier on a
    table of numbers and categories: fits, and is at least as accurate on held-out rows as
    scikit-learn's MLP given the same settings."""
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    rng = np.random.default_rng(0)
    n = 3000
    table = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(300)], n),
                          "kind": rng.choice(list("abcdef"), n),
                          "size": rng.standard_normal(n), "age": rng.uniform(0, 80, n)})
    effect = {f"c{i}": v for i, v in enumerate(rng.standard_normal(300))}
    y = (table["city"].map(effect) + 0.8 * table["size"] + (table["kind"] == "a") > 0.3)
    X_train, X_test, y_train, y_test = train_test_split(table, y.astype(int), random_state=0)
    scores = []
    for Estimator in (fastbp.MLPClassifier, SkMLP):
        pipe = make_pipeline(ColumnTransformer([
            ("categories", OneHotEncoder(handle_unknown="ignore"), ["city", "kind"]),
            ("numbers", StandardScaler(), ["size", "age"])]),
            Estimator(hidden_layer_sizes=(32,), max_iter=30, random_state=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(X_train, y_train)
        assert Estimator is SkMLP or sp.issparse(pipe[0].transform(X_test[:5]))
        scores.append(pipe.score(X_test, y_test))
    assert scores[0] >= scores[1] - 0.01, scores
