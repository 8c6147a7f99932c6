"""fit, evaluate and predict on iterables of chunks (generators, lists, dataset-like
objects): the same steps as on arrays, one chunk in memory at a time."""

import warnings

import numpy as np
import pytest

import fastbp


@pytest.fixture
def table():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((600, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    w = rng.uniform(0.5, 2.0, 600).astype(np.float32)
    return X, y, w


def make(seed=0):
    model = fastbp.Sequential([fastbp.Input((6,)), fastbp.Dense(8, activation="relu"),
                               fastbp.Dense(3, activation="softmax")], seed=seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class Dataset:
    """A tf.data-like object: iterable again and again, never an array."""

    def __init__(self, *arrays, size=150):
        self.arrays, self.size = arrays, size

    def __iter__(self):
        n = len(self.arrays[0])
        for lo in range(0, n, self.size):
            yield tuple(a[lo:lo + self.size] for a in self.arrays)


def test_chunks_take_the_same_steps_as_arrays(table):
    """Chunks of whole batches, unshuffled: the same batches in the same order as one array,
    so the same weights, losses and metrics; sample weights ride in the chunks."""
    X, y, w = table
    arrays = make()
    h_arrays = arrays.fit(X, y, sample_weight=w, batch_size=50, epochs=3, shuffle=False,
                          verbose=0)
    chunked = make()
    h_chunks = chunked.fit(Dataset(X, y, w), batch_size=50, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(arrays.get_weights(), chunked.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h_arrays.history["loss"], h_chunks.history["loss"], rtol=1e-6)
    assert h_arrays.history["accuracy"] == h_chunks.history["accuracy"]


def test_a_generator_is_read_on_across_epochs(table):
    X, y, _ = table
    drawn = []

    def chunks():
        for k in range(100):
            drawn.append(k)
            lo = (k % 4) * 150
            yield X[lo:lo + 150], y[lo:lo + 150]

    model = make()
    history = model.fit(chunks(), epochs=3, steps_per_epoch=4, verbose=0)
    assert len(history.history["loss"]) == 3 and drawn == list(range(12))
    assert model.optimizer.iterations == 12  # no batch_size: a chunk is one batch (Keras)


def test_a_spent_generator_stops_the_fit_with_a_warning(table):
    X, y, _ = table
    model = make()
    gen = ((X[lo:lo + 200], y[lo:lo + 200]) for lo in range(0, 600, 200))
    with pytest.warns(UserWarning, match="ran out at the start of epoch 2/3"):
        history = model.fit(gen, epochs=3, batch_size=32, verbose=0)
    assert len(history.history["loss"]) == 1


def test_evaluate_and_predict_on_chunks_equal_arrays(table):
    X, y, w = table
    model = make()
    model.fit(X, y, epochs=2, verbose=0)
    assert model.evaluate(Dataset(X, y, w), verbose=0) == \
        pytest.approx(model.evaluate(X, y, sample_weight=w, verbose=0), rel=1e-12)
    expected = model.predict(X)
    np.testing.assert_array_equal(model.predict(Dataset(X)), expected)
    np.testing.assert_array_equal(model.predict([X[:100], X[100:]]), expected)
    np.testing.assert_array_equal(model.predict(x for x, _ in Dataset(X, y)), expected)
    first = model.predict(Dataset(X), steps=2)
    np.testing.assert_array_equal(first, expected[:300])


def test_a_non_finite_chunk_keeps_the_weights_of_the_chunk_before(table):
    X, y, _ = table
    bad = X[150:300] * np.float32(1e30)  # finite, but one SGD step makes the next overflow
    model, reference = make(), make()
    for m in (model, reference):
        m.compile(optimizer=fastbp.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    with pytest.raises(fastbp.NonFiniteLossError, match="non-finite in chunk 1 .*before that "
                                                        "chunk"):
        model.fit([(X[:150], y[:150]), (bad, y[150:300])], batch_size=50, epochs=1, verbose=0)
    reference.fit([(X[:150], y[:150])], batch_size=50, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_chunk_errors_name_the_chunk(table):
    X, y, w = table
    model = make()
    with pytest.raises(TypeError, match="chunk 1 must be a tuple"):
        model.fit(iter([(X[:10], y[:10]), X[10:20]]), verbose=0)
    with pytest.raises(ValueError, match="chunk 1 x has 5 features, but the model expects 6"):
        model.fit(iter([(X[:10], y[:10]), (X[10:20, :5], y[10:20])]), verbose=0)
    with pytest.raises(ValueError, match="chunk 0 y holds class labels out of range"):
        model.fit(iter([(X[:10], y[:10] + 5)]), verbose=0)
    with pytest.raises(ValueError, match="sample_weight does not apply"):
        model.fit(Dataset(X, y), sample_weight=w, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch applies when x is an iterable"):
        model.fit(X, y, steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="validation_steps is not supported"):
        model.fit(X, y, validation_steps=3, verbose=0)
    with pytest.raises(ValueError, match="callbacks in evaluate"):
        model.evaluate(X, y, callbacks=[fastbp.callbacks.History()], verbose=0)


def test_keras_positional_order_and_initial_epoch(table):
    """fit(x, y, batch_size, epochs) as Keras orders them; initial_epoch resumes the count."""
    X, y, _ = table
    a, b = make(), make()
    a.fit(X, y, 64, 2, 0)
    b.fit(X, y, batch_size=64, epochs=2, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    history = a.fit(X, y, epochs=5, initial_epoch=3, verbose=0)
    assert len(history.history["loss"]) == 2
    with pytest.raises(ValueError, match="initial_epoch must be below epochs"):
        a.fit(X, y, epochs=2, initial_epoch=2, verbose=0)
    history = a.fit(X, y, epochs=4, validation_data=(X, y), validation_freq=2, verbose=0)
    assert len(history.history["val_loss"]) == 2


def test_chunks_warning_free_for_a_list(table):
    """A list is iterated anew every epoch (no warning, every epoch trains)."""
    X, y, _ = table
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = make().fit([(X[:300], y[:300]), (X[300:], y[300:])], epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
