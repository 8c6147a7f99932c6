"""Every compiled kernel against its NumPy twin: float32 kernel vs float64 reference."""

import numpy as np
import pytest

from conftest import (
    ACTIVATION_NAMES, LOSS_NAMES, Net, dense_spec, epoch_args, loss_param, stats_row, targets_for,
)
from fastbp.kernels import batchnorm as k_bn
from fastbp.kernels import dropout as k_drop
from fastbp.kernels import schedules as k_sched
from fastbp.layers import BatchNormalization, Dense, Dropout
from fastbp.layout import Layout
from fastbp.reference import batchnorm as r_bn
from fastbp.reference import dropout as r_drop
from fastbp.reference import schedules as r_sched
from fastbp import codes, engine
from fastbp.kernels import activations as k_act
from fastbp.kernels import dense as k_dense
from fastbp.kernels import fastexp as k_exp
from fastbp.kernels import losses as k_loss
from fastbp.kernels import optim as k_optim
from fastbp.kernels import network as k_net
from fastbp.kernels import update as k_update
from fastbp.reference import activations as r_act
from fastbp.reference import dense as r_dense
from fastbp.reference import fastexp as r_exp
from fastbp.reference import losses as r_loss
from fastbp.reference import optim as r_optim
from fastbp.reference import network as r_net
from fastbp.reference import update as r_update

RTOL = 1e-4
ALPHA = {"leaky_relu": 0.1, "elu": 0.7}


def f64(a):
    return np.asarray(a, np.float64)


def close(comp, ref, rtol=RTOL, atol=1e-6):
    np.testing.assert_allclose(comp, ref, rtol=rtol, atol=atol)


def pre_activations(rng, m, n):
    """Random logits with edge rows: all zeros, a constant row, large magnitudes."""
    z = (rng.standard_normal((m, n)) * 3).astype(np.float32)
    z[0] = 0.0
    z[1] = 2.5
    z[2, : n // 2] = 60.0
    z[2, n // 2:] = -60.0
    return z


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("m", [1, 7])
def test_act_forward(name, m, rng):
    code = codes.ACTIVATIONS[name]
    alpha = ALPHA.get(name, 0.0)
    z = pre_activations(rng, max(m, 3), 6)[:m].copy()
    bias = rng.standard_normal(6).astype(np.float32)
    comp_a = z.copy()
    k_act.act_forward(comp_a, bias, code, alpha)
    ref_a = f64(z)
    r_act.act_forward(ref_a, f64(bias), code, alpha)
    close(comp_a, ref_a)
    assert np.isfinite(comp_a).all()


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_act_backward(name, rng):
    code = codes.ACTIVATIONS[name]
    alpha = ALPHA.get(name, 0.0)
    z = pre_activations(rng, 9, 5)
    a = z.copy()
    k_act.act_forward(a, np.zeros(5, np.float32), code, alpha)
    g = rng.standard_normal(z.shape).astype(np.float32)
    comp_delta = g.copy()
    k_act.act_backward(a, code, alpha, comp_delta)
    ref_delta = f64(g)
    r_act.act_backward(f64(a), code, alpha, ref_delta)
    close(comp_delta, ref_delta)


def test_exp_inplace_over_the_float32_range():
    x = np.concatenate([np.linspace(-100, 100, 200_001, dtype=np.float32),
                        np.float32([-87.3, -87.4, 88.7, 88.73, 0.0, -0.0, 1e-30, -1e-30])])
    comp = x.copy()
    k_exp.exp_inplace(comp)
    ref = x.astype(np.float64)
    r_exp.exp_inplace(ref)
    normal = (ref > np.finfo(np.float32).tiny) & (ref < np.finfo(np.float32).max)
    close(comp[normal], ref[normal], rtol=3 * 2.0 ** -24, atol=0)  # within 2 ulp (1.4 seen)
    assert (comp[ref <= np.finfo(np.float32).tiny] <= np.finfo(np.float32).tiny).all()
    assert np.isinf(comp[x > 88.73]).all()


def test_exp_inplace_keeps_nan_and_infinities():
    x = np.float32([np.nan, -np.inf, np.inf])
    k_exp.exp_inplace(x)
    assert np.isnan(x[0]) and x[1] == 0.0 and x[2] == np.inf


def test_tanh_inplace_over_the_float32_range():
    x = np.concatenate([np.linspace(-20, 20, 400_001, dtype=np.float32),
                        np.float32([0.0, 1e-30, -1e-30, 1e-8, 0.625, -0.625, 0.62499994, 9.0,
                                    50.0, -50.0, 1e30])])
    comp = x.copy()
    k_exp.tanh_inplace(comp)
    ref = x.astype(np.float64)
    r_exp.tanh_inplace(ref)
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert (np.abs(comp - ref) <= 3 * ulp).all()  # within 3 ulp (1.2 seen)
    y = np.float32([np.nan, np.inf, -np.inf])
    k_exp.tanh_inplace(y)
    assert np.isnan(y[0]) and y[1] == 1.0 and y[2] == -1.0


def test_elu_over_the_float32_range():
    """ELU's e^x - 1 is a Taylor polynomial near 0 and e^x - 1 beyond: within 4 ulp of
    expm1 everywhere, across the switch at -0.5 too (1.1 ulp seen)."""
    x = np.concatenate([np.linspace(-100, 5, 1_000_001, dtype=np.float32),
                        np.float32([0.0, -1e-30, -1e-8, -0.5, -0.49999997, -0.50000006])])
    comp = x.copy()
    k_act.elu_inplace(comp, np.float32(1.5))
    ref = x.astype(np.float64)
    r_act.elu_inplace(ref, 1.5)
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert (np.abs(comp - ref) <= 4 * ulp).all()
    y = np.float32([np.nan, np.inf, -np.inf])
    k_act.elu_inplace(y, np.float32(1.0))
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == -1.0


@pytest.mark.parametrize("m, n", [(1, 1), (7, 10), (64, 3)])
def test_softmax_rows(m, n, rng):
    z = pre_activations(rng, max(m, 3), n)[:m].copy()
    bias = rng.standard_normal(n).astype(np.float32)
    comp, ref = z.copy(), f64(z)
    k_act.softmax_rows(comp, bias)
    r_act.softmax_rows(ref, f64(bias))
    close(comp, ref)


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_softmax_crossentropy(sparse, weighted, rng):
    n, m, k = 30, 12, 5
    Y, labels = targets_for("categorical_crossentropy", "softmax", n, k, rng, sparse=sparse)
    rows = rng.permutation(n)[:m].astype(np.int64)
    sw = rng.uniform(0.5, 2.0, n).astype(np.float32) if weighted else np.zeros(0, np.float32)
    z = pre_activations(rng, m, k)
    comp_out, comp_delta = z.copy(), np.empty_like(z)
    ref_out, ref_delta = f64(z), np.empty(z.shape)
    comp = k_loss.softmax_crossentropy(comp_out, Y, labels, rows, sw, 0.7, 9.0, comp_delta)
    ref = r_loss.softmax_crossentropy(ref_out, f64(Y), labels, rows, f64(sw), 0.7, 9.0, ref_delta)
    assert comp == pytest.approx(ref, rel=RTOL)
    close(comp_out, ref_out)
    close(comp_delta, ref_delta)


def test_sigmoid_extremes():
    z = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], np.float32)
    a = z.copy()
    k_act.act_forward(a, np.zeros(5, np.float32), codes.SIGMOID, 0.0)
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a[0], [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-30)


