"""Backends: the compiled kernels or the NumPy reference, behind the same three calls.

* ``train_epoch(args, threads, ways, probe, clock, replicas)``: one epoch (``args`` are
  the reference's ``train_epoch`` arguments, in order); returns ``(status, t,
  parallel_batches)``.
* ``infer(X, Y, labels, sw, ops, opf, loss, loss_param, acc_kind, params, aux, acts, deltas,
  chunk, out, stats)``: outputs into ``out`` and/or loss and metric sums into ``stats``
  (``kernels.inference.infer``); ``acts`` has one work buffer per thread.
* ``penalty(params, runs, scale)``: the L1/L2 penalty's value.
* ``step(code, params, grads, state, hyper, t, seg, scale)``: one optimizer step with a given
  gradient (``optimizer.apply_gradients``).

The compiled backend is imported on first use, which keeps ``import fastbp`` light. It is
where arrays cross into compiled code, so it is where they get one type: every array a
kernel only reads is passed as a read-only view, whatever the caller's flags (a writable
array, a memory map, a pandas column), so each kernel is compiled once.
"""

import numpy as np

from . import _threads, codes, sparse
from ._validation import lookup

BACKENDS = {"numba": "compiled kernels", "numpy": "NumPy reference"}


def check_backend(name):
    """The canonical backend name, or a ValueError naming the choices."""
    key, _ = lookup(BACKENDS, {}, name, "backend")
    return key


def frozen(a):
    """``a`` as a read-only view (itself when it is read-only already)."""
    if not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


_ready = set()


def ready(kernel, args):
    """Compile or load ``kernel`` for ``args`` (once per process) with interrupts held back;
    the call that follows then runs machine code that is already there. (A set of names, not
    ``kernel.signatures``, which costs 15 microseconds to build.)"""
    if kernel.__name__ in _ready:
        return
    import numba
    with _threads.interrupts_deferred():
        kernel.compile(tuple(numba.typeof(a) for a in args))
    _ready.add(kernel.__name__)


# positions in the ``args`` of ``train_epoch`` of the arrays the kernel only reads (and of the
# ``csr`` tuple), and of its integers (batch_size, loss, acc_kind, opt, t, seed)
_READ_ONLY = (0, 2, 3, 4, 5, 7, 8, 9, 11, 15)
_CSR = 1
_INTEGERS = (6, 10, 12, 13, 17, 29)


