"""Observable behaviour of the Model API."""

import numpy as np
import pytest

import fastbp
from fastbp import optimizers


@pytest.fixture
def data(rng):
    X = rng.standard_normal((120, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, y


def classifier(seed=0, backend="numba", metrics=("accuracy",)):
    model = fastbp.Sequential([fastbp.Dense(16, activation="relu"),
                               fastbp.Dense(3, activation="softmax")], seed=seed)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=list(metrics),
                  backend=backend)
    return model


def test_history_and_shapes(data):
    X, y = data
    model = classifier()
    history = model.fit(X, y, epochs=3, batch_size=32, validation_data=(X[:20], y[:20]), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 3 for v in history.history.values())
    assert history.epoch == [0, 1, 2]
    assert history.params["steps"] == 4
    assert model.history is history
    proba = model.predict_proba(X)
    assert proba.shape == (120, 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(X), proba)
    assert model.count_params() == 5 * 16 + 16 + 16 * 3 + 3


def test_input_width_taken_from_data(data):
    X, y = data
    model = classifier()
    assert not model.built and model.n_features is None
    model.fit(X, y, verbose=0)
    assert model.n_features == 5
    assert model.get_weights()[0].shape == (5, 16)


def test_evaluate_matches_history_and_metrics(data):
    X, y = data
    model = classifier()
    history = model.fit(X, y, epochs=2, validation_data=(X, y), verbose=0)
    loss, accuracy = model.evaluate(X, y)
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-6)
    assert accuracy == pytest.approx(np.mean(model.predict(X).argmax(axis=1) == y))
    logs = model.evaluate(X, y, return_dict=True)
    assert logs == {"loss": loss, "accuracy": accuracy}
    bare = classifier(metrics=())
    bare.fit(X, y)
    assert isinstance(bare.evaluate(X, y), float)