@pytest.mark.parametrize("act_name", ACTIVATION_NAMES)
@pytest.mark.parametrize("loss_name", LOSS_NAMES)
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_delta(act_name, loss_name, weighted, rng):
    act, loss = codes.ACTIVATIONS[act_name], codes.LOSSES[loss_name]
    alpha = ALPHA.get(act_name, 0.0)
    n, m, k = 20, 8, 4
    Y, labels = targets_for(loss_name, act_name, n, k, rng)
    rows = rng.permutation(n)[:m].astype(np.int64)
    sw = rng.uniform(0.5, 2.0, n).astype(np.float32) if weighted else np.zeros(0, np.float32)
    p = loss_param(loss_name, k, norm_by_weight=float(weighted))
    z = (rng.standard_normal((m, k)) * 2).astype(np.float32)
    out = z.copy()
    if not k_loss.is_fused(act, loss):
        k_act.act_forward(out, np.zeros(k, np.float32), act, alpha)
    norm = k_net.loss_norm(rows, sw, p)
    assert norm == pytest.approx(r_net.loss_norm(rows, sw, p))
    comp_out, comp_delta = out.copy(), np.empty_like(out)
    comp = k_loss.loss_delta(loss, act, alpha, comp_out, Y, labels, rows, sw, p, norm, comp_delta)
    ref_out, ref_delta = f64(out), np.empty(out.shape)
    ref = r_loss.loss_delta(loss, act, alpha, ref_out, f64(Y), labels, rows, f64(sw), p, norm,
                            ref_delta)
    assert comp == pytest.approx(ref, rel=RTOL)
    close(comp_out, ref_out)
    close(comp_delta, ref_delta, atol=1e-6)


