"""A hyperparameter search end to end: GridSearchCV over 24 configurations x 3 folds.

    python bench/search.py                  # writes bench/results/search.md and prints it
    python bench/search.py --rows 10000     # a quicker run

The same search four ways, each in its own fresh process, on one 50,000-row table (the
protocol's synthetic classification data, 32 inputs, 10 classes):

* fastbp: ``GridSearchCV(fastbp.MLPClassifier(...), grid, cv=3)``;
* scikit-learn: the same line with ``sklearn.neural_network.MLPClassifier``, and again with
  ``n_jobs=2`` (one fit per core, scikit-learn's own way to use both);
* PyTorch: the loop a user writes: ``ParameterGrid`` x ``StratifiedKFold``, an ``nn.Sequential``
  per configuration, Adam with ``weight_decay`` = alpha / n_train (scikit-learn's penalty
  ``alpha / (2 n) ||W||^2`` per sample, whose gradient is ``alpha / n W``), mini-batches by
  index slicing of a ``randperm``, accuracy on the held-out fold;
* JAX: the same loop with one jitted epoch (its batches in ``lax.scan``, the fastest JAX form
  in ``bench/sweep.py``; scikit-learn's penalty on the weights in the loss; learning rate and
  penalty passed as arguments, so a new value does not recompile) and a jitted prediction.
  ``jit`` compiles once per network shape and fold size: the count of those compilations and
  the seconds of the calls that made them (each also runs its epoch once) are reported, where
  fastbp's one compiled kernel serves every shape.

Grid: hidden sizes (32,), (64,), (64, 64), (128, 64) x alpha 1e-4, 1e-3 x learning rate
1e-3, 3e-3, 1e-2; 10 epochs each (``max_iter=10``, no early stopping), batch 200, Adam.
Reported: wall clock from the start of the search to ``best_params_`` (the fresh process's
imports and data making excluded), best mean cross-validated accuracy, best parameters.
Every network shape in the grid runs fastbp's one compiled signature: nothing compiles
during the search (the count of compilations is printed).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

COMMON = """
import json, sys, time, warnings
import numpy as np
sys.path.insert(0, {here!r})
rows = {rows}
rng = np.random.default_rng(0)
X = rng.standard_normal((rows, 32), dtype=np.float32)
T = rng.standard_normal((32, 10), dtype=np.float32)
y = (X @ T).argmax(axis=1).astype(np.int64)
grid = {{"hidden_layer_sizes": [(32,), (64,), (64, 64), (128, 64)], "alpha": [1e-4, 1e-3],
        "learning_rate_init": [1e-3, 3e-3, 1e-2]}}
"""

GRID_SEARCH = COMMON + """
from sklearn.model_selection import GridSearchCV
from sklearn.exceptions import ConvergenceWarning
warnings.simplefilter("ignore", ConvergenceWarning)
{imports}
estimator = MLPClassifier(max_iter=10, batch_size=200, random_state=0, solver="adam")
n_jobs = {n_jobs}
search = GridSearchCV(estimator, grid, cv=3, n_jobs=n_jobs)
start = time.perf_counter()
search.fit(X, y)
seconds = time.perf_counter() - start
{after}
print(json.dumps({{"seconds": seconds, "score": search.best_score_,
                  "params": str(search.best_params_), "extra": extra}}))
"""

FASTBP = dict(imports="""import fastbp
from fastbp import MLPClassifier
from fastbp.kernels import epoch, inference
def signatures():  # the kernels' compiled (or loaded) signatures in this process
    return sum(len(k.signatures) for k in (epoch.train_epoch, inference.infer))
from fastbp import trainer
fastbp.MLPClassifier(max_iter=1).fit(X[:64], y[:64]).score(X[:64], y[:64])  # load the kernels
before = signatures()
epochs = [0, 0.0]  # epochs run in this process, and their seconds (the compiled call and the
run = trainer.EpochRunner.run  # Python around it): the rest is per fit, score and search
def timed_run(self, order):
    start = time.perf_counter()
    try:
        return run(self, order)
    finally:
        epochs[0] += 1
        epochs[1] += time.perf_counter() - start
