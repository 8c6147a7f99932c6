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
        model.fit(np.zeros((3, 4)), np.zeros((3, 2)), verbose=0)
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


def test_the_seed_loop_runs_with_model_gradients():
    """The seed's hand-written loop, ``tape.gradient`` replaced by ``model.gradients``: it
    trains, and it takes the same steps as ``fit`` over the same batches."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((600, 10)).astype(np.float32)
    labels_all = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    dataset = [(X[lo:lo + 100], labels_all[lo:lo + 100]) for lo in range(0, 600, 100)]

    def make():
        model = fastbp.Sequential([fastbp.Input((10,)),
                                   fastbp.Dense(16, activation="relu", l2=1e-3),
                                   fastbp.Dense(3)], seed=0)
        model.compile(optimizer=fastbp.optimizers.Adam(0.01),
                      loss=fastbp.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    model = make()
    loss_fn = fastbp.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = fastbp.optimizers.Adam(0.01)
    seen = []
    for epoch in range(3):
        for batch in dataset:
            predictions = model(batch[0])
            loss = loss_fn(batch[1], predictions)
            gradients = model.gradients(batch[0], batch[1])
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            seen.append(loss)
    assert optimizer.iterations == 18 and sum(seen[-6:]) < 0.9 * sum(seen[:6])

    fitted = make()
    fitted.fit(X, labels_all, epochs=3, batch_size=100, shuffle=False, verbose=0)
    for ours, theirs in zip(model.get_weights(), fitted.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", ["dense", "batchnorm"])
def test_gradients_against_the_float64_reference(spec):
    """``model.gradients`` (compiled, float32) against the NumPy reference's gradient of the
    same loss in float64 (itself checked by central differences in test_gradients.py), per
    variable, penalties included."""
    from fastbp import engine, trainer
    rng = np.random.default_rng(6)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    layers = [fastbp.Input((5,)), fastbp.Dense(7, activation="tanh", l1=1e-3, l2=1e-2)]
    if spec == "batchnorm":
        layers.append(fastbp.BatchNormalization())
    layers.append(fastbp.Dense(3, activation="softmax"))
    model = fastbp.Sequential(layers, seed=1)
    model.compile(loss="sparse_categorical_crossentropy")
    model.build(5)
    aux_before = model.aux.copy()
    grads = model.gradients(X, y)
    variables = model.trainable_variables
    assert [g.shape for g in grads] == [v.shape for v in variables]
    prepared, _, _ = fastbp.data.prepare(model, X, y)
    model.aux[:] = aux_before  # the reference starts from the same batch-norm statistics
    reference = trainer.FullBatchObjective(
        engine.get("numpy"), model.layout, model.params, model.aux, model.loss.code,
        model.loss.loss_param(3), prepared, dtype=np.float64)
    _, flat = reference(model.params.astype(np.float64))
    for g, v in zip(grads, variables):
        expected = flat[v.offset:v.offset + v.size].reshape(v.shape)
        np.testing.assert_allclose(g, expected, rtol=2e-4, atol=2e-6)


def test_gradients_against_pytorch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    X = rng.standard_normal((50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    model = fastbp.Sequential([fastbp.Input((4,)), fastbp.Dense(6, activation="relu"),
                               fastbp.Dense(3)], seed=2)
    loss = fastbp.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    grads = model.gradients(X, y, loss=loss)
    W1, b1, W2, b2 = (torch.tensor(w, requires_grad=True) for w in model.get_weights())
    z = torch.relu(torch.from_numpy(X) @ W1 + b1) @ W2 + b2
    value = torch.nn.functional.cross_entropy(z, torch.from_numpy(y), label_smoothing=0.1)
    value.backward()
    for ours, theirs in zip(grads, (W1, b1, W2, b2)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_trainable_variables_and_apply_gradients_contract():
    model = fastbp.Sequential([fastbp.Input((3,)), fastbp.Dense(4), fastbp.BatchNormalization(),
                               fastbp.Dense(2)], seed=0)
    variables = model.trainable_variables
    assert [v.path.split("/")[1] for v in variables] == ["kernel", "bias", "gamma", "beta",
                                                        "kernel", "bias"]
    assert [v.name for v in model.non_trainable_variables] == ["moving_mean",
                                                               "moving_variance"]
    kernel = variables[0]
    np.testing.assert_array_equal(np.asarray(kernel), model.get_weights()[0])
    kernel.assign(np.ones((3, 4)))
    assert (model.get_weights()[0] == 1).all()  # a live view

    opt = fastbp.optimizers.SGD(0.5)
    before = model.get_weights()
    grads = [np.ones(v.shape, np.float32) for v in variables]
    opt.apply_gradients([(grads[1], variables[1])])  # one variable: the others stay
    after = model.get_weights()
    np.testing.assert_allclose(after[1], before[1] - 0.5)
    for i in (0, 2, 3, 6, 7):
        np.testing.assert_array_equal(after[i], before[i])
    assert opt.iterations == 1

    with pytest.raises(ValueError, match=r"gradient of .*kernel must have shape \(3, 4\)"):
        opt.apply_gradients([(np.ones((4, 3)), variables[0])])
    with pytest.raises(ValueError, match="must hold finite numbers"):
        opt.apply_gradients([(np.full((3, 4), np.nan), variables[0])])
    with pytest.raises(TypeError, match="must be one of model.trainable_variables"):
        opt.apply_gradients([(np.ones((3, 4)), np.zeros((3, 4)))])
    with pytest.raises(TypeError, match="must be one of model.trainable_variables"):
        opt.apply_gradients([(np.ones(4), model.non_trainable_variables[0])])
    other = fastbp.Sequential([fastbp.Input((3,)), fastbp.Dense(4)], seed=0)
    with pytest.raises(ValueError, match="different models"):
        opt.apply_gradients([(grads[0], variables[0]), (grads[0], other.trainable_variables[0])])
    with pytest.raises(ValueError, match="no \\(gradient, variable\\) pairs"):
        opt.apply_gradients([])
    assert opt.iterations == 1  # refused calls change nothing
    huge = fastbp.optimizers.SGD(1e38)
    with pytest.raises(fastbp.NonFiniteLossError, match="weights and the optimizer state are "
                                                        "as before"):
        huge.apply_gradients([(np.full((3, 4), 1e3), variables[0])])
    np.testing.assert_array_equal(model.get_weights()[0], after[0])


def test_gradients_needs_a_loss_and_checks_its_input():
    model = fastbp.Sequential([fastbp.Input((3,)), fastbp.Dense(2)])
    with pytest.raises(RuntimeError, match="compile"):
        model.gradients(np.zeros((2, 3)), np.zeros((2, 2)))
    grads = model.gradients(np.ones((2, 3)), np.zeros((2, 2)), loss="mse")
    assert [g.shape for g in grads] == [(3, 2), (2,)]
    with pytest.raises(ValueError, match="X has 4 features"):
        model.gradients(np.zeros((2, 4)), np.zeros((2, 2)), loss="mse")
    with pytest.raises(ValueError, match="training=False"):
        model.gradients(np.ones((2, 3)), np.zeros((2, 2)), loss="mse", training=False)


def test_clone_model_copies_the_architecture_not_the_weights(mnist_like):
    X, Y = mnist_like
    model = fastbp.Sequential([fastbp.Input((28,)), fastbp.Dense(16, activation="relu"),
                               fastbp.Dropout(0.1), fastbp.Dense(64, activation="softmax")],
                              seed=3)
    start = model.get_weights()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(X, Y, epochs=1, verbose=0)
    clone = fastbp.models.clone_model(model)
    assert clone.get_config() == model.get_config() and clone.loss is None
    for a, b in zip(clone.get_weights(), start):  # fresh: the weights the original began with
        np.testing.assert_array_equal(a, b)
    renamed = fastbp.models.clone_model(model, clone_function=lambda layer: layer)
    assert renamed.get_config() == model.get_config()
    with pytest.raises(TypeError, match="clone_model expects a fastbp.Sequential"):
        fastbp.models.clone_model("model")
    assert fastbp.models.model_from_config(model.get_config()).get_config() == \
        model.get_config()


def test_pop_keeps_the_other_layers_weights(mnist_like):
    X, Y = mnist_like
    model = fastbp.Sequential([fastbp.Input((28,)), fastbp.Dense(16, activation="relu"),
                               fastbp.BatchNormalization(), fastbp.Dense(64, activation="softmax")],
                              seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(X, Y, epochs=1, verbose=0)
    before = model.get_weights()
    last = model.pop()
    assert isinstance(last, fastbp.Dense) and len(model.layers) == 2
    after = model.get_weights()
    assert len(after) == 6
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="no layers"):
        fastbp.Sequential().pop()


def test_keras_layer_and_compile_arguments():
    """Keras 3's argument names and defaults: what fastbp has works, what it does not have
    raises naming the argument (never ignored)."""
    a = fastbp.Dense(4, "relu", True, "he_normal", "zeros",
                     kernel_regularizer=fastbp.regularizers.L2(0.01))
    b = fastbp.Dense(4, activation="relu", kernel_initializer="he_normal", l2=0.01)
    assert (a.l1, a.l2, a.activation) == (b.l1, b.l2, b.activation) == (0.0, 0.01, "relu")
    assert fastbp.Dense(2, kernel_regularizer="l1_l2").l1 == 0.01
    assert fastbp.Dense.from_config(a.get_config()).l2 == 0.01
    for make, name in ((lambda: fastbp.Dense(2, use_bias=False), "use_bias"),
                       (lambda: fastbp.Dense(2, bias_regularizer="l2"), "bias_regularizer"),
                       (lambda: fastbp.Dense(2, kernel_constraint=object()), "kernel_constraint"),
                       (lambda: fastbp.Dropout(0.5, seed=3), "seed"),
                       (lambda: fastbp.Dropout(0.5, noise_shape=(None, 1)), "noise_shape"),
                       (lambda: fastbp.BatchNormalization(center=False), "center"),
                       (lambda: fastbp.BatchNormalization(axis=0), "axis")):
        with pytest.raises(ValueError, match=name):
            make()
    with pytest.raises(TypeError, match="kernel_regularizer"):
        fastbp.Dense(2, kernel_regularizer=0.01)
    with pytest.raises(TypeError, match="unexpected keyword argument 'lora_rank'"):
        fastbp.Dense(2, lora_rank=4)
    fastbp.Input(shape=(3,), batch_size=32, dtype="float32")
    with pytest.raises(ValueError, match="dtype"):
        fastbp.Input(shape=(3,), dtype="int8")

    model = fastbp.Sequential([fastbp.Input((3,)), fastbp.Dense(2)])
    model.compile(loss="mse")
    assert isinstance(model.optimizer, fastbp.optimizers.RMSprop)  # Keras's default
    model.compile(loss="mse", jit_compile=True, run_eagerly=False, steps_per_execution=1)
    for kwargs, name in (({"loss_weights": [1.0]}, "loss_weights"),
                         ({"run_eagerly": True}, "run_eagerly"),
                         ({"steps_per_execution": 4}, "steps_per_execution"),
                         ({"weighted_metrics": ["mse"]}, "weighted_metrics")):
        with pytest.raises(ValueError, match=name):
            model.compile(loss="mse", **kwargs)
    lines = []
    model.summary(print_fn=lines.append)
    assert "Total params: 8" in lines[0]
    with pytest.raises(ValueError, match="line_length"):
        model.summary(line_length=80)


def test_save_overwrite_false_refuses_an_existing_file(tmp_path):
    model = fastbp.Sequential([fastbp.Input((3,)), fastbp.Dense(2)])
    model.save(tmp_path / "m.npz")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(tmp_path / "m.npz", overwrite=False)
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m", overwrite=False)
    model.save(tmp_path / "other", overwrite=False)
    assert (tmp_path / "other.npz").exists()
