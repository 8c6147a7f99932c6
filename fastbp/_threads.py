"""Threads: how many, how a batch is sharded, and the threads of one compiled call.

fastbp runs its own threads: the caller's thread runs the kernel as thread 0 and ``n - 1``
helper threads run it as threads 1 .. n - 1; the kernels release the GIL, so all run at once.
The helpers are Python threads started at the first call that needs them and kept, blocked,
for the next (``run``). No Numba threading layer (OpenMP, TBB, workqueue) is
involved, so a forked child trains like its parent, any number of Python threads may call
fastbp at once, and nothing depends on ``numba.set_num_threads``.

How many threads: ``set_num_threads(n)`` for the calling Python thread, else the
``NUMBA_NUM_THREADS`` environment variable, else the cores this process may use.
"""

import _signal  # the C module under ``signal``: the same handlers, without its enum wrappers
import contextlib
import os
import signal
import threading

import numba
import numpy as np

from . import _platform

cores = _platform.cores

_local = threading.local()


def get_num_threads():
    """Threads fastbp uses for a call made from this Python thread."""
    n = getattr(_local, "n", None)
    return n if n is not None else max(1, min(cores(), numba.config.NUMBA_NUM_THREADS))


def set_num_threads(n):
    """Use at most ``n`` threads for fastbp's calls made from this Python thread (None: the
    default). Results do not depend on it (see ``n_shards``)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"the number of threads must be an integer >= 1 or None; received "
                         f"{n!r}")
    _local.n = None if n is None else int(n)


@contextlib.contextmanager
def limit(n):
    """``set_num_threads(n)`` inside the block (None: leave as is), restored after."""
    saved = getattr(_local, "n", None)
    if n is not None:
        set_num_threads(n)
    try:
        yield
    finally:
        _local.n = saved


#: a shard smaller than this many rows costs more in synchronisation than it saves
MIN_SHARD_ROWS = 16


def n_shards(batch_size, max_shards=None):
    """Row shards per batch: one per core, at most ``batch_size // MIN_SHARD_ROWS``.

    Depends on the machine's core count and the batch size, not on the thread count: the
    same machine gives bit-identical training whatever ``set_num_threads`` says.
    """
    limit_ = cores() if max_shards is None else max_shards
    return max(1, min(limit_, batch_size // MIN_SHARD_ROWS))


def threads_for(shards):
    """Threads for a call with ``shards`` shards: all of them, or 1 when fewer threads are
    allowed (a thread never runs two shards of a parallel batch: they meet at a barrier)."""
    return shards if 1 < shards <= get_num_threads() else 1


def run(kernel, n, args, sync=None, stop_word=0):
    """``kernel(s, *args)`` on ``n`` threads: s = 0 on the calling thread, the others on
    fastbp's helper threads (``_Helpers``); returns thread 0's result. ``sync``: the kernel's
    int64 words, of which ``sync[stop_word] = -1`` tells the other threads to leave (set once
    thread 0 is done, whatever happened to it)."""
    if n == 1:
        return kernel(np.int64(0), *args)
    global _helpers
    with _helpers_lock:
        if _helpers is None:
            _helpers = _Helpers(keep=True)
        pool = _helpers
    if not pool.lock.acquire(blocking=False):
        # another call holds the kept helpers: helpers of this call's own, which leave after it
        pool = _Helpers(keep=False)
        pool.lock.acquire()
    try:
        return pool.run(kernel, n, args, sync, stop_word)
    finally:
        pool.lock.release()


class _Helper:
    """One helper thread: it waits (blocked, taking no core) until ``give`` hands it a job,
    runs it and tells ``wait``; then waits for the next, or leaves unless ``keep``."""

    def __init__(self, name, keep):
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.job, self.keep = None, keep
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def _loop(self):
        while True:
            self.go.acquire()
            job, self.job = self.job, None
            try:
                job()
            finally:
                job = None  # (the job holds the call's arrays: not kept past the call)
                self.done.release()
            if not self.keep:
                return

    def give(self, job):
        self.job = job
        self.go.release()

    def wait(self):
        self.done.acquire()


class _Helpers:
    """Helper threads for compiled calls, started at the first call that needs them and kept
    for the next: starting and joining a thread cost about 100 microseconds, a short epoch's
    worth of batches; handing a job to a waiting one costs a few. One call at a time uses them
    (``lock``); a forked child starts its own. ``keep``: False for the helpers of one call,
    which leave after it."""

    def __init__(self, keep):
        self.lock = threading.Lock()
        self.threads = []
        self.keep = keep

    def run(self, kernel, n, args, sync, stop_word):
        errors = []

        def job(s):
            def helper():
                try:
                    kernel(np.int64(s), *args)
                except BaseException as error:  # noqa: BLE001  (re-raised in the caller's)
                    errors.append(error)
            return helper

        while len(self.threads) < n - 1:
            self.threads.append(_Helper(f"fastbp-{len(self.threads) + 1}", self.keep))
        helpers = self.threads[:n - 1]
        given = []
        try:
            for s, helper in enumerate(helpers, 1):
                helper.give(job(s))
                given.append(helper)
            result = kernel(np.int64(0), *args)
        finally:
            if sync is not None:
                sync[stop_word] = -1
            self._wait(given)
        if errors:
            raise errors[0]
        return result

    def _wait(self, given):
        global _helpers
        try:
            for helper in given:
                helper.wait()
        except BaseException:
            # interrupted while a helper still runs: it finishes on its own (it was told to
            # leave), and these helpers are not handed another job
            if _helpers is self:
                _helpers = None
            raise


#: the kept helpers (``_Helpers``), None before the first call that needs them
_helpers = None
_helpers_lock = threading.Lock()


# --- several fits or predictions at once ---------------------------------------------------
# Models trained from several Python threads each hold a core already (the kernels release the
# GIL). More threads per call would only add synchronisation, so a compiled call that is not
# alone runs its shards one after the other: the same shards, so the same bits.

#: the calls under way: a set of tokens (the ids of ``_Running`` objects), changed by single
#: (atomic) set operations and no lock, so that an interrupt can neither leave a lock held nor
#: the count wrong for good (a token whose ``__exit__`` never ran leaves with its object)
_calls = set()
#: the same count where compiled code can read it: the epoch loop reads it before every batch,
#: so a fit that began alone runs its next batches on one thread once another call starts
RUNNING = np.zeros(1, np.int64)


class _Running:
    """Context manager of ``running`` (a class: a generator-based one costs microseconds,
    which a one-row ``predict`` notices)."""

    __slots__ = ()

    def __enter__(self):
        _calls.add(id(self))
        RUNNING[0] = len(_calls)

    def __exit__(self, *exc):
        _calls.discard(id(self))
        RUNNING[0] = len(_calls)

    def __del__(self):
        if id(self) in _calls:  # an interrupt came between __enter__ and the with block
            _calls.discard(id(self))
            RUNNING[0] = len(_calls)


def running():
    """Count this compiled call among those under way in the process (see ``alone``)."""
    return _Running()


def alone():
    """Whether the calling compiled call is the only one under way (inside ``running``)."""
    return len(_calls) <= 1


def _after_fork_in_child():
    # calls under way in the parent's other threads do not exist in the child
    global _blas_lock, _blas_depth, _helpers, _helpers_lock
    _calls.clear()
    _helpers = None  # the parent's helper threads do not exist in the child
    _helpers_lock = threading.Lock()
    RUNNING[0] = 0
    _blas_lock = threading.Lock()
    _blas_depth = 0


# --- BLAS threads while fastbp's threads run ------------------------------------------------
# Each shard thread calls BLAS (sgemm through np.dot). If BLAS also starts its own threads,
# 2 shards x 2 BLAS threads fight over 2 cores: measured 30x slower on the `medium` workload.
# While fastbp's threads run, BLAS is held to one thread, and put back afterwards. Nested and
# concurrent calls share one hold: the first in sets it, the last out restores it.

_blas_lock = threading.Lock()
_blas_depth = 0
_blas_saved = []
_blas_controllers = None


def _controllers():
    global _blas_controllers
    if _blas_controllers is None:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls)
        from threadpoolctl import ThreadpoolController
        _blas_controllers = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_controllers


def single_threaded_blas(active=True):
    """Hold every loaded BLAS to one thread inside the block (when ``active``)."""
    return _single_threaded_blas() if active else contextlib.nullcontext()


@contextlib.contextmanager
def _single_threaded_blas():
    global _blas_depth, _blas_saved
    with interrupts_deferred(), _blas_lock:
        if _blas_depth == 0:
            _blas_saved = [(c, c.get_num_threads()) for c in _controllers()]
            for c, _ in _blas_saved:
                c.set_num_threads(1)
        _blas_depth += 1
    try:
        yield
    finally:
        with interrupts_deferred(), _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                for c, n in _blas_saved:
                    c.set_num_threads(n)


# --- Ctrl-C ------------------------------------------------------------------------------------

#: how deep the main thread is in ``interrupts_deferred`` blocks (tests read it)
deferring = 0


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (SIGINT) back until the block is done, then deliver it.

    For state that must change all at once (the hold on BLAS's threads and its lock) and for
    Numba loading or compiling a kernel, which is not safe to interrupt: a KeyboardInterrupt
    in the middle left Numba's type registry broken for the rest of the process, and a burst
    of them aborted it (double free). Only the main thread receives signals; elsewhere this
    does nothing."""
    global deferring
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    # (``_signal.signal``: 0.3 us a swap where ``signal.signal``'s enum wrappers cost 3.5 us;
    # a small evaluate swaps four times)
    previous = _signal.signal(_signal.SIGINT, lambda signum, frame: received.append(frame))
    deferring += 1
    try:
        yield
    finally:
        deferring -= 1
        _signal.signal(_signal.SIGINT, previous)
        if received:
            if previous is signal.default_int_handler or previous is None:
                raise KeyboardInterrupt
            if callable(previous):
                previous(signal.SIGINT, received[-1])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
