"""Every compiled kernel against its NumPy twin: float32 kernel vs float64 reference."""

import numpy as np
import pytest

from conftest import ACTIVATION_NAMES, LOSS_NAMES, Net, loss_param, targets_for
from fastbp import codes
from fastbp.kernels import activations as k_act
from fastbp.kernels import dense as k_dense
from fastbp.kernels import losses as k_loss
from fastbp.kernels import optim as k_optim
from fastbp.kernels import train as k_train
from fastbp.reference import activations as r_act
from fastbp.reference import dense as r_dense
from fastbp.reference import losses as r_loss
from fastbp.reference import optim as r_optim
from fastbp.reference import train as r_train

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
    comp_a = np.empty_like(z)
    k_act.act_forward(z, bias, code, alpha, comp_a)
    ref_a = np.empty(z.shape)
    r_act.act_forward(f64(z), f64(bias), code, alpha, ref_a)
    close(comp_a, ref_a)
    assert np.isfinite(comp_a).all()


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_act_forward_in_place(name, rng):
    code = codes.ACTIVATIONS[name]
    z = pre_activations(rng, 5, 4)
    bias = rng.standard_normal(4).astype(np.float32)
    separate = np.empty_like(z)
    k_act.act_forward(z, bias, code, ALPHA.get(name, 0.0), separate)
    k_act.act_forward(z, bias, code, ALPHA.get(name, 0.0), z)
    np.testing.assert_array_equal(z, separate)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_act_backward(name, rng):
    code = codes.ACTIVATIONS[name]
    alpha = ALPHA.get(name, 0.0)
    z = pre_activations(rng, 9, 5)
    a = np.empty_like(z)
    k_act.act_forward(z, np.zeros(5, np.float32), code, alpha, a)
    g = rng.standard_normal(z.shape).astype(np.float32)
    comp_delta = g.copy()
    k_act.act_backward(a, code, alpha, comp_delta)
    ref_delta = f64(g)
    r_act.act_backward(f64(a), code, alpha, ref_delta)
    close(comp_delta, ref_delta)


def test_sigmoid_extremes():
    z = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], np.float32)
    a = np.empty_like(z)
    k_act.act_forward(z, np.zeros(5, np.float32), codes.SIGMOID, 0.0, a)
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
        k_act.act_forward(z, np.zeros(k, np.float32), act, alpha, out)
    norm = k_train.batch_norm(rows, sw, p)
    assert norm == pytest.approx(r_train.batch_norm(rows, sw, p))
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
        k_act.act_forward(z, np.zeros(k, np.float32), act, 0.0, z)
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
    comp, ref = np.zeros(codes.N_STATS), np.zeros(codes.N_STATS)
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
    # the layer below has width n_in and activation `name`: build its output first
    below = np.empty_like(a_in)
    k_act.act_forward(a_in, np.zeros(n_in, np.float32), code, alpha, below)
    k_dense.dense_backward(delta, W, below, code, alpha, comp_din)
    r_dense.dense_backward(f64(delta), f64(W), f64(below), code, alpha, ref_din)
    close(comp_din, ref_din, atol=1e-5)


def test_penalty(rng):
    net = Net([4, 6, 3], ["relu", "linear"], rng)
    lay = net.layout
    l1, l2 = np.array([0.01, 0.0]), np.array([0.02, 0.05])
    g = rng.standard_normal(lay.n_params).astype(np.float32)
    comp_g, ref_g = g.copy(), f64(g)
    comp = k_optim.penalty(net.params, comp_g, lay.sizes, lay.w_off, l1, l2, 0.5)
    ref = r_optim.penalty(f64(net.params), ref_g, lay.sizes, lay.w_off, l1, l2, 0.5)
    assert comp == pytest.approx(ref, rel=RTOL)
    close(comp_g, ref_g)
    # biases are never penalised
    for l in range(lay.n_layers):
        b = slice(lay.b_off[l], lay.b_off[l] + lay.sizes[l + 1])
        np.testing.assert_array_equal(comp_g[b], g[b])


