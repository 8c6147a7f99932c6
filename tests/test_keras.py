"""Keras code with fastbp's names: the seed article's model, Keras's signatures and names."""

import numpy as np
import pytest

import fastbp


@pytest.fixture
def mnist_like():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 28)).astype(np.float32)
    Y = np.eye(64)[(X[:, :6].sum(axis=1) > 0).astype(int) + 2 * (X[:, 6] > 0)]
    return X, Y


def test_the_seed_articles_model_runs_with_fastbp_for_tf_keras(mnist_like):
    """The seed's code with ``tf.keras`` replaced by ``fastbp``, as written there (its last
    layer a Dropout, an SGD positional learning rate), trains: the loss goes down."""
    train_X, train_Y = mnist_like
    learning_rate, num_epochs = 0.1, 5
    model = fastbp.Sequential([
        fastbp.Dense(64, activation='relu', input_shape=(28,)),
        fastbp.Dropout(0.2),
        fastbp.Dense(64, activation='relu'),
        fastbp.Dropout(0.2)])
    model.compile(optimizer=fastbp.optimizers.SGD(learning_rate),
                  loss='categorical_crossentropy', metrics=['accuracy'])
    history = model.fit(train_X, train_Y, epochs=num_epochs, batch_size=500)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.count_params() == 28 * 64 + 64 + 64 * 64 + 64


def test_input_and_input_shape_build_the_model_at_once():
    for first in ([fastbp.Input(shape=(5,)), fastbp.Dense(3)],
                  [fastbp.Dense(3, input_shape=(5,))]):
        model = fastbp.Sequential(first)
        assert model.n_features == 5 and model.count_params() == 18
        assert len(model.get_weights()) == 2  # built when its weights are asked for
    model = fastbp.Sequential([fastbp.Input(shape=(5,))])
    model.add(fastbp.Dense(2))  # layers may follow an Input, as in Keras
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="X has 4 features, but the model expects 5"):
        model.fit(np.zeros((3, 4)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="input_shape must be"):
        fastbp.Dense(3, input_shape=(5, 2))
    with pytest.raises(ValueError, match="input_shape belongs on the first layer"):
        fastbp.Sequential([fastbp.Dense(3), fastbp.Dense(2, input_shape=(3,))])


def test_keras_call_and_batch_methods(mnist_like, capsys):
    X, Y = mnist_like
    model = fastbp.Sequential([fastbp.Input((28,)), fastbp.Dense(16, activation="relu"),
                               fastbp.Dense(64, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    np.testing.assert_array_equal(model(X[:7]), model.predict(X[:7], verbose=0))
    np.testing.assert_array_equal(model.predict_on_batch(X[:7]), model.predict(X[:7]))
    before = model.get_weights()[0].copy()
    loss, accuracy = model.train_on_batch(X[:100], Y[:100])
    assert model.optimizer.iterations == 1 and not np.array_equal(model.get_weights()[0], before)
    assert model.test_on_batch(X[:100], Y[:100], return_dict=True).keys() == {"loss", "accuracy"}
    capsys.readouterr()
    model.evaluate(X, Y)  # verbose="auto": one line, as Keras prints one
    assert "loss:" in capsys.readouterr().out
    model.evaluate(X, Y, verbose=0)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="verbose"):
        model.predict(X, verbose=3)


def test_from_config_builds_the_same_architecture():
    model = fastbp.Sequential([fastbp.Input((6,)), fastbp.Dense(4, activation="elu", alpha=0.5),
                               fastbp.Dropout(0.1), fastbp.Dense(2, activation="softmax")],
                              seed=3, name="net")
    clone = fastbp.Sequential.from_config(model.get_config())
    assert clone.get_config() == model.get_config() and clone.count_params() == 38
    with pytest.raises(ValueError, match="from_config expects a dict"):
        fastbp.Sequential.from_config([1, 2])


def test_keras_losses_are_callable_and_sparse_categorical_takes_indices():
    sparse = fastbp.losses.get("sparse_categorical_crossentropy")
    assert isinstance(sparse, fastbp.losses.SparseCategoricalCrossentropy)
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    assert sparse(np.array([0, 1, 1]), p) == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.5])))
    assert sparse(np.array([0, 1, 1]), p, sample_weight=np.array([1.0, 0.0, 2.0])) == \
        pytest.approx(-(np.log(0.9) + 2 * np.log(0.5)) / 3)
    with pytest.raises(ValueError, match="class indices"):
        sparse(np.eye(2)[[0, 1, 1]], p)
    mse = fastbp.losses.MeanSquaredError()
    assert mse(np.array([1.0, 2.0]), np.array([1.5, 2.0])) == pytest.approx(0.125)
    bce = fastbp.losses.get("binary_crossentropy")
    assert bce(np.array([1.0, 0.0]), np.array([0.8, 0.3])) == \
        pytest.approx(-np.mean([np.log(0.8), np.log(0.7)]))
