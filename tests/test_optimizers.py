"""Optimizer trajectories against an external oracle (PyTorch, when installed) and the
optimizer objects' own contract (names, configs, resuming a run)."""

import numpy as np
import pytest

import fastbp
from fastbp import optimizers


def _problem():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = (np.sin(X[:, :1]) + 0.3 * X[:, 1:2] ** 2).astype(np.float32)
    return X, y


def _fastbp_model(optimizer, backend):
    model = fastbp.Sequential([fastbp.Input((4,)), fastbp.Dense(5, activation="tanh"),
                               fastbp.Dense(1)], seed=1)
    model.compile(optimizer=optimizer, loss="mse", backend=backend)
    return model


# fastbp optimizer, its PyTorch twin (None where PyTorch's differs only by where epsilon goes)
TORCH_TWINS = {
    "sgd_nesterov": (lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                     lambda torch, p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "nadam_torch_decay": (lambda: optimizers.Nadam(0.01, epsilon=1e-8, momentum_decay=0.004),
                          lambda torch, p: torch.optim.NAdam(p, lr=0.01, eps=1e-8,
                                                             momentum_decay=0.004)),
    "nadam_keras_decay": (lambda: optimizers.Nadam(0.01, epsilon=1e-8),
                          lambda torch, p: torch.optim.NAdam(p, lr=0.01, eps=1e-8,
                                                             momentum_decay=1.0)),
    "adamax": (lambda: optimizers.Adamax(0.01, epsilon=1e-8),
               lambda torch, p: torch.optim.Adamax(p, lr=0.01, eps=1e-8)),
    "adam": (lambda: optimizers.Adam(0.01, epsilon=1e-8),
             lambda torch, p: torch.optim.Adam(p, lr=0.01, eps=1e-8)),
    "adamw": (lambda: optimizers.AdamW(0.01, weight_decay=0.1, epsilon=1e-8),
              lambda torch, p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-8)),
    "rmsprop_momentum": (lambda: optimizers.RMSprop(0.005, rho=0.9, momentum=0.5, epsilon=1e-7),
                         lambda torch, p: torch.optim.RMSprop(p, lr=0.005, alpha=0.9,
                                                              momentum=0.5, eps=1e-7)),
    "adagrad": (lambda: optimizers.Adagrad(0.05, initial_accumulator_value=0.1, epsilon=1e-7),
                lambda torch, p: torch.optim.Adagrad(p, lr=0.05, initial_accumulator_value=0.1,
                                                     eps=1e-7)),
}


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("case", sorted(TORCH_TWINS))
def test_trajectory_matches_pytorch(case, backend):
    """Twenty mini-batch steps from the same weights over the same batches land on PyTorch's
    weights (float32 arithmetic in both; Adam, AdamW and Adamax differ from PyTorch's only in
    where epsilon is added, Keras's ``eps`` beside the bias-corrected rate against PyTorch's
    beside the corrected second moment, and ``m / (u + eps)`` against
    ``m / max(b2 u, |g| + eps)``: a relative 1e-6 here)."""
    torch = pytest.importorskip("torch")
    make_ours, make_theirs = TORCH_TWINS[case]
    X, y = _problem()
    model = _fastbp_model(make_ours(), backend)
    W1, b1, W2, b2 = model.get_weights()

    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    with torch.no_grad():
        for layer, (W, b) in zip((net[0], net[2]), ((W1, b1), (W2, b2))):
            layer.weight.copy_(torch.from_numpy(W.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    opt = make_theirs(torch, net.parameters())
    for _ in range(5):
        for lo in range(0, 64, 16):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(torch.from_numpy(X[lo:lo + 16])),
                                                torch.from_numpy(y[lo:lo + 16]))
            loss.backward()
            opt.step()

    model.fit(X, y, epochs=5, batch_size=16, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 20
    theirs = [net[0].weight.detach().numpy().T, net[0].bias.detach().numpy(),
              net[2].weight.detach().numpy().T, net[2].bias.detach().numpy()]
    start = [W1, b1, W2, b2]
    for ours, them, before in zip(model.get_weights(), theirs, start):
        assert np.abs(them - before).max() > 1e-2  # the steps moved the weights
        np.testing.assert_allclose(ours, them, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name", ["nadam", "adamax"])
def test_compiled_matches_reference_over_epochs(name):
    """The compiled epochs follow the NumPy reference's step by step (Nadam's product of
    momentum coefficients carried across epochs and fits)."""
    X, y = _problem()
    fits = []
    for backend in ("numba", "numpy"):
        model = _fastbp_model(name, backend)
        model.fit(X, y, epochs=3, batch_size=10, shuffle=True, verbose=0)
        model.fit(X, y, epochs=2, batch_size=7, shuffle=True, verbose=0)
        fits.append(model.get_weights())
    for ours, reference in zip(*fits):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["nadam", "adamax"])
def test_save_and_load_resume_the_same_trajectory(name, tmp_path):
    """Saved mid-run and loaded, a model continues exactly as the one that was not saved."""
    X, y = _problem()
    model = _fastbp_model(name, "numba")
    model.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    model.save(tmp_path / "m.npz")
    model.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    loaded = fastbp.load(tmp_path / "m.npz")
    assert type(loaded.optimizer) is type(model.optimizer)
    loaded.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_nadam_momentum_product_follows_iterations():
    """Setting ``iterations`` from outside (as a restore does) recomputes the product of the
    momentum coefficients in step order; the epoch loop's product is taken back as is."""
    opt = optimizers.Nadam(momentum_decay=0.004)
    opt.iterations = 3
    expected = 1.0
    for t in (1, 2, 3):
        expected *= 0.9 * (1.0 - 0.5 * 0.96 ** (t * 0.004))
    assert opt.mu_product() == expected
    config = opt.get_config()
    assert config["name"] == "nadam" and config["momentum_decay"] == 0.004
    again = optimizers.get(config)
    assert isinstance(again, optimizers.Nadam) and again.momentum_decay == 0.004
    with pytest.raises(ValueError, match="momentum_decay"):
        optimizers.Nadam(momentum_decay=-1.0)
    assert isinstance(optimizers.get("adamax"), optimizers.Adamax)