@pytest.mark.parametrize("loss_name", ["categorical_crossentropy"])
@pytest.mark.parametrize("act_name", ["softmax", "sigmoid"])
def test_loss_delta_sparse_labels_equal_one_hot(loss_name, act_name, rng):
    act, loss = codes.ACTIVATIONS[act_name], codes.LOSSES[loss_name]
    n, k = 12, 5
    Y, labels = targets_for(loss_name, act_name, n, k, rng, sparse=True)
    rows = np.arange(n, dtype=np.int64)
    sw = np.zeros(0, np.float32)
    p = loss_param(loss_name, k)
    z = rng.standard_normal((n, k)).astype(np.float32)
    if not k_loss.is_fused(act, loss):
        k_act.act_forward(z, np.zeros(k, np.float32), act, 0.0)
    sparse_out, sparse_delta = z.copy(), np.empty_like(z)
    dense_out, dense_delta = z.copy(), np.empty_like(z)
    v1 = k_loss.loss_delta(loss, act, 0.0, sparse_out, Y, labels, rows, sw, p, float(n),
                           sparse_delta)
    v2 = k_loss.loss_delta(loss, act, 0.0, dense_out, np.eye(k, dtype=np.float32)[labels],
                           np.zeros(0, np.int64), rows, sw, p, float(n), dense_delta)
    assert v1 == pytest.approx(v2, rel=1e-6)
    close(sparse_delta, dense_delta, rtol=1e-6)


def test_fused_losses_are_finite_for_huge_logits():
    z = np.array([[1e4, -1e4, 0.0]], np.float32)
    rows = np.zeros(1, np.int64)
    sw = np.zeros(0, np.float32)
    for act, loss, Y, labels in [
        (codes.SOFTMAX, codes.CATEGORICAL_CROSSENTROPY, np.zeros((0, 3), np.float32),
         np.array([1], np.int64)),
        (codes.SIGMOID, codes.BINARY_CROSSENTROPY, np.array([[0.0, 1.0, 1.0]], np.float32),
         np.zeros(0, np.int64)),
    ]:
        out, delta = z.copy(), np.empty_like(z)
        value = k_loss.loss_delta(loss, act, 0.0, out, Y, labels, rows, sw,
                                  loss_param("mse", 3), 1.0, delta)
        assert np.isfinite(value) and np.isfinite(delta).all() and np.isfinite(out).all()
        assert value > 1e3  # confidently wrong: a large loss, not inf


@pytest.mark.parametrize("acc_kind, sparse", [(codes.ACC_NONE, False), (codes.ACC_ARGMAX, False),
                                              (codes.ACC_THRESHOLD, False), (codes.ACC_NONE, True),
                                              (codes.ACC_ARGMAX, True)])