def test_sum_shards_and_segments(rng):
    net = Net([4, 6, 3], ["relu", "linear"], rng)
    lay = net.layout
    P = lay.n_params
    grads = rng.standard_normal((3, P)).astype(np.float32)
    comp, ref = grads.copy(), f64(grads)
    k_optim.sum_shards(comp, 5, 40)
    r_optim.sum_shards(ref, 5, 40)
    close(comp, ref)
    np.testing.assert_array_equal(comp[0, :5], grads[0, :5])
    l1, l2 = np.array([0.1, 0.2]), np.array([0.3, 0.4])
    for lo, hi in [(0, P), (3, 30), (24, 31), (P - 1, P)]:
        comp_seg, ref_seg = np.zeros((4, 4)), np.zeros((4, 4))
        n = k_optim.segments(lay.sizes, lay.w_off, lay.b_off, l1, l2, 0.5, lo, hi, comp_seg)
        assert n == r_optim.segments(lay.sizes, lay.w_off, lay.b_off, l1, l2, 0.5, lo, hi, ref_seg)
        np.testing.assert_array_equal(comp_seg, ref_seg)
        covered = np.concatenate([np.arange(a, b) for a, b in comp_seg[:n, :2].astype(int)])
        np.testing.assert_array_equal(covered, np.arange(lo, hi))  # contiguous, no gap, no overlap
    n = k_optim.segments(lay.sizes, lay.w_off, lay.b_off, l1, l2, 0.5, 0, P, comp_seg)
    np.testing.assert_array_equal(comp_seg[:n, 2], [0.05, 0.0, 0.1, 0.0])  # l1 * scale on W only


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
}


@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
@pytest.mark.parametrize("clip", ["none", "norm", "value"])
@pytest.mark.parametrize("shards", [1, 3])
def test_optimizer_update(case, clip, shards, rng):
    """The whole update (shard sum, penalty, clipping, rule) over chunks of the vector."""
    code, settings = OPTIMIZER_CASES[case]
    hyper = np.zeros(codes.N_HYPER)
    hyper[codes.HP_LR] = 0.05
    for slot, value in settings.items():
        hyper[slot] = value
    if clip == "norm":
        hyper[codes.HP_CLIPNORM] = 0.3
    elif clip == "value":
        hyper[codes.HP_CLIPVALUE] = 0.2
    net = Net([5, 7, 3], ["tanh", "linear"], rng, l1=0.01, l2=0.02)
    lay = net.layout
    P = lay.n_params
    params = net.params
    state = np.abs(rng.standard_normal((2, P))).astype(np.float32) * 0.1
    comp_p, comp_s = params.copy(), state.copy()
    ref_p, ref_s = f64(params), f64(state)
    seg = np.zeros((shards, 2 * lay.n_layers, 4))
    for t in range(1, 4):
        g = rng.standard_normal((shards, P)).astype(np.float32)
        comp_v = k_train.run_update(code, comp_p, g.copy(), comp_s, hyper, t, lay.sizes,
                                    lay.w_off, lay.b_off, lay.l1, lay.l2, 0.5, seg.copy(),
                                    np.zeros(shards))
        ref_v = r_train.run_update(code, ref_p, f64(g), ref_s, hyper, t, lay.sizes, lay.w_off,
                                   lay.b_off, lay.l1, lay.l2, 0.5, seg.copy(), np.zeros(shards))
        assert comp_v == pytest.approx(ref_v, rel=RTOL)
    close(comp_p, ref_p, atol=1e-5)
    close(comp_s, ref_s, atol=1e-6)
    if shards > 1:  # the parallel driver computes the same bits
        par_p, par_s = params.copy(), state.copy()
        ser_p, ser_s = params.copy(), state.copy()
        g = rng.standard_normal((shards, P)).astype(np.float32)
        k_train.run_update_parallel(code, par_p, g.copy(), par_s, hyper, 1, lay.sizes, lay.w_off,
                                    lay.b_off, lay.l1, lay.l2, 1.0, seg.copy(), np.zeros(shards))
        k_train.run_update(code, ser_p, g.copy(), ser_s, hyper, 1, lay.sizes, lay.w_off,
                           lay.b_off, lay.l1, lay.l2, 1.0, seg.copy(), np.zeros(shards))
        np.testing.assert_array_equal(par_p, ser_p)
        np.testing.assert_array_equal(par_s, ser_s)