trainer.EpochRunner.run = timed_run""", after="""extra = (
         f'fastbp: kernel signatures in the searching process: {before} before the search, '
         f'{signatures()} after; {epochs[0]} epochs took {epochs[1]:.1f} s of the '
         f'{seconds:.1f} s ({epochs[1] / epochs[0] * 1e3:.1f} ms each), the rest went to '
         f'checking and encoding the data, shuffling, scoring and GridSearchCV itself'
         if n_jobs is None else '')""")
SKLEARN = dict(imports="from sklearn.neural_network import MLPClassifier", after="extra = ''")

TORCH = COMMON + """
import torch
from torch import nn
from sklearn.model_selection import ParameterGrid, StratifiedKFold
torch.set_num_threads(2)
Xt, yt = torch.from_numpy(X), torch.from_numpy(y)


def train_and_score(params, train, test):
    torch.manual_seed(0)
    layers, width = [], X.shape[1]
    for h in params["hidden_layer_sizes"]:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    opt = torch.optim.Adam(model.parameters(), lr=params["learning_rate_init"],
                           weight_decay=params["alpha"] / len(train))
    loss_fn = nn.CrossEntropyLoss()
    Xtr, ytr = Xt[train], yt[train]
    for epoch in range(10):
        perm = torch.randperm(len(train))
        for i in range(0, len(train), 200):
            idx = perm[i:i + 200]
            opt.zero_grad()
            loss_fn(model(Xtr[idx]), ytr[idx]).backward()
            opt.step()
    with torch.no_grad():
        return (model(Xt[test]).argmax(1) == yt[test]).float().mean().item()


start = time.perf_counter()
best, best_params = -1.0, None
folds = list(StratifiedKFold(3).split(X, y))
for params in ParameterGrid(grid):
    score = np.mean([train_and_score(params, tr, te) for tr, te in folds])
    if score > best:
        best, best_params = score, params
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "score": best, "params": str(best_params),
                  "extra": ""}}))
"""

JAX = COMMON + """
import jax
import jax.numpy as jnp
from sklearn.model_selection import ParameterGrid, StratifiedKFold
Xj, yj = jnp.asarray(X), jnp.asarray(y)


def loss(params, xb, yb, penalty):
    h = xb
    for W, b in params[:-1]:
        h = jax.nn.relu(h @ W + b)
    out = h @ params[-1][0] + params[-1][1]
    data = -jnp.mean(jax.nn.log_softmax(out)[jnp.arange(xb.shape[0]), yb])
    return data + 0.5 * penalty * sum(jnp.sum(W * W) for W, _ in params)


def step(params, m, v, t, xb, yb, lr, penalty):
    g = jax.grad(loss)(params, xb, yb, penalty)
    m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
    v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
    scale = lr * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
    params = jax.tree_util.tree_map(lambda a, b, c: a - scale * b / (jnp.sqrt(c) + 1e-8),
                                    params, m, v)
    return params, m, v


@jax.jit
def epoch(params, m, v, t, Xtr, ytr, order, lr, penalty):
    # the epoch's whole batches in one lax.scan, then the shorter last one
    whole = order.shape[0] // 200 * 200

    def body(carry, batch):
        params, m, v, t = carry
        t = t + 1
        return (*step(params, m, v, t, *batch, lr, penalty), t), None

    batches = (Xtr[order[:whole]].reshape(-1, 200, Xtr.shape[1]),
               ytr[order[:whole]].reshape(-1, 200))
    (params, m, v, t), _ = jax.lax.scan(body, (params, m, v, t), batches)
    if whole < order.shape[0]:
        t = t + 1
        params, m, v = step(params, m, v, t, Xtr[order[whole:]], ytr[order[whole:]], lr,
                            penalty)
    return params, m, v, t


@jax.jit
def predict(params, xb):
    h = xb
    for W, b in params[:-1]:
        h = jax.nn.relu(h @ W + b)
    return jnp.argmax(h @ params[-1][0] + params[-1][1], axis=1)


compiles = [0, 0.0]  # compilations, and the seconds of the calls that compiled


def call(f, *args):
    before, start = f._cache_size(), time.perf_counter()
    out = f(*args)
    if f._cache_size() > before:
        jax.block_until_ready(out)
        compiles[0] += 1
        compiles[1] += time.perf_counter() - start
    return out


