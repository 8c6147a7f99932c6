"""Each kernel of one mini-batch, compiled against its NumPy twin, at the shapes of the workloads.

Run: python -m pytest bench/bench_kernels.py --benchmark-group-by=group
Every group holds the compiled kernel (``numba``) and the reference (``numpy``) on the same
float32 arrays; pytest-benchmark prints them side by side. Every benchmark calls its kernel once
before timing, so compilation (or the cache load) is never timed. One thread, as inside a shard.
"""

import numpy as np
import pytest

from fastbp import codes, losses
from fastbp.kernels import activations as k_act
from fastbp.kernels import dense as k_dense
from fastbp.kernels import losses as k_loss
from fastbp.kernels import update as k_update
from fastbp.layers import Dense
from fastbp.layout import Layout
from fastbp.reference import activations as r_act
from fastbp.reference import dense as r_dense
from fastbp.reference import losses as r_loss
from fastbp.reference import update as r_update
from workloads import WORKLOADS, sizes

BACKENDS = {"numba": (k_act, k_dense, k_loss, k_update),
            "numpy": (r_act, r_dense, r_loss, r_update)}
#: (workload, m rows, n_in, n_out): the widest hidden layer of each workload at its batch size
SHAPES = [(name, WORKLOADS[name][4], sizes(name)[1], sizes(name)[2]) for name in WORKLOADS]


@pytest.fixture(autouse=True)
def one_blas_thread():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        yield


def arrays(*shapes):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s, dtype=np.float32) for s in shapes]


def run(benchmark, group, f, *args):
    benchmark.group = group
    f(*args)
    benchmark(f, *args)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("workload, m, n_in, n_out", SHAPES)
def test_dense_forward(benchmark, backend, workload, m, n_in, n_out):
    a_in, W, b, a_out = arrays((m, n_in), (n_in, n_out), (n_out,), (m, n_out))
    run(benchmark, f"dense_forward relu {m}x{n_in}x{n_out} ({workload})",
        BACKENDS[backend][1].dense_forward, a_in, W, b, codes.RELU, 0.0, a_out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("workload, m, n_in, n_out", SHAPES)
def test_dense_grad(benchmark, backend, workload, m, n_in, n_out):
    a_in, delta, grad_w, grad_b = arrays((m, n_in), (m, n_out), (n_in, n_out), (n_out,))
    run(benchmark, f"dense_grad {m}x{n_in}x{n_out} ({workload})",
        BACKENDS[backend][1].dense_grad, a_in, delta, grad_w, grad_b)


#: the same layers at the rows of one of the two shards a training batch is cut into
SHARD_SHAPES = [(f"{name} shard", m // 2, n_in, n_out) for name, m, n_in, n_out in SHAPES]


@pytest.mark.parametrize("backend", [*BACKENDS, "numba-plain"])
@pytest.mark.parametrize("workload, m, n_in, n_out", SHAPES + SHARD_SHAPES)
def test_dense_backward(benchmark, backend, workload, m, n_in, n_out):
    """``numba`` takes the product the way ``backward_by_transpose`` picks; ``numba-plain``
    is denied the workspace, so it always calls sgemm as ``delta @ W.T``."""
    delta, W, delta_in = arrays((m, n_out), (n_in, n_out), (m, n_in))
    room = 0 if backend == "numba-plain" else k_dense.transpose_scratch(m, n_in, n_out)
    kernels = BACKENDS["numba" if backend == "numba-plain" else backend][1]
    run(benchmark, f"dense_backward {m}x{n_in}x{n_out} ({workload})",
        kernels.dense_backward, delta, W, delta_in, np.zeros(room, np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["relu", "tanh", "softmax"])
def test_act_backward(benchmark, backend, activation):
    a, delta = arrays((256, 256), (256, 256))
    run(benchmark, f"act_backward {activation} 256x256", BACKENDS[backend][0].act_backward,
        np.abs(a) / 256, codes.ACTIVATIONS[activation], 0.0, delta)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("workload", ["small", "medium"])
def test_softmax_crossentropy_delta(benchmark, backend, workload):
    """The fused output step: softmax of the logits, loss and delta, for one batch."""
    n, _, _, k, m, _ = WORKLOADS[workload]
    (z,) = arrays((m, k))
    labels = np.random.default_rng(1).integers(0, k, m).astype(np.int64)
    rows = np.arange(m, dtype=np.int64)
    p = losses.get("categorical_crossentropy").loss_param(k)
    delta = np.empty_like(z)
    f = BACKENDS[backend][2].loss_delta
    args = (codes.CATEGORICAL_CROSSENTROPY, codes.SOFTMAX, 0.0)
    benchmark.group = f"softmax + cross-entropy delta {m}x{k} ({workload})"
    f(*args, z.copy(), np.zeros((0, k), np.float32), labels, rows, np.zeros(0, np.float32), p,
      float(m), delta)
    benchmark.pedantic(lambda out: f(*args, out, np.zeros((0, k), np.float32), labels, rows,
                                     np.zeros(0, np.float32), p, float(m), delta),
                       setup=lambda: ((z.copy(),), {}), rounds=2000)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("workload", ["small", "wide"])
def test_adam_update(benchmark, backend, workload):
    """One Adam step over the whole flat parameter vector (no penalty, no clipping)."""
    s = sizes(workload)
    layout = Layout(s[0], [Dense(units) for units in s[1:]])
    P = layout.n_params
    params, grads, state = arrays((P,), (1, P), (2, P))
    state = np.abs(state)
    hyper = np.zeros(codes.N_HYPER)
    hyper[[codes.HP_LR, codes.HP_BETA1, codes.HP_BETA2, codes.HP_EPS]] = [1e-3, 0.9, 0.999, 1e-7]
    seg = np.zeros((len(layout.runs), codes.N_SEG))
    run(benchmark, f"adam update P={P:,} ({workload})", BACKENDS[backend][3].chunk_update,
        codes.ADAM, params, grads, state, hyper, 1, layout.runs, 1.0, 1.0, False, seg, 1, 0,
        np.zeros((1, 0)), np.zeros(0, np.float32))