def test_clip_scale():
    assert k_optim.clip_scale(16.0, 2.0) == pytest.approx(0.5)
    assert k_optim.clip_scale(1.0, 2.0) == 1.0
    assert r_optim.clip_scale(16.0, 2.0) == pytest.approx(0.5)


@pytest.mark.parametrize("hidden", ["relu", "tanh", "elu"])
@pytest.mark.parametrize("out, loss", [("softmax", "categorical_crossentropy"),
                                       ("sigmoid", "binary_crossentropy"),
                                       ("linear", "squared_error"),
                                       ("tanh", "huber")])
def test_batch_objective_and_passes(hidden, out, loss, rng):
    net = Net([5, 8, 6, 3], [hidden, hidden, out], rng, rows=10, l1=1e-3, l2=1e-2)
    lay = net.layout
    m = 10
    Y, labels = targets_for(loss, out, 30, 3, rng)
    rows = rng.permutation(30)[:m].astype(np.int64)
    X = rng.standard_normal((30, 5)).astype(np.float32)
    x = np.empty((m, 5), np.float32)
    k_train.gather_rows(X, rows, x)
    np.testing.assert_array_equal(x, X[rows])
    sw = np.zeros(0, np.float32)
    p = loss_param(loss, 3)
    args = (lay.sizes, lay.w_off, lay.b_off, lay.act, lay.alpha, lay.l1, lay.l2,
            codes.LOSSES[loss], p)
    comp = k_train.batch_objective(x, Y, labels, rows, sw, *args, net.params, net.grads,
                                   net.acts, net.deltas, net.act_off)
    ref_net = net.astype(np.float64)
    ref = r_train.batch_objective(f64(x), f64(Y), labels, rows, f64(sw), *args, ref_net.params,
                                  ref_net.grads, ref_net.acts, ref_net.deltas, net.act_off)
    assert comp == pytest.approx(ref, rel=RTOL)
    close(net.grads, ref_net.grads, atol=1e-5)
    close(net.acts, ref_net.acts, atol=1e-5)


@pytest.mark.parametrize("n, chunk", [(1, 16), (37, 16), (16, 16)])
def test_predict_and_evaluate(n, chunk, rng):
    net = Net([4, 9, 3], ["relu", "softmax"], rng, rows=chunk)
    lay = net.layout
    X = rng.standard_normal((n, 4)).astype(np.float32)
    X[0] = 0.0
    comp_out, ref_out = np.empty((n, 3), np.float32), np.empty((n, 3))
    k_train.predict(X, *net.arrays(), net.params, net.acts, net.act_off, chunk, comp_out)
    ref_net = net.astype(np.float64)
    r_train.predict(f64(X), *net.arrays(), ref_net.params, ref_net.acts, net.act_off, chunk,
                    ref_out)
    close(comp_out, ref_out)
    close(comp_out.sum(axis=1), np.ones(n), rtol=1e-6)

    Y, labels = targets_for("categorical_crossentropy", "softmax", n, 3, rng, sparse=True)
    sw = rng.uniform(0.5, 1.5, n).astype(np.float32)
    p = loss_param("categorical_crossentropy", 3, norm_by_weight=1.0)
    comp_s, ref_s = np.zeros(codes.N_STATS), np.zeros(codes.N_STATS)
    k_train.evaluate(X, Y, labels, sw, *net.arrays(), codes.CATEGORICAL_CROSSENTROPY, p,
                     codes.ACC_ARGMAX, net.params, net.acts, net.deltas, net.act_off, chunk, comp_s)
    r_train.evaluate(f64(X), f64(Y), labels, f64(sw), *net.arrays(),
                     codes.CATEGORICAL_CROSSENTROPY, p, codes.ACC_ARGMAX, ref_net.params,
                     ref_net.acts, ref_net.deltas, net.act_off, chunk, ref_s)
    close(comp_s, ref_s)
    assert comp_s[codes.ST_ROWS] == pytest.approx(sw.sum(), rel=1e-6)
