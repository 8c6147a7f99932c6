"""The Keras loss objects: values against formulas written out here and against PyTorch
(when installed), ``from_logits`` and ``label_smoothing`` in training, configs."""

import numpy as np
import pytest

import fastbp
from fastbp import losses


@pytest.fixture
def batch():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((40, 4)) * 2
    labels = rng.integers(0, 4, 40)
    return z, labels, rng


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_values_against_the_formulas(batch):
    z, labels, rng = batch
    onehot = np.eye(4)[labels]
    p = softmax(z)
    s = 0.2
    smooth = onehot * (1 - s) + s / 4
    expected = {
        "cce": (losses.CategoricalCrossentropy(), onehot, p,
                -(onehot * np.log(p)).sum(axis=1).mean()),
        "cce_logits_smooth": (losses.CategoricalCrossentropy(from_logits=True, label_smoothing=s),
                              onehot, z, -(smooth * np.log(p)).sum(axis=1).mean()),
        "sparse_logits": (losses.SparseCategoricalCrossentropy(from_logits=True), labels, z,
                          -np.log(p[np.arange(40), labels]).mean()),
    }
    y01 = rng.integers(0, 2, (40, 4)).astype(float)
    q = 1 / (1 + np.exp(-z))
    y01s = y01 * (1 - s) + 0.5 * s
    expected["bce_logits_smooth"] = (
        losses.BinaryCrossentropy(from_logits=True, label_smoothing=s), y01, z,
        -(y01s * np.log(q) + (1 - y01s) * np.log(1 - q)).mean())
    target = rng.standard_normal((40, 4))
    expected["mae"] = (losses.MeanAbsoluteError(), target, z, np.abs(z - target).mean())
    expected["mse"] = (losses.MeanSquaredError(), target, z, ((z - target) ** 2).mean())
    d = np.abs(z - target)
    expected["huber"] = (losses.Huber(delta=0.7), target, z,
                         np.where(d <= 0.7, 0.5 * d * d, 0.7 * (d - 0.35)).mean())
    for name, (loss, y, out, value) in expected.items():
        assert loss(y, out) == pytest.approx(value, rel=1e-5), name


