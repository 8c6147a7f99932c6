"""Each library of BENCHMARKS.md, written the way its own users write it.

Every ``run_<library>(name, epochs, threads)`` trains the workload ``name`` and returns a dict:
``epoch_s`` (list of per-epoch wall times, the first one including compilation), ``samples``
(rows per epoch), ``predict_s`` (best of 3 whole-data predictions: class probabilities for
classification in every library, as ``predict`` in fastbp and ``predict_proba`` in
scikit-learn give them, not raw scores) and ``accuracy`` or ``mse``
on the training data. Run in a fresh process per (library, workload): see ``compare.py``.
"""

import time

import numpy as np

from workloads import WORKLOADS, data, epoch_clock


def _evaluate(name, out, y):
    if WORKLOADS[name][5] == "classification":
        return {"accuracy": float(np.mean(np.asarray(out).argmax(axis=1) == y))}
    return {"mse": float(np.mean((np.asarray(out).reshape(-1) - y) ** 2))}


def _best_of(f, repeats=3):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best


def run_fastbp(name, epochs, threads, backend="numba"):
    from workloads import fastbp_model

    X, y = data(name)
    batch = WORKLOADS[name][4]
    model = fastbp_model(name, backend)
    times = []
    Clock = epoch_clock(times)

    start = time.perf_counter()
    model.fit(X, y, epochs=1, batch_size=batch, callbacks=[Clock()], verbose=0)
    times[0] = time.perf_counter() - start  # first fit: compilation or cache load included
    model.fit(X, y, epochs=epochs - 1, batch_size=batch, callbacks=[Clock()], verbose=0)
    predict_s = _best_of(lambda: model.predict(X))
    one_row = X[:1].copy()
    model.predict(one_row)
    latencies = []
    for _ in range(2000):
        start = time.perf_counter()
        model.predict(one_row)
        latencies.append(time.perf_counter() - start)
    return {"epoch_s": times, "samples": len(X), "predict_s": predict_s,
            "one_row_predict_s": float(np.median(latencies)),
            **_evaluate(name, model.predict(X), y)}


def run_reference(name, epochs, threads):
    return run_fastbp(name, epochs, threads, backend="numpy")


def run_torch(name, epochs, threads):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    X, y = data(name)
    n, f, hidden, k, batch, task = WORKLOADS[name]
    layers, width = [], f
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, k))
    model = nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    classification = task == "classification"
    loss_fn = nn.CrossEntropyLoss() if classification else nn.MSELoss()
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y) if classification else torch.from_numpy(y).reshape(-1, 1)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    # what predict gives in every library here: probabilities for classification
    predict = (lambda: torch.softmax(model(Xt), dim=1)) if classification else (lambda: model(Xt))
    with torch.no_grad():
        predict_s = _best_of(predict)
        out = predict().numpy()
    return {"epoch_s": times, "samples": n, "predict_s": predict_s, **_evaluate(name, out, y)}


def _jax_setup(name):
    import jax
    import jax.numpy as jnp

    X, y = data(name)
    n, f, hidden, k, batch, task = WORKLOADS[name]
    key = jax.random.PRNGKey(0)
    params, width = [], f
    for units in list(hidden) + [k]:
        key, sub = jax.random.split(key)
        limit = np.sqrt(6.0 / width)
        params.append((jax.random.uniform(sub, (width, units), minval=-limit, maxval=limit),
                       jnp.zeros(units)))
        width = units

    def forward(p, x):
        for W, b in p[:-1]:
            x = jax.nn.relu(x @ W + b)
        W, b = p[-1]
        return x @ W + b

    def loss(p, x, t):
        out = forward(p, x)
        if task == "classification":
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), t[:, None], axis=1))
        return jnp.mean((out[:, 0] - t) ** 2)

    b1, b2, eps, lr = 0.9, 0.999, 1e-7, 1e-3

    def step(carry, batch_xy):
        p, m, v, t = carry
        x, target = batch_xy
        value, g = jax.value_and_grad(loss)(p, x, target)
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, b: b1 * a + (1 - b1) * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: b2 * a + (1 - b2) * b * b, v, g)
        lr_t = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p = jax.tree_util.tree_map(lambda a, mm, vv: a - lr_t * mm / (jnp.sqrt(vv) + eps),
                                   p, m, v)
        return (p, m, v, t), value

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    carry = (params, zeros, zeros, 0.0)
    return jax, jnp, X, y, batch, carry, step, forward