def test_running_training_loss_equals_mean_of_batch_losses(data):
    """With lr ~ 0 the weights do not move, so the epoch's loss equals the evaluated loss."""
    X, y = data
    model = fastbp.Sequential([fastbp.Dense(4, activation="tanh"),
                               fastbp.Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer=optimizers.SGD(learning_rate=1e-30), loss="cce",
                  metrics=["accuracy"])
    history = model.fit(X, y, epochs=1, batch_size=7, verbose=0)
    loss, accuracy = model.evaluate(X, y)
    assert history.history["loss"][0] == pytest.approx(loss, rel=1e-5)
    assert history.history["accuracy"][0] == pytest.approx(accuracy)


def test_one_hot_and_labels_train_identically(data):
    X, y = data
    a, b = classifier(), classifier()
    a.fit(X, y, epochs=2, verbose=0)
    b.fit(X, np.eye(3)[y], epochs=2, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-7)


def test_sample_weight_zero_equals_dropping_rows(data):
    """Zero weights with weight-sum normalisation would equal dropping; with the Keras
    convention (divide by the batch size) full-batch gradients are scaled by n_kept / n."""
    X, y = data
    w = np.ones(len(X))
    w[60:] = 0
    a = classifier()
    a.compile(optimizer=optimizers.SGD(0.1), loss="categorical_crossentropy")
    a.fit(X, y, epochs=1, batch_size=120, sample_weight=w, shuffle=False, verbose=0)
    b = classifier()
    b.compile(optimizer=optimizers.SGD(0.1 * 60 / 120), loss="categorical_crossentropy")
    b.fit(X[:60], y[:60], epochs=1, batch_size=60, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)


def test_multilabel_sigmoid_and_predict_proba(rng):
    X = rng.standard_normal((80, 4)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 1] > 0], axis=1).astype(np.float32)
    model = fastbp.Sequential([fastbp.Dense(16, activation="relu"),
                               fastbp.Dense(3, activation="sigmoid")], seed=0)
    model.compile(optimizer=optimizers.Adam(0.02), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(X, Y, epochs=40, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    assert model.predict_proba(X).shape == (80, 3)


def test_single_sigmoid_predict_proba_has_two_columns(rng):
    X = rng.standard_normal((30, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = fastbp.Sequential([fastbp.Dense(1, activation="sigmoid")], seed=0)
    model.compile(loss="binary_crossentropy")
    model.fit(X, y, verbose=0)
    proba = model.predict_proba(X)
    assert proba.shape == (30, 2)
    np.testing.assert_allclose(proba[:, 1], model.predict(X)[:, 0])
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)


def test_get_set_weights_round_trip(data):
    X, y = data
    model = classifier()
    model.fit(X, y, verbose=0)
    weights = model.get_weights()
    before = model.predict(X)
    weights[0][0, 0] += 1.0  # copies: changing them does not touch the model
    np.testing.assert_array_equal(model.predict(X), before)
    other = classifier(seed=9)
    other.build(5)
    other.set_weights(model.get_weights())
    np.testing.assert_array_equal(other.predict(X), before)


def test_continued_fit_keeps_optimizer_state(data):
    """Two fits of 2 epochs equal one fit of 4 epochs (same seed, state carried over)."""
    X, y = data
    a, b = classifier(), classifier()
    a.fit(X, y, epochs=2, verbose=0)
    a.fit(X, y, epochs=2, verbose=0)
    b.fit(X, y, epochs=4, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_every_initializer_is_seeded_and_scaled(rng):
    for name, bound in [("he_uniform", np.sqrt(6 / 50)), ("glorot_uniform", np.sqrt(6 / 150)),
                        ("uniform", 0.05)]:
        model = fastbp.Sequential([fastbp.Dense(100, kernel_initializer=name)], seed=0)
        model.build(50)
        W = model.get_weights()[0]
        assert np.abs(W).max() <= bound and np.abs(W).max() > 0.9 * bound
    for name, std in [("he_normal", np.sqrt(2 / 50)), ("glorot_normal", np.sqrt(2 / 150))]:
        model = fastbp.Sequential([fastbp.Dense(100, kernel_initializer=name)], seed=0)
        model.build(50)
        assert model.get_weights()[0].std() == pytest.approx(std, rel=0.05)
    model = fastbp.Sequential([fastbp.Dense(3, kernel_initializer=fastbp.initializers.
                                            RandomUniform(0.5))], seed=0)
    model.build(4)
    assert np.abs(model.get_weights()[0]).max() <= 0.5


def test_predict_in_chunks_equals_one_pass(data):
    X, y = data
    model = classifier()
    model.fit(X, y, verbose=0)
    # BLAS may take another code path for a 1-row chunk: equal to the last bit or two
    np.testing.assert_allclose(model.predict(X, batch_size=7), model.predict(X), rtol=1e-6)


def test_numpy_backend_trains_too(data):
    X, y = data
    model = classifier(backend="numpy")
    history = model.fit(X, y, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_summary_lists_layers(data, capsys):
    X, y = data
    model = classifier()
    model.summary()
    assert "not built" in capsys.readouterr().out
    model.fit(X, y, verbose=0)
    model.summary()
    out = capsys.readouterr().out
    assert "softmax" in out and str(model.count_params()) in out


def test_warmup_runs():
    fastbp.warmup()


def test_worked_example_by_hand():
    """A 2-2-1 network, one SGD step, every number written out.

    x = (1, 2), W1 = [[0.1, 0.2], [0.3, 0.4]], b1 = (0, 0), relu;
    W2 = [[0.5], [-0.6]], b2 = 0.1, linear output; target y = 1; loss (a - y)^2; lr = 0.1.

    forward:  z1 = x W1 = (1*0.1 + 2*0.3, 1*0.2 + 2*0.4) = (0.7, 1.0); a1 = relu(z1) = (0.7, 1.0)
              z2 = 0.7*0.5 + 1.0*(-0.6) + 0.1 = -0.15; loss = (-0.15 - 1)^2 = 1.3225
    backward: delta2 = 2 (a2 - y) = -2.3;   dW2 = a1^T delta2 = (-1.61, -2.3);   db2 = -2.3
              delta1 = delta2 W2^T * relu'(z1) = (-2.3*0.5, -2.3*(-0.6)) = (-1.15, 1.38)
              dW1 = x^T delta1 = [[-1.15, 1.38], [-2.3, 2.76]];   db1 = (-1.15, 1.38)
    update:   w -= 0.1 * dw
    """
    model = fastbp.Sequential([fastbp.Dense(2, activation="relu"), fastbp.Dense(1)], seed=0)
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
    model.build(2)
    model.set_weights([np.array([[0.1, 0.2], [0.3, 0.4]]), np.zeros(2),
                       np.array([[0.5], [-0.6]]), np.array([0.1])])
    history = model.fit(np.array([[1.0, 2.0]]), np.array([1.0]), epochs=1, batch_size=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(1.3225, rel=1e-6)
    W1, b1, W2, b2 = model.get_weights()
    np.testing.assert_allclose(W1, [[0.1 + 0.115, 0.2 - 0.138], [0.3 + 0.23, 0.4 - 0.276]],
                               rtol=1e-6)
    np.testing.assert_allclose(b1, [0.115, -0.138], rtol=1e-6)
    np.testing.assert_allclose(W2, [[0.5 + 0.161], [-0.6 + 0.23]], rtol=1e-6)
    np.testing.assert_allclose(b2, [0.1 + 0.23], rtol=1e-6)