def test_output_stats(acc_kind, sparse, rng):
    """(Threshold accuracy reads dense 0/1 targets, so it has no sparse case.)"""
    n, k = 30, 3
    Y, labels = targets_for("categorical_crossentropy", "softmax", n, k, rng, sparse=sparse)
    out = rng.uniform(0, 1, (n, k)).astype(np.float32)
    rows = rng.permutation(n).astype(np.int64)
    sw = rng.uniform(0.1, 3, n).astype(np.float32)
    comp, ref = stats_row(k), stats_row(k)
    k_loss.output_stats(out, Y, labels, rows, sw, acc_kind, comp)
    r_loss.output_stats(f64(out), f64(Y), labels, rows, f64(sw), acc_kind, ref)
    close(comp, ref, rtol=1e-6)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_dense_kernels(name, rng):
    code, alpha = codes.ACTIVATIONS[name], ALPHA.get(name, 0.0)
    m, n_in, n_out = 11, 7, 5
    a_in = rng.standard_normal((m, n_in)).astype(np.float32)
    W = rng.standard_normal((n_in, n_out)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    comp_out, ref_out = np.empty((m, n_out), np.float32), np.empty((m, n_out))
    k_dense.dense_forward(a_in, W, b, code, alpha, comp_out)
    r_dense.dense_forward(f64(a_in), f64(W), f64(b), code, alpha, ref_out)
    close(comp_out, ref_out)

    delta = rng.standard_normal((m, n_out)).astype(np.float32)
    comp_gw, comp_gb = np.empty_like(W), np.empty_like(b)
    ref_gw, ref_gb = np.empty(W.shape), np.empty(b.shape)
    k_dense.dense_grad(a_in, delta, comp_gw, comp_gb)
    r_dense.dense_grad(f64(a_in), f64(delta), ref_gw, ref_gb)
    close(comp_gw, ref_gw, atol=1e-5)
    close(comp_gb, ref_gb, atol=1e-5)

    comp_din, ref_din = np.empty_like(a_in), np.empty(a_in.shape)
    k_dense.dense_backward(delta, W, comp_din, np.zeros(0, np.float32))
    r_dense.dense_backward(f64(delta), f64(W), ref_din)
    close(comp_din, ref_din, atol=1e-5)


@pytest.mark.parametrize("m, n_in, n_out, transposed", [
    (16, 128, 128, True), (32, 64, 80, True), (20, 96, 64, True), (33, 64, 64, False),
    (15, 64, 64, False), (32, 63, 64, False), (32, 64, 10, False)])
def test_dense_backward_plain_and_by_transpose(m, n_in, n_out, transposed, rng):
    """Both ways of taking ``delta @ W.T`` agree with the reference, the transposed one is
    taken exactly where the rule says and the layout reserves room for it, and without that
    room the kernel falls back to the plain product."""
    assert k_dense.backward_by_transpose.py_func(m, n_in, n_out) == transposed
    need = k_dense.transpose_scratch(m, n_in, n_out)
    if transposed:
        assert need == m * (n_in + n_out)
    delta = rng.standard_normal((m, n_out)).astype(np.float32)
    W = rng.standard_normal((n_in, n_out)).astype(np.float32)
    ref = np.empty((m, n_in))
    r_dense.dense_backward(f64(delta), f64(W), ref)
    for room in {need, max(need - 1, 0), 0}:
        buf = np.full(room + 3, np.nan, np.float32)  # the workspace, then 3 guard values
        comp = np.full((m, n_in), np.nan, np.float32)
        k_dense.dense_backward(delta, W, comp, buf[:room])
        close(comp, ref, atol=1e-4)
        assert np.isnan(buf[room:]).all()
        assert np.isnan(buf).all() != (transposed and room == need)


def test_layout_reserves_the_backward_workspace():
    layout = Layout(16, [Dense(128, activation="relu"), Dense(128, activation="relu"),
                         Dense(1)])
    for rows, reserved in ((16, 16 * 256), (40, 32 * 256), (8, 0), (64, 32 * 256)):
        ops, size = layout.tables(rows)
        blocks = rows * (128 + 128 + 1)
        assert size == blocks + reserved
        assert (ops[:, codes.OC_SCRATCH] == blocks).all()


def test_penalty(rng):
    net = Net(4, [Dense(6, activation="relu", l1=0.01, l2=0.02), BatchNormalization(),
                  Dense(3, l2=0.05)], rng)
    g = rng.standard_normal(net.layout.n_params).astype(np.float32)
    comp_g, ref_g = g.copy(), f64(g)
    comp = k_optim.penalty(net.params, comp_g, net.runs, 0.5)
    ref = r_optim.penalty(f64(net.params), ref_g, net.runs, 0.5)
    assert comp == pytest.approx(ref, rel=RTOL)
    close(comp_g, ref_g)
    for start, stop, l1, l2 in net.runs:  # biases and batch norm are never penalised
        if l1 == l2 == 0:
            np.testing.assert_array_equal(comp_g[int(start):int(stop)], g[int(start):int(stop)])


def test_sum_shards_and_segments(rng):
    net = Net(4, [Dense(6, activation="relu", l1=0.1, l2=0.3), Dense(3, l1=0.2, l2=0.4)], rng)
    P = net.layout.n_params
    grads = rng.standard_normal((3, P)).astype(np.float32)
    comp, ref = grads.copy(), f64(grads)
    k_optim.sum_shards(comp, 5, 40)
    r_optim.sum_shards(ref, 5, 40)
    close(comp, ref)
    np.testing.assert_array_equal(comp[0, :5], grads[0, :5])
    for lo, hi in [(0, P), (3, 30), (24, 31), (P - 1, P)]:
        comp_seg, ref_seg = np.zeros((4, codes.N_SEG)), np.zeros((4, codes.N_SEG))
        n = k_optim.segments(net.runs, 0.5, lo, hi, comp_seg)
        assert n == r_optim.segments(net.runs, 0.5, lo, hi, ref_seg)
        np.testing.assert_array_equal(comp_seg, ref_seg)
        covered = np.concatenate([np.arange(a, b) for a, b in comp_seg[:n, :2].astype(int)])
        np.testing.assert_array_equal(covered, np.arange(lo, hi))  # contiguous, no gap, no overlap
    n = k_optim.segments(net.runs, 0.5, 0, P, comp_seg)
    np.testing.assert_array_equal(comp_seg[:n, codes.SEG_C1], [0.05, 0.0, 0.1, 0.0])
    np.testing.assert_array_equal(comp_seg[:n, codes.SEG_RUN], [0, 1, 2, 3])


OPTIMIZER_CASES = {
    "sgd": (codes.SGD, {}),
    "momentum": (codes.SGD, {codes.HP_MOMENTUM: 0.9}),
    "nesterov": (codes.SGD, {codes.HP_MOMENTUM: 0.9, codes.HP_NESTEROV: 1.0}),
    "adam": (codes.ADAM, {codes.HP_BETA1: 0.9, codes.HP_BETA2: 0.999, codes.HP_EPS: 1e-7}),
    "adamw": (codes.ADAMW, {codes.HP_BETA1: 0.9, codes.HP_BETA2: 0.999, codes.HP_EPS: 1e-7,
                            codes.HP_WEIGHT_DECAY: 0.1}),
    "rmsprop": (codes.RMSPROP, {codes.HP_RHO: 0.9, codes.HP_EPS: 1e-7}),
    "rmsprop_momentum": (codes.RMSPROP, {codes.HP_RHO: 0.9, codes.HP_EPS: 1e-7,
                                         codes.HP_MOMENTUM: 0.5}),
    "adagrad": (codes.ADAGRAD, {codes.HP_EPS: 1e-7}),
    "nadam": (codes.NADAM, {codes.HP_BETA1: 0.9, codes.HP_BETA2: 0.999, codes.HP_EPS: 1e-7,
                            codes.HP_MOMENTUM_DECAY: 0.004, codes.HP_MU_PRODUCT: 0.8}),
    "adamax": (codes.ADAMAX, {codes.HP_BETA1: 0.9, codes.HP_BETA2: 0.999, codes.HP_EPS: 1e-7}),
}


@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
@pytest.mark.parametrize("clip", ["none", "norm", "value"])
@pytest.mark.parametrize("shards,diagnostics", [(1, True), (2, False), (2, True), (3, False)])
def test_optimizer_update(case, clip, shards, diagnostics, rng):
    """The whole update (shard sum, penalty, clipping, rule, diagnostics) over chunks: with two
    shards and no diagnostics or global-norm clipping, in one fused pass."""
    code, settings = OPTIMIZER_CASES[case]
    hyper = np.zeros(codes.N_HYPER)
    hyper[codes.HP_LR] = 0.05
    for slot, value in settings.items():
        hyper[slot] = value
    if clip == "norm":
        hyper[codes.HP_CLIPNORM] = 0.3
    elif clip == "value":
        hyper[codes.HP_CLIPVALUE] = 0.2
    net = Net(5, dense_spec([7, 3], ["tanh", "linear"]), rng, l1=0.01, l2=0.02)
    P, R = net.layout.n_params, len(net.runs)
    params = net.params
    state = np.abs(rng.standard_normal((2, P))).astype(np.float32) * 0.1
    width = 2 * R if diagnostics else 0
    comp_p, comp_s, comp_d = params.copy(), state.copy(), np.zeros((shards, width))
    ref_p, ref_s, ref_d = f64(params), f64(state), np.zeros((shards, width))
    seg = np.zeros((shards, R, codes.N_SEG))
    for t in range(1, 4):
        g = rng.standard_normal((shards, P)).astype(np.float32)
        comp_v = run_update(k_update, code, comp_p, g.copy(), comp_s, hyper, t, net.runs, 0.5,
                            seg.copy(), comp_d, np.zeros(P, np.float32))
        ref_v = run_update(r_update, code, ref_p, f64(g), ref_s, hyper, t, net.runs, 0.5,
                           seg.copy(), ref_d, np.zeros(P))
        assert comp_v == pytest.approx(ref_v, rel=RTOL)
    close(comp_p, ref_p, atol=1e-5)
    close(comp_s, ref_s, atol=1e-6)
    close(comp_d, ref_d, rtol=1e-3)
    if diagnostics:
        assert comp_d[:, 0::2].sum() > 0 and comp_d[:, 1::2].sum() > 0


def run_update(module, code, params, grads, state, hyper, t, runs, pscale, seg, diag, prev):
    """The update of one batch as the epoch loop runs it (``epoch.run_batch``), chunk after
    chunk: the chunks' norms first with global-norm clipping. Returns the penalty."""
    parts = grads.shape[0]
    clipping = hyper[codes.HP_CLIPNORM] > 0.0
    scale = 1.0
    if clipping:
        norms = [module.chunk_norm(params, grads, runs, pscale, seg[c], parts, c)
                 for c in range(parts)]
        scale = k_optim.clip_scale(sum(norms), hyper[codes.HP_CLIPNORM])
    return sum(module.chunk_update(code, params, grads, state, hyper, t, runs, pscale, scale,
                                   clipping, seg[c], parts, c, diag, prev) for c in range(parts))


@pytest.mark.parametrize("c1,c2", [(0.0, 0.0), (0.0, 0.02), (0.01, 0.0), (0.01, 0.02)])
def test_penalty_value_and_step_rate(c1, c2, rng):
    w = rng.standard_normal(37).astype(np.float32)
    assert k_optim.penalty_value(w, c1, c2) == pytest.approx(
        r_optim.penalty_value(f64(w), c1, c2), rel=RTOL, abs=1e-12)
    hyper = np.zeros(codes.N_HYPER)
    hyper[codes.HP_LR], hyper[codes.HP_BETA1], hyper[codes.HP_BETA2] = 0.01, 0.9, 0.999
    for code in (codes.SGD, codes.ADAM, codes.ADAMW, codes.RMSPROP, codes.ADAMAX):
        for t in (1, 7):
            assert k_optim.step_rate(code, hyper, t)[0] == pytest.approx(
                r_optim.step_rate(code, hyper, t), rel=1e-12)
    assert k_optim.step_rate(codes.ADAM, hyper, 1)[0] == pytest.approx(
        0.01 * np.sqrt(0.001) / 0.1)


def test_clip_scale():
    assert k_optim.clip_scale(16.0, 2.0) == pytest.approx(0.5)
    assert k_optim.clip_scale(1.0, 2.0) == 1.0
    assert r_optim.clip_scale(16.0, 2.0) == pytest.approx(0.5)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("m", [1, 9])
def test_batchnorm_kernels(name, m, rng):
    code, alpha = codes.ACTIVATIONS[name], ALPHA.get(name, 0.0)
    n = 5
    x = (rng.standard_normal((m, n)) * 3 + 1).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, n).astype(np.float32)
    beta = rng.standard_normal(n).astype(np.float32)
    run = [rng.standard_normal(n).astype(np.float32), rng.uniform(0.5, 2, n).astype(np.float32)]
    comp = [np.empty((m, n), np.float32), np.empty(n, np.float32), np.empty(n, np.float32),
            run[0].copy(), run[1].copy(), np.empty((m, n), np.float32)]
    ref = [np.empty((m, n)), np.empty(n), np.empty(n), f64(run[0]), f64(run[1]), np.empty((m, n))]
    k_bn.batchnorm_train(x, gamma, beta, code, alpha, 0.9, 1e-3, *comp)
    r_bn.batchnorm_train(f64(x), f64(gamma), f64(beta), code, alpha, 0.9, 1e-3, *ref)
    for c, r in zip(comp, ref):
        close(c, r, atol=1e-5)
    comp_inf, ref_inf = np.empty((m, n), np.float32), np.empty((m, n))
    k_bn.batchnorm_infer(x, gamma, beta, code, alpha, 1e-3, run[0], run[1], comp_inf)
    r_bn.batchnorm_infer(f64(x), f64(gamma), f64(beta), code, alpha, 1e-3, f64(run[0]),
                         f64(run[1]), ref_inf)
    close(comp_inf, ref_inf, atol=1e-5)
    g = rng.standard_normal((m, n)).astype(np.float32)
    comp_g = [np.empty(n, np.float32), np.empty(n, np.float32), np.empty((m, n), np.float32)]
    ref_g = [np.empty(n), np.empty(n), np.empty((m, n))]
    k_bn.batchnorm_backward(g, comp[0], comp[1], gamma, *comp_g, True)
    r_bn.batchnorm_backward(f64(g), ref[0], ref[1], f64(gamma), *ref_g, True)
    for c, r in zip(comp_g, ref_g):
        close(c, r, atol=1e-4)