def _jax_result(jax, forward, params, Xj, y, name, times, samples):
    """The runner's result dict: epoch times, then whole-data predictions (jitted, best of 3):
    probabilities for classification, as the other libraries' predictions."""
    if WORKLOADS[name][5] == "classification":
        predict = jax.jit(lambda p, x: jax.nn.softmax(forward(p, x)))
    else:
        predict = jax.jit(forward)
    predict(params, Xj).block_until_ready()
    predict_s = _best_of(lambda: predict(params, Xj).block_until_ready())
    return {"epoch_s": times, "samples": samples, "predict_s": predict_s,
            **_evaluate(name, predict(params, Xj), y)}


def run_jax_step(name, epochs, threads):
    jax, jnp, X, y, batch, carry, step, forward = _jax_setup(name)
    jstep = jax.jit(step)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    n_batches = len(X) // batch  # a last, smaller batch would compile a second step
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        perm = np.random.default_rng(epoch).permutation(len(X))
        for i in range(n_batches):
            idx = perm[i * batch:(i + 1) * batch]
            carry, value = jstep(carry, (Xj[idx], yj[idx]))
        value.block_until_ready()
        times.append(time.perf_counter() - start)
    return _jax_result(jax, forward, carry[0], Xj, y, name, times, n_batches * batch)


def run_jax_epoch(name, epochs, threads):
    jax, jnp, X, y, batch, carry, step, forward = _jax_setup(name)
    n_batches = len(X) // batch

    @jax.jit
    def epoch_fn(carry, X, y, perm):
        idx = perm[:n_batches * batch].reshape(n_batches, batch)
        return jax.lax.scan(step, carry, (X[idx], y[idx]))

    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        perm = jax.random.permutation(jax.random.PRNGKey(epoch), len(X))
        carry, values = epoch_fn(carry, Xj, yj, perm)
        values.block_until_ready()
        times.append(time.perf_counter() - start)
    return _jax_result(jax, forward, carry[0], Xj, y, name, times, n_batches * batch)


def run_sklearn(name, epochs, threads):
    import warnings

    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y = data(name)
    n, f, hidden, k, batch, task = WORKLOADS[name]
    cls = MLPClassifier if task == "classification" else MLPRegressor
    model = cls(hidden_layer_sizes=hidden, batch_size=batch, learning_rate_init=1e-3,
                random_state=0)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):
            start = time.perf_counter()
            if task == "classification":
                model.partial_fit(X, y, classes=np.arange(k))
            else:
                model.partial_fit(X, y)
            times.append(time.perf_counter() - start)
    method = model.predict_proba if task == "classification" else model.predict
    predict_s = _best_of(lambda: method(X))
    return {"epoch_s": times, "samples": n, "predict_s": predict_s, **_evaluate(name, method(X), y)}


LIBRARIES = {
    "fastbp": run_fastbp,
    "PyTorch eager": run_torch,
    "JAX jit/step": run_jax_step,
    "JAX jit/epoch": run_jax_epoch,
    "scikit-learn": run_sklearn,
    "fastbp NumPy reference": run_reference,
}
#: the module a library needs, to say which are missing
REQUIRES = {"PyTorch eager": "torch", "JAX jit/step": "jax", "JAX jit/epoch": "jax",
            "scikit-learn": "sklearn"}
