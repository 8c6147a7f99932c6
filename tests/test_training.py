"""Multi-epoch training: the compiled engine and the NumPy reference, from the same weights
with the same batches, end at the same weights; and training does what it should."""

import numpy as np
import pytest

import fastbp
from fastbp import optimizers

OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(learning_rate=0.05),
    "momentum": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9),
    "nesterov": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "adamw": lambda: optimizers.AdamW(learning_rate=0.01, weight_decay=0.05),
    "rmsprop": lambda: optimizers.RMSprop(learning_rate=0.005),
    "rmsprop_momentum": lambda: optimizers.RMSprop(learning_rate=0.002, momentum=0.5),
    "adagrad": lambda: optimizers.Adagrad(learning_rate=0.05),
    "adam_clipnorm": lambda: optimizers.Adam(learning_rate=0.01, global_clipnorm=0.5),
    "sgd_clipvalue": lambda: optimizers.SGD(learning_rate=0.05, clipvalue=0.01),
}


def classification(rng, n=100, f=6, k=3):
    X = rng.standard_normal((n, f)).astype(np.float32)
    y = (X @ rng.standard_normal((f, k))).argmax(axis=1)
    return X, y


def make_model(backend, optimizer, loss="categorical_crossentropy", out="softmax", k=3,
               hidden="tanh", l1=0.0, l2=0.0, seed=7):
    model = fastbp.Sequential([fastbp.Dense(16, activation=hidden, l1=l1, l2=l2),
                               fastbp.Dense(8, activation="relu", l2=l2),
                               fastbp.Dense(k, activation=out)], seed=seed)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], backend=backend)
    return model


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_compiled_and_reference_reach_the_same_weights(name, rng):
    X, y = classification(rng)
    comp = make_model("numba", OPTIMIZERS[name](), l1=1e-4, l2=1e-3)
    ref = make_model("numpy", OPTIMIZERS[name](), l1=1e-4, l2=1e-3)
    comp_h = comp.fit(X, y, epochs=4, batch_size=16)
    ref_h = ref.fit(X, y, epochs=4, batch_size=16)
    assert comp.optimizer.iterations == ref.optimizer.iterations == 4 * 7
    for comp_w, ref_w in zip(comp.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(comp_w, ref_w, rtol=1e-3, atol=2e-5)
    np.testing.assert_allclose(comp_h.history["loss"], ref_h.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(comp.optimizer.state, ref.optimizer.state, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("loss, out, k", [("binary_crossentropy", "sigmoid", 2),
                                          ("mse", "linear", 2), ("huber", "linear", 1),
                                          ("mse", "tanh", 1)])
def test_compiled_and_reference_other_losses(loss, out, k, rng):
    X = rng.standard_normal((60, 6)).astype(np.float32)
    if loss == "binary_crossentropy":
        y = (X[:, :k] > 0).astype(np.float32)
    else:
        y = (X[:, :k] * 0.5).astype(np.float32)
    w = rng.uniform(0.5, 2, 60)
    comp = make_model("numba", "adam", loss, out, k)
    ref = make_model("numpy", "adam", loss, out, k)
    comp.fit(X, y, epochs=3, batch_size=7, sample_weight=w)
    ref.fit(X, y, epochs=3, batch_size=7, sample_weight=w)
    for comp_w, ref_w in zip(comp.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(comp_w, ref_w, rtol=1e-3, atol=2e-5)


def test_compiled_and_reference_agree_where_backward_goes_by_transpose(rng):
    """Layers 64 wide and shards of 16 or 32 rows take ``delta @ W.T`` as ``(W @ delta.T).T``
    (see ``kernels.dense.backward_by_transpose``); training still matches the reference."""
    from fastbp.kernels.dense import backward_by_transpose
    X, y = classification(rng, n=200, f=8)

    def model(backend):
        net = fastbp.Sequential([fastbp.Dense(64, activation="relu"),
                                 fastbp.Dense(64, activation="tanh"),
                                 fastbp.Dense(3, activation="softmax")], seed=3)
        net.compile(optimizer=optimizers.Adam(0.01), loss="categorical_crossentropy",
                    backend=backend)
        return net

    assert backward_by_transpose.py_func(16, 64, 64) and backward_by_transpose.py_func(32, 64, 64)
    comp, ref = model("numba"), model("numpy")
    comp_h = comp.fit(X, y, epochs=3, batch_size=32)
    ref_h = ref.fit(X, y, epochs=3, batch_size=32)
    for comp_w, ref_w in zip(comp.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(comp_w, ref_w, rtol=1e-3, atol=2e-5)
    np.testing.assert_allclose(comp_h.history["loss"], ref_h.history["loss"], rtol=1e-4)


@pytest.mark.parametrize("batch_size", [1, 16, 100, 1000])
def test_batch_sizes_from_one_to_full(batch_size, rng):
    X, y = classification(rng)
    comp = make_model("numba", optimizers.SGD(0.01))
    ref = make_model("numpy", optimizers.SGD(0.01))
    comp.fit(X, y, epochs=2, batch_size=batch_size)
    ref.fit(X, y, epochs=2, batch_size=batch_size)
    steps = -(-100 // batch_size)
    assert comp.optimizer.iterations == 2 * steps
    for comp_w, ref_w in zip(comp.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(comp_w, ref_w, rtol=1e-3, atol=2e-5)


def test_last_smaller_batch_is_trained_on(rng):
    """With 10 rows and batch 4, the third step sees rows 8 and 9 only; dropping them changes
    the result, so the trained weights must differ from those of an 8-row fit."""
    X, y = classification(rng, n=10)
    full = make_model("numba", optimizers.SGD(0.1))
    full.fit(X, y, epochs=1, batch_size=4, shuffle=False)
    assert full.optimizer.iterations == 3
    short = make_model("numba", optimizers.SGD(0.1))
    short.fit(X[:8], y[:8], epochs=1, batch_size=4, shuffle=False)
    assert not np.allclose(full.get_weights()[0], short.get_weights()[0])


def test_full_batch_gradient_descent_matches_manual_steps(rng):
    """batch_size = n with SGD is plain gradient descent on the mean loss."""
    X, y = classification(rng, n=20)
    model = make_model("numba", optimizers.SGD(0.1))
    model.build(X.shape[1])
    w0 = model.params.copy()
    model.fit(X, y, epochs=1, batch_size=20, shuffle=False, verbose=0)
    from conftest import Net, objective
    net = Net(X.shape[1], model.layers, rng, dtype=np.float64)
    net.params[:] = w0
    objective(net, X.astype(np.float64), np.zeros((0, 3)), y.astype(np.int64), np.zeros(0),
              "categorical_crossentropy", model.loss.loss_param(3))
    np.testing.assert_allclose(model.params, w0 - 0.1 * net.grads, rtol=1e-4, atol=1e-6)


def test_same_seed_same_weights_bit_identical(rng):
    X, y = classification(rng)
    a = make_model("numba", "adam", seed=3)
    b = make_model("numba", "adam", seed=3)
    a.fit(X, y, epochs=3, batch_size=10, verbose=0)
    b.fit(X, y, epochs=3, batch_size=10, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    c = make_model("numba", "adam", seed=4)
    c.fit(X, y, epochs=3, batch_size=10, verbose=0)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_shuffling_changes_every_epoch(rng):
    """Without shuffling two epochs see the same order; with it, they do not."""
    X, y = classification(rng)
    a = make_model("numba", optimizers.SGD(0.05), seed=1)
    b = make_model("numba", optimizers.SGD(0.05), seed=1)
    a.fit(X, y, epochs=2, batch_size=10, shuffle=True, verbose=0)
    b.fit(X, y, epochs=2, batch_size=10, shuffle=False, verbose=0)
    assert not np.allclose(a.get_weights()[0], b.get_weights()[0])


def test_xor_is_learned():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0], np.float32)
    model = fastbp.Sequential([fastbp.Dense(8, activation="tanh"),
                               fastbp.Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer=optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(X, y, epochs=300, batch_size=4, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    np.testing.assert_array_equal(model.predict(X)[:, 0] > 0.5, y > 0.5)


def test_regression_fits_a_linear_target(rng):
    X = rng.standard_normal((400, 5)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.5
    model = fastbp.Sequential([fastbp.Dense(32, activation="relu"), fastbp.Dense(1)], seed=0)
    model.compile(optimizer=optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    history = model.fit(X, y, epochs=60, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.05 * np.var(y)
    assert history.history["loss"][0] > history.history["loss"][-1]


def fit_with(monkeypatch, shards, parallel, X, y, optimizer="adam"):
    """A fit with ``shards`` shards per batch, on as many threads (``parallel``) or one."""
    from fastbp import _threads, scheduler
    monkeypatch.setattr(_threads, "n_shards", lambda batch, max_shards=None: shards)
    monkeypatch.setattr(scheduler, "MIN_PARALLEL_FLOPS", 0)
    model = make_model("numba", optimizer, l2=1e-3)
    with _threads.limit(shards if parallel else 1):
        model.fit(X, y, epochs=2, batch_size=20, verbose=0)
    return model


@pytest.mark.parametrize("shards", [2, 3, 8])
def test_parallel_shards_give_the_bits_of_serial_shards(shards, rng, monkeypatch):
    X, y = classification(rng)
    a = fit_with(monkeypatch, shards, True, X, y)
    b = fit_with(monkeypatch, shards, False, X, y)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("name", ["sgd", "adam_clipnorm"])
def test_shard_count_changes_only_rounding(name, rng, monkeypatch):
    """S shards of a batch sum to the whole batch's gradient: 1, 3 and 7 shards (7 > rows in
    the last batch, so some shards are empty) agree to float32 rounding."""
    X, y = classification(rng, n=90)
    results = [fit_with(monkeypatch, s, s > 1, X, y, OPTIMIZERS[name]()).get_weights()
               for s in (1, 3, 7)]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