def test_batchnorm_normalises_each_feature(rng):
    x = (rng.standard_normal((200, 3)) * [1, 10, 100] + [5, -5, 50]).astype(np.float32)
    n = 3
    xhat, inv, mean, a = np.empty_like(x), np.empty(n, np.float32), np.empty(n, np.float32), \
        np.empty_like(x)
    rm, rv = np.zeros(n, np.float32), np.ones(n, np.float32)
    k_bn.batchnorm_train(x, np.ones(n, np.float32), np.zeros(n, np.float32), codes.LINEAR, 0.0,
                         0.9, 1e-5, xhat, inv, mean, rm, rv, a)
    close(a.mean(axis=0), np.zeros(n), atol=1e-4)
    close(a.std(axis=0), np.ones(n), rtol=1e-3)
    close(rm, 0.1 * x.mean(axis=0), rtol=1e-4)
    close(rv, 0.9 + 0.1 * x.var(axis=0), rtol=1e-4)


def test_dropout_masks_match_and_rescale(rng):
    m, n = 400, 50
    x = rng.standard_normal((m, n)).astype(np.float32)
    rows = rng.permutation(1000)[:m].astype(np.int64)
    comp, ref = np.empty_like(x), np.empty_like(x)
    k_drop.dropout_mask_apply(x, rows, 0.3, 12345, 7, 2, comp)
    r_drop.dropout_mask_apply(x, rows, 0.3, 12345, 7, 2, ref)
    np.testing.assert_array_equal(comp, ref)  # the same random bits, the same masks
    kept = comp != 0
    assert abs(kept.mean() - 0.7) < 0.01
    close(comp[kept], x[kept] / 0.7, rtol=1e-6)
    other = np.empty_like(x)
    k_drop.dropout_mask_apply(x, rows, 0.3, 12345, 8, 2, other)  # the next step: a new mask
    assert 0.4 < ((other != 0) == kept).mean() < 0.7
    assert k_drop.uniform(1, 2, 3, 4, 5) == r_drop.uniform(1, 2, 3, 4, 5)