def test_values_against_pytorch(batch):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z, labels, rng = batch
    zt, lt = torch.from_numpy(z), torch.from_numpy(labels)
    y01 = rng.integers(0, 2, (40, 4)).astype(float)
    target = rng.standard_normal((40, 4))
    pairs = [
        (losses.SparseCategoricalCrossentropy(from_logits=True)(labels, z),
         F.cross_entropy(zt, lt)),
        (losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
            np.eye(4)[labels], z), F.cross_entropy(zt, lt, label_smoothing=0.1)),
        (losses.BinaryCrossentropy(from_logits=True)(y01, z),
         F.binary_cross_entropy_with_logits(zt, torch.from_numpy(y01))),
        (losses.MeanAbsoluteError()(target, z), F.l1_loss(zt, torch.from_numpy(target))),
        (losses.Huber(delta=0.5)(target, z),
         F.huber_loss(zt, torch.from_numpy(target), delta=0.5)),
        (losses.MeanSquaredError()(target, z), F.mse_loss(zt, torch.from_numpy(target))),
        (losses.BinaryCrossentropy()(y01, 1 / (1 + np.exp(-z))),
         F.binary_cross_entropy(torch.sigmoid(zt), torch.from_numpy(y01))),
        (losses.CategoricalCrossentropy()(np.eye(4)[labels], softmax(z)), F.cross_entropy(zt, lt)),
    ]
    for ours, theirs in pairs:
        assert ours == pytest.approx(float(theirs), rel=1e-6)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_from_logits_trains_as_the_fused_output_and_predicts_logits(backend):
    """A linear last layer with ``from_logits=True`` trains exactly as a softmax (sigmoid) last
    layer with ``from_logits=False`` (the same fused kernels); ``predict`` gives the logits,
    ``predict_proba`` and ``predict_classes`` read them as Keras users do."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    for out_act, make_loss, targets in (
            ("softmax", losses.SparseCategoricalCrossentropy, y),
            ("sigmoid", losses.BinaryCrossentropy, (X[:, 0] > 0).astype(int))):
        units = 3 if out_act == "softmax" else 1
        models = []
        for act, logits in ((out_act, False), (None, True)):
            model = fastbp.Sequential([fastbp.Input((6,)), fastbp.Dense(8, activation="tanh"),
                                       fastbp.Dense(units, activation=act)], seed=0)
            model.compile(optimizer="adam", loss=make_loss(from_logits=logits),
                          metrics=["accuracy"], backend=backend)
            models.append((model, model.fit(X, targets, epochs=3, batch_size=32, verbose=0).history))
        (a, ha), (b, hb) = models
        assert ha["loss"] == hb["loss"] and ha["accuracy"] == hb["accuracy"]
        assert a.evaluate(X, targets, verbose=0) == b.evaluate(X, targets, verbose=0)
        logits = b.predict(X)
        assert logits.min() < 0  # not probabilities
        np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-6)
        np.testing.assert_array_equal(b.predict_classes(X), a.predict_classes(X))


def test_from_logits_needs_a_linear_last_layer():
    model = fastbp.Sequential([fastbp.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match=r"from_logits=True\) reads the model's outputs as "
                                         r"logits.*'softmax'"):
        model.compile(loss=losses.CategoricalCrossentropy(from_logits=True))
    with pytest.raises(TypeError, match="from_logits must be True or False"):
        losses.BinaryCrossentropy(from_logits="yes")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(TypeError, match="label_smoothing"):
        losses.SparseCategoricalCrossentropy(label_smoothing=0.1)


def test_label_smoothing_trains_on_smoothed_targets():
    """Smoothing pulls the trained probabilities away from 0 and 1."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    top = []
    for s in (0.0, 0.3):
        model = fastbp.Sequential([fastbp.Input((4,)), fastbp.Dense(2, activation="softmax")],
                                  seed=0)
        model.compile(optimizer=fastbp.optimizers.Adam(0.05),
                      loss=losses.CategoricalCrossentropy(label_smoothing=s))
        model.fit(X, y, epochs=300, batch_size=400, verbose=0)
        top.append(np.median(model.predict(X).max(axis=1)))
    # separable classes: without smoothing the probabilities go to 1; with it, a row's best
    # probability is 1 - s/2 = 0.85 (a linear model overshoots it only far from the boundary)
    assert top[0] > 0.95 and 0.7 < top[1] < 0.85


@pytest.mark.parametrize("loss", [losses.CategoricalCrossentropy(from_logits=True,
                                                                 label_smoothing=0.1),
                                  losses.SparseCategoricalCrossentropy(from_logits=True),
                                  losses.BinaryCrossentropy(label_smoothing=0.2),
                                  losses.MeanAbsoluteError()])
def test_configs_round_trip_through_save_and_load(loss, tmp_path):
    again = losses.get(loss.get_config())
    assert type(again) is type(loss) and again.get_config() == loss.get_config()
    units = 1 if isinstance(loss, (losses.BinaryCrossentropy, losses.MeanAbsoluteError)) else 3
    model = fastbp.Sequential([fastbp.Input((2,)), fastbp.Dense(units)], seed=0)
    model.compile(loss=loss)
    model.save(tmp_path / "m.npz")
    assert fastbp.load(tmp_path / "m.npz").loss.get_config() == loss.get_config()


def test_mae_by_name_trains_compiled_as_the_reference():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 3)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5], np.float32) + rng.laplace(size=200).astype(np.float32)
    weights = []
    for backend in ("numba", "numpy"):
        model = fastbp.Sequential([fastbp.Input((3,)), fastbp.Dense(1)], seed=0)
        model.compile(optimizer="sgd", loss="mae", backend=backend)
        history = model.fit(X, y, epochs=5, batch_size=20, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0]
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
