"""Threads: which Numba threading layer fastbp uses, and how many row shards a batch gets.

Numba's default fallback layer, ``workqueue``, costs about 100 microseconds per parallel
region here (against 1 for OpenMP) and aborts the process when two Python threads enter
parallel code at once. fastbp therefore asks Numba for a thread-safe layer (OpenMP, else
TBB) unless the user chose one, and trains serially when neither is installed.
"""

import contextlib
import os
import threading

import numba
import numpy as np

SAFE_LAYERS = ("omp", "tbb")


def _available(layer):
    try:
        if layer == "omp":
            from numba.np.ufunc import omppool  # noqa: F401  (fails without libgomp)
        else:
            from numba.np.ufunc import tbbpool  # noqa: F401  (fails without the tbb package)
    except ImportError:
        return False
    return True


def _choose_layer():
    chosen = numba.config.THREADING_LAYER
    if chosen == "default":
        for layer in SAFE_LAYERS:
            if _available(layer):
                numba.config.THREADING_LAYER = layer  # read by Numba at its first parallel launch
                return layer
        return None
    if chosen == "threadsafe":
        candidates = ("tbb", "omp")
    elif chosen == "safe":
        candidates = ("tbb",)
    elif chosen in SAFE_LAYERS:
        candidates = (chosen,)
    else:
        return None  # the user asked for workqueue or forksafe: respect it and stay serial
    return next((layer for layer in candidates if _available(layer)), None)


#: the threading layer fastbp's parallel kernels run on, or None when it trains serially
LAYER = _choose_layer()


def cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: a shard smaller than this many rows costs more in synchronisation than it saves
MIN_SHARD_ROWS = 16


def n_shards(batch_size, max_shards=None):
    """Row shards per batch: one per core, at most ``batch_size // MIN_SHARD_ROWS``.

    Depends on the machine's core count and the batch size, not on ``NUMBA_NUM_THREADS``:
    the same machine gives bit-identical training whatever the thread count.
    """
    limit = cores() if max_shards is None else max_shards
    return max(1, min(limit, batch_size // MIN_SHARD_ROWS))


def parallel(shards):
    """Whether shards run on Numba's thread pool (a safe layer exists and there are several)."""
    return LAYER is not None and shards > 1 and numba.get_num_threads() > 1


# --- parallel or serial shards, by measurement ---------------------------------------------


class ShardScheduler:
    """Whether the next epoch runs its row shards in parallel, from the measured speed of each way.

    Two shards on two threads pay when both cores stay free for the whole epoch. On a shared
    machine where another process takes a core now and then, every small batch waits at the
    barrier for the descheduled thread: the ``reg`` workload (batch 32, two shards of 16 rows)
    was measured at 287 k samples/s with 2 threads against 534 k with 1, in the same run. Both
    ways compute the same bits, so for such fine-grained shards (fewer than ``FINE_FLOPS``
    floating-point operations per shard and step) the runner times them: the first epoch in
    parallel (it may include loading the compiled code: not compared), the second serially, the
    third and fourth in parallel, then the faster way. Each way is scored by the better of its
    two latest timings: another process only ever adds time, so a single epoch slowed by it
    does not turn the choice (measured on ``small`` through ``partial_fit``: one parallel epoch
    at 45 ms against 27 ms serial kept every later epoch serial, at 27 ms instead of 20). The
    other way is tried again after ``PROBE_FIRST`` epochs, twice as long after each probe that
    confirms the choice (up to ``PROBE_MAX``), since the machine's load changes. The first probe
    comes soon because the warm-up itself is often disturbed: right after scikit-learn's own
    ``fit``, NumPy's OpenBLAS threads spin for about 0.1 s and slowed both warm-up parallel
    epochs on ``small`` to 38-41 ms (serial 27, parallel 20 once they stop). Coarser shards
    always run in parallel: there the barrier costs little and a serial probe epoch would cost
    nearly twice its time.
    """

    FINE_FLOPS = 16e6
    PROBE_FIRST, PROBE_MAX = 2, 64
    WARMUP = 4  # epochs 0-3: parallel (untimed), serial, parallel, parallel

    def __init__(self, n_params, shard_rows):
        self.key = (n_params, shard_rows)  # the shape whose timings this keeps
        # forward 2 P and backward 4 P operations per row, P the parameter count
        self.adaptive = 6.0 * n_params * shard_rows < self.FINE_FLOPS
        self.epoch = 0
        self.recent = {True: [], False: []}  # seconds per row, the latest two epochs each way
        self.choice = True
        self.interval, self.next_probe = self.PROBE_FIRST, self.WARMUP

    def choose(self):
        """True: run the next epoch's shards in parallel."""
        if not self.adaptive or self.epoch == 0:
            return True
        if not self.recent[False]:
            return False
        if len(self.recent[True]) < 2:
            return True
        if self.epoch >= self.next_probe + self.interval:
            return not self.choice
        return self.choice

    def record(self, parallel, seconds, rows):
        """Report the epoch just run: which way, its wall time, its row count."""
        if self.epoch > 0 and rows > 0:
            times = self.recent[parallel]
            times.append(seconds / rows)
            del times[:-2]
            if self.recent[True] and self.recent[False]:
                choice = min(self.recent[True]) <= min(self.recent[False])
                if parallel != self.choice and self.epoch >= self.WARMUP:  # a probe
                    self.interval = min(2 * self.interval, self.PROBE_MAX) \
                        if choice == self.choice else self.PROBE_FIRST
                    self.next_probe = self.epoch
                self.choice = choice
        self.epoch += 1


# --- several fits or predictions at once ---------------------------------------------------
# Models trained from several Python threads each hold a core already (the kernels release the
# GIL). Sharing Numba's pool as well would only add synchronisation, so a compiled call that
# is not alone runs its shards one after the other: the same shards, so the same bits.

_running = 0
_running_lock = threading.Lock()
#: the same count where compiled code can read it: the epoch loop reads it before every batch,
#: so a fit that began alone runs its next batches serially once another call starts (and
#: goes back to its pool when that call ends)
RUNNING = np.zeros(1, np.int64)


class _Running:
    """Context manager of ``running`` (a class: a generator-based one costs microseconds,
    which a one-row ``predict`` notices)."""

    def __enter__(self):
        global _running
        with _running_lock:
            _running += 1
            RUNNING[0] = _running

    def __exit__(self, *exc):
        global _running
        with _running_lock:
            _running -= 1
            RUNNING[0] = _running


_RUNNING = _Running()


def running():
    """Count this compiled call among those under way in the process (see ``alone``)."""
    return _RUNNING


def alone():
    """Whether the calling compiled call is the only one under way (inside ``running``)."""
    return _running <= 1


# --- BLAS threads during parallel training -------------------------------------------------
# Each shard thread calls BLAS (sgemm through np.dot). If BLAS also starts its own threads,
# 2 shards x 2 BLAS threads fight over 2 cores: measured 30x slower on the `medium` workload.
# While sharded training runs, BLAS is held to one thread, and put back afterwards. Nested and
# concurrent fits share one hold: the first in sets it, the last out restores it.

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
    with _blas_lock:
        if _blas_depth == 0:
            _blas_saved = [(c, c.get_num_threads()) for c in _controllers()]
            for c, _ in _blas_saved:
                c.set_num_threads(1)
        _blas_depth += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                for c, n in _blas_saved:
                    c.set_num_threads(n)