@pytest.mark.parametrize("code, a, b", [(codes.SCHED_CONSTANT, 0, 1), (codes.SCHED_STEP, 0.5, 3),
                                        (codes.SCHED_EXPONENTIAL, 0.9, 10),
                                        (codes.SCHED_LINEAR, 0.01, 20),
                                        (codes.SCHED_INVSCALING, 0.5, 1),
                                        (codes.SCHED_COSINE, 0.1, 15)])
def test_schedules(code, a, b):
    sched = np.zeros(codes.N_SC)
    sched[[codes.SC_CODE, codes.SC_LR, codes.SC_A, codes.SC_B, codes.SC_FACTOR]] = \
        (code, 0.1, a, b, 0.5)
    for x in [0.0, 1.0, 2.0, 7.0, 30.0]:
        assert k_sched.scheduled_lr(sched, x) == pytest.approx(r_sched.scheduled_lr(sched, x),
                                                               rel=1e-12)


SPECS = {
    "dense": lambda: dense_spec([8, 6, 3], ["relu", "tanh", "softmax"]),
    "bn_pre": lambda: [Dense(8), BatchNormalization(), Dense(6, activation="elu"),
                       Dense(3, activation="softmax")],
    "dropout": lambda: [Dropout(0.2), Dense(8, activation="relu"), Dropout(0.5),
                        Dense(3, activation="softmax")],
    "bn_out": lambda: [Dense(8, activation="relu"), Dense(3), BatchNormalization()],
}


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("out_loss", ["categorical_crossentropy", "squared_error"])
def test_batch_objective_and_passes(spec, out_loss, rng):
    """One batch through the epoch loop without a step (``NO_STEP``): the loss, penalty
    included, its gradient, and the running statistics, compiled against the reference."""
    net = Net(5, SPECS[spec](), rng, rows=10)
    net.runs[:, codes.RUN_L1] = 1e-3
    net.runs[:, codes.RUN_L2] = 1e-2
    m = 10
    Y, labels = targets_for(out_loss, "softmax", 30, 3, rng)
    rows = rng.permutation(30)[:m].astype(np.int64)
    X = rng.standard_normal((30, 5)).astype(np.float32)
    x = np.empty((m + 3, 5), np.float32)
    k_net.gather_rows(X, rows, x)
    np.testing.assert_array_equal(x[:m], X[rows])
    sw = np.zeros(0, np.float32)
    p = loss_param(out_loss, 3)
    ref_net = net.astype(np.float64)
    comp_args, comp_buf = epoch_args(net, X, Y, labels, sw, rows, m, out_loss, p, seed=99, t=5)
    ref_args, ref_buf = epoch_args(ref_net, f64(X), f64(Y), labels, f64(sw), rows, m, out_loss,
                                   p, seed=99, t=5)
    engine.get("numba").train_epoch(comp_args)
    engine.get("numpy").train_epoch(ref_args)
    close(comp_buf["stats"], ref_buf["stats"], rtol=RTOL)
    close(comp_buf["grads"], ref_buf["grads"], atol=1e-5)
    close(comp_buf["acts"], ref_buf["acts"], atol=1e-5)
    close(net.aux, ref_net.aux, atol=1e-6)  # running statistics moved the same way


