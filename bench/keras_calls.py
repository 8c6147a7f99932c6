"""Per-call cost of the Keras batch methods and of a hand-written loop step, against PyTorch
eager doing the same on the same network (when installed), in the same run.

    python bench/keras_calls.py [--batch 32] [--calls 2000]

Prints the median microseconds per call over rounds of ``--calls`` calls, and checks that no
call compiles anything (the compiled entry points' signature counts do not change).
"""

import argparse
import time

import numpy as np

import fastbp


def median_us(fn, calls, rounds=5):
    fn()
    fn()
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - start) / calls * 1e6)
    return float(np.median(out))


def signatures():
    from fastbp.kernels import epoch, inference, optim
    return (len(epoch.train_epoch.signatures), len(inference.infer.signatures),
            len(optim.optimizer_step.signatures))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n_in, hidden, k = 64, 64, 10
    x = rng.standard_normal((args.batch, n_in)).astype(np.float32)
    y = rng.integers(0, k, args.batch)
    model = fastbp.Sequential([fastbp.Input((n_in,)), fastbp.Dense(hidden, activation="relu"),
                               fastbp.Dense(hidden, activation="relu"), fastbp.Dense(k)],
                              seed=0)
    loss = fastbp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss)
    opt = fastbp.optimizers.Adam()

    def loop_step():
        grads = model.gradients(x, y)
        opt.apply_gradients(zip(grads, model.trainable_variables))

    ours = {
        "train_on_batch": lambda: model.train_on_batch(x, y),
        "test_on_batch": lambda: model.test_on_batch(x, y),
        "predict_on_batch": lambda: model.predict_on_batch(x),
        "gradients + apply_gradients": loop_step,
    }
    for fn in ours.values():  # compile or load everything first
        fn()
    before = signatures()
    results = {name: median_us(fn, args.calls) for name, fn in ours.items()}
    assert signatures() == before, "a call compiled a new signature"

    theirs = {}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)
        net = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(hidden, k))
        topt = torch.optim.Adam(net.parameters(), lr=1e-3)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def t_train():
            topt.zero_grad()
            value = torch.nn.functional.cross_entropy(net(xt), yt)
            value.backward()
            topt.step()
            return float(value.detach())

        def t_test():
            with torch.no_grad():
                return float(torch.nn.functional.cross_entropy(net(xt), yt))

        def t_predict():
            with torch.no_grad():
                return net(xt).numpy()

        theirs = {"train_on_batch": t_train, "test_on_batch": t_test,
                  "predict_on_batch": t_predict, "gradients + apply_gradients": t_train}
        theirs = {name: median_us(fn, args.calls) for name, fn in theirs.items()}

    print(f"network {n_in}-{hidden}-{hidden}-{k}, batch {args.batch}, median us per call "
          f"(fastbp {fastbp.get_num_threads()} threads; PyTorch eager 1 thread)")
    print(f"{'call':<30}{'fastbp':>10}{'PyTorch':>10}{'ratio':>8}")
    for name, us in results.items():
        other = theirs.get(name)
        ratio = f"{other / us:.2f}x" if other else "-"
        print(f"{name:<30}{us:>10.1f}{(other or float('nan')):>10.1f}{ratio:>8}")
    print("no call compiled anything (signature counts unchanged)")


if __name__ == "__main__":
    main()