class NumbaBackend:
    """The compiled kernels (``fastbp.kernels``), on fastbp's threads."""

    name = "numba"

    def __init__(self):
        from .kernels import epoch, inference
        self._epoch, self._infer = epoch, inference

    def train_epoch(self, args, threads=1, ways=None, probe=0, clock=None, replicas=None):
        args = list(args)
        for i in _READ_ONLY:
            args[i] = frozen(args[i])
        args[_CSR] = tuple(frozen(a) for a in args[_CSR])
        for i in _INTEGERS:
            args[i] = int(args[i])
        parts = args[25].shape[1]  # scratch (3, S): S threads' parts of a batch
        if clock is None:
            clock = np.zeros((codes.N_CK, 0))
        if ways is None:  # parallel, fixed
            ways = np.zeros(codes.N_WAYS)
            ways[codes.W_PARALLEL] = 1.0
        if replicas is None:
            replicas = np.zeros((parts, 0), np.float32)
        sync = np.zeros(self._epoch.sync_words(parts), np.int64)
        kernel_args = (np.int64(threads), *args, ways, _threads.RUNNING,
                       np.int64(probe), clock, sync, replicas)
        ready(self._epoch.train_epoch, (np.int64(0),) + kernel_args)
        status, t, parallel_batches = _threads.run(self._epoch.train_epoch, threads,
                                                   kernel_args, sync, self._epoch.ORDER)
        return int(status), int(t), int(parallel_batches)

    def infer(self, X, Y, labels, sw, ops, opf, loss, loss_param, acc_kind, params, aux, acts,
              deltas, chunk, out, stats):
        """``acts`` (T, A): with T > 1 (outputs only), T threads each predict a run of whole
        chunks of ``chunk`` rows."""
        X, csr = sparse.kernel_input(X)
        if csr is not sparse.EMPTY:
            X, csr = frozen(X), tuple(frozen(a) for a in csr)
        # (each checked inline: this is most of a one-row predict's Python time)
        X = frozen(X) if X.flags.writeable else X
        opf = frozen(opf) if opf.flags.writeable else opf
        if Y.flags.writeable or labels.flags.writeable or sw.flags.writeable or \
                ops.flags.writeable or loss_param.flags.writeable:
            Y, labels, sw, ops, loss_param = map(frozen, (Y, labels, sw, ops, loss_param))
        n, threads = X.shape[0], acts.shape[0]
        if threads == 1:  # (the common one-row predict: every microsecond counts)
            args = (X, csr, Y, labels, sw, 0, n, int(chunk), ops, opf, int(loss), loss_param,
                    int(acc_kind), params, aux, acts[0], deltas[0], out, stats)
            ready(self._infer.infer, args)
            self._infer.infer(*args)
            return

        ready(self._infer.infer, (X, csr, Y, labels, sw, 0, n, int(chunk), ops, opf, int(loss),
                                  loss_param, int(acc_kind), params, aux, acts[0], deltas[0],
                                  out, stats))

        chunks = -(-n // chunk)

        def part(s, *_):  # thread s: a run of whole chunks
            first, last = split(chunks, threads, int(s))
            lo, hi = first * chunk, min(last * chunk, n)
            self._infer.infer(X, csr, Y, labels, sw, lo, hi, int(chunk), ops, opf, int(loss),
                              loss_param, int(acc_kind), params, aux, acts[s], deltas[s], out,
                              stats)
        _threads.run(part, threads, ())

    def penalty(self, params, runs, scale):
        from .reference.optim import penalty
        return penalty(params, np.zeros_like(params), runs, scale)

    def step(self, code, params, grads, state, hyper, t, seg, scale):
        """One step of optimizer ``code`` on the stretches ``seg`` (n, N_SEG) of ``params``
        (P,) with the summed gradient ``grads`` (1, P) (``kernels.optim.optimizer_step``)."""
        from .kernels.optim import optimizer_step
        args = (int(code), params, grads, state, frozen(hyper), int(t), frozen(seg),
                int(seg.shape[0]), float(scale), np.zeros(0), np.zeros(0, np.float32), True)
        ready(optimizer_step, args)
        optimizer_step(*args)


class NumpyBackend:
    """The NumPy reference (``fastbp.reference``): one thread, any float dtype."""

    name = "numpy"

    def __init__(self):
        from .reference import epoch, inference, optim
        self._epoch, self._infer, self._optim = epoch, inference, optim

    def train_epoch(self, args, threads=1, ways=None, probe=0, clock=None, replicas=None):
        status, t = self._epoch.train_epoch(*args)
        return int(status), int(t), 0

    def infer(self, X, Y, labels, sw, ops, opf, loss, loss_param, acc_kind, params, aux, acts,
              deltas, chunk, out, stats):
        n, threads = X.shape[0], acts.shape[0]
        chunks = -(-n // chunk)
        X, csr = sparse.kernel_input(X)
        for s in range(threads):  # as the compiled backend's threads: runs of whole chunks
            first, last = split(chunks, threads, s)
            self._infer.infer(X, csr, Y, labels, sw, first * chunk, min(last * chunk, n), chunk,
                              ops, opf, loss, loss_param, acc_kind, params, aux, acts[s],
                              deltas[s], out, stats)

    def penalty(self, params, runs, scale):
        return self._optim.penalty(params, np.zeros_like(params), runs, scale)

    def step(self, code, params, grads, state, hyper, t, seg, scale):
        self._optim.optimizer_step(code, params, grads, state, hyper, t, seg, seg.shape[0],
                                   scale, np.zeros(0), np.zeros(0, np.float32), True)


def split(n, parts, k):
    """Bounds of part k when ``range(n)`` is cut into ``parts`` nearly equal runs."""
    size = -(-n // parts)
    lo = min(k * size, n)
    return lo, min(lo + size, n)


_CLASSES = {"numba": NumbaBackend, "numpy": NumpyBackend}
_CACHE = {}


def get(name):
    """The backend called ``name`` ('numba' or 'numpy')."""
    name = check_backend(name)
    if name not in _CACHE:
        _CACHE[name] = _CLASSES[name]()
    return _CACHE[name]