def infer(backend, net, X, chunk, threads=1, data=None, loss=-1, p=None, acc_kind=0):
    """Outputs (data None) or the stats of ``backend.infer`` over X."""
    n, k = len(X), net.layout.n_outputs
    ops, acts, deltas = net.layout.buffers(chunk, threads)
    dtype = net.params.dtype
    acts, deltas = acts.astype(dtype), deltas.astype(dtype)
    out = np.zeros((n if data is None else 0, k), dtype)
    stats = stats_row(k)
    Y, labels, sw = data if data is not None else (np.zeros((0, k), dtype),
                                                   np.zeros(0, np.int64), np.zeros(0, dtype))
    engine.get(backend).infer(X, Y, labels, sw, ops, net.opf, loss,
                              p if p is not None else np.zeros(codes.N_LOSS_PARAM), acc_kind,
                              net.params, net.aux, acts, deltas, chunk, out, stats)
    return out if data is None else stats


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("n, chunk", [(1, 16), (37, 16), (16, 16)])
def test_predict_and_evaluate(spec, n, chunk, rng):
    net = Net(5, SPECS[spec](), rng, rows=chunk)
    X = rng.standard_normal((n, 5)).astype(np.float32)
    X[0] = 0.0
    ref_net = net.astype(np.float64)
    comp_out = infer("numba", net, X, chunk)
    ref_out = infer("numpy", ref_net, f64(X), chunk)
    close(comp_out, ref_out, atol=1e-5)
    # cut into 3 runs of rows on 3 threads, or one row alone: the same outputs (to the last
    # bits BLAS's blocking may change)
    close(infer("numba", net, X, chunk, threads=3), comp_out, rtol=1e-5, atol=1e-6)
    close(infer("numba", net, X[-1:], chunk)[0], comp_out[-1], rtol=1e-5, atol=1e-6)
    Y, labels = targets_for("categorical_crossentropy", "softmax", n, 3, rng, sparse=True)
    sw = rng.uniform(0.5, 1.5, n).astype(np.float32)
    p = loss_param("categorical_crossentropy", 3, norm_by_weight=1.0)
    comp_s = infer("numba", net, X, chunk, data=(Y, labels, sw),
                   loss=codes.CATEGORICAL_CROSSENTROPY, p=p, acc_kind=codes.ACC_ARGMAX)
    ref_s = infer("numpy", ref_net, f64(X), chunk, data=(f64(Y), labels, f64(sw)),
                  loss=codes.CATEGORICAL_CROSSENTROPY, p=p, acc_kind=codes.ACC_ARGMAX)
    close(comp_s, ref_s, rtol=1e-4, atol=1e-5)
    assert comp_s[codes.ST_ROWS] == pytest.approx(sw.sum(), rel=1e-6)