def train_and_score(params_, train, test, seed):
    key = jax.random.PRNGKey(seed)
    sizes, params = [X.shape[1], *params_["hidden_layer_sizes"], 10], []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (a, b)) * jnp.sqrt(2.0 / a), jnp.zeros(b)))
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    lr, penalty = jnp.float32(params_["learning_rate_init"]), jnp.float32(
        params_["alpha"] / len(train))
    Xtr, ytr = Xj[train], yj[train]
    rng, t = np.random.default_rng(seed), jnp.float32(0)
    for _ in range(10):
        order = jnp.asarray(rng.permutation(len(train)))
        params, m, v, t = call(epoch, params, m, v, t, Xtr, ytr, order, lr, penalty)
    return float(jnp.mean(call(predict, params, Xj[test]) == yj[test]))


start = time.perf_counter()
best, best_params = -1.0, None
folds = list(StratifiedKFold(3).split(X, y))
for params in ParameterGrid(grid):
    score = np.mean([train_and_score(params, tr, te, 0) for tr, te in folds])
    if score > best:
        best, best_params = score, params
seconds = time.perf_counter() - start
extra = (f"JAX compiled {{compiles[0]}} times during the search; the calls that compiled "
         f"took {{compiles[1]:.1f}} s of its {{seconds:.1f}} s (compiling, and running that "
         f"call's epoch or prediction once)")
print(json.dumps({{"seconds": seconds, "score": best, "params": str(best_params),
                  "extra": extra}}))
"""


def search_flops(rows):
    """Floating-point operations of the search's training (the protocol's count: forward,
    weight gradient, input gradient but the first layer's): 24 configurations x 3 folds, each
    10 epochs over two thirds of the rows, and the refit of the best on all rows (counted as
    the largest network, an upper bound)."""
    widths = [(32,), (64,), (64, 64), (128, 64)]
    per_row = []
    for hidden in widths:
        s = [32, *hidden, 10]
        per_row.append(2 * (3 * sum(a * b for a, b in zip(s[:-1], s[1:])) - s[0] * s[1]))
    train_rows = rows - rows // 3
    return 10 * (6 * 3 * train_rows * sum(per_row) + rows * max(per_row))


def run(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=HERE.parent)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    fmt = dict(here=str(HERE), rows=args.rows)
    runs = [
        ("fastbp (GridSearchCV, n_jobs=None)", GRID_SEARCH.format(**fmt, n_jobs=None, **FASTBP)),
        ("fastbp (GridSearchCV, n_jobs=2)", GRID_SEARCH.format(**fmt, n_jobs=2, **FASTBP)),
        ("scikit-learn (GridSearchCV, n_jobs=None)",
         GRID_SEARCH.format(**fmt, n_jobs=None, **SKLEARN)),
        ("scikit-learn (GridSearchCV, n_jobs=2)", GRID_SEARCH.format(**fmt, n_jobs=2, **SKLEARN)),
        ("PyTorch eager (a loop over ParameterGrid x folds, 2 threads)", TORCH.format(**fmt)),
        ("JAX jit/epoch (a loop over ParameterGrid x folds)", JAX.format(**fmt)),
    ]
    results = []
    for name, code in runs:
        result = run(code)
        results.append((name, result))
        print(name, result, flush=True)
    from compare import machine_rate
    rate = machine_rate(2)
    fastest = min(r["seconds"] for _, r in results if "seconds" in r and "fastbp" in _)
    lines = ["| search | wall clock (s) | fastbp's best is faster by | best CV accuracy | best "
             "parameters |", "|---|---|---|---|---|"]
    for name, r in results:
        if "seconds" not in r:
            lines.append(f"| {name} | failed: {r['error']} | | | |")
            continue
        lines.append(f"| {name} | {r['seconds']:.1f} | {r['seconds'] / fastest:.1f}x | "
                     f"{r['score']:.4f} | {r['params']} |")
    extras = [r["extra"] for n, r in results if r.get("extra")]
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    gflops = search_flops(args.rows) / 1e9
    text = ("# A grid search end to end: 24 configurations x 3 folds\n\n"
            f"`python bench/search.py --rows {args.rows}`; 10 epochs per fit, batch 200, Adam; "
            f"load average at the end {load}.\n\n" + "\n".join(lines) + "\n\n"
            + "".join(f"{e}.\n" for e in extras)
            + f"\nThe search trains {gflops:.0f} GFLOP: fastbp's fastest run "
            f"{gflops / fastest:.0f} GFLOP/s, {100 * gflops / fastest / rate:.0f}% of the "
            f"machine's float32 matrix-product rate measured in the same run ({rate:.0f} "
            "GFLOP/s, numpy 2048 x 2048, 2 threads).\n")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "search.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