def test_views_and_copies_against_numpy():
    """``views.matrix`` / ``flat`` / ``readonly`` / ``copy_to`` against their NumPy twins
    (reshape, ravel, a read-only view, assignment), inside compiled code: the views share the
    buffer's memory, so writing through them writes the buffer."""
    from numba import njit
    from fastbp.kernels import views

    @njit
    def use(buf, offset, rows, cols, src, dst):
        block = views.matrix(buf, offset, rows, cols)
        block[rows - 1, cols - 1] = -1.0
        views.copy_to(views.flat(views.readonly(src)), views.flat(dst))
        return block.copy(), views.flat(block).sum()

    buf = np.arange(40, dtype=np.float32)
    src = np.arange(12, dtype=np.float32).reshape(3, 4)
    dst = np.zeros((3, 4), np.float32)
    block, total = use(buf, 5, 3, 4, src, dst)
    expected = np.arange(40, dtype=np.float32)[5:17].reshape(3, 4)
    expected[2, 3] = -1.0
    np.testing.assert_array_equal(block, expected)
    assert buf[16] == -1.0 and total == expected.sum()
    np.testing.assert_array_equal(dst, src)


@pytest.mark.parametrize("shape", [(1, 5, 3), (4, 8, 16), (7, 13, 33), (37, 64, 10),
                                   (9, 3, 1)])
def test_product_by_rows(shape, rng):
    """The inference product: within float32 rounding of the float64 product, and a row's
    bits the same alone, in any slice of the rows, and in the four-row blocks or the rest."""
    from fastbp.kernels.dense import product_by_rows
    m, n_in, n_out = shape
    a = rng.standard_normal((m, n_in)).astype(np.float32)
    W = rng.standard_normal((n_in, n_out)).astype(np.float32)
    out = np.empty((m, n_out), np.float32)
    product_by_rows(a, W, out)
    exact = a.astype(np.float64) @ W.astype(np.float64)
    np.testing.assert_allclose(out, exact, rtol=1e-5, atol=1e-5 * np.abs(exact).max())
    for lo in range(m):
        for hi in (lo + 1, min(m, lo + 5), m):
            part = np.empty((hi - lo, n_out), np.float32)
            product_by_rows(np.ascontiguousarray(a[lo:hi]), W, part)
            np.testing.assert_array_equal(part, out[lo:hi])
