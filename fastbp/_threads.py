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

from . import codes

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


def one_region(shards):
    """Whether a run of parallel batches may go through one parallel region, its threads
    meeting at a spin barrier (``kernels.train.run_batches_parallel``): on OpenMP, with a
    thread for every shard, on x86 (the threads' agreement to meet times out by the cycle
    counter). The agreement keeps it safe anyway; this keeps it where it was measured."""
    from .kernels.fpmode import X86
    return LAYER == "omp" and X86 and shards > 1 and numba.get_num_threads() >= shards


#: at most this many parameters per copy: with Adam, two shards hold at most 3 MiB of copies
REPLICA_MAX_PARAMS = 2 ** 17


def replicate(n_params, shard_rows, shards):
    """Whether each thread of a region trains on its own copy of the weights and optimizer
    state: for two shards (where it was measured) of fine grain (``ShardScheduler.fine``),
    whose batches are short next to what the two cores must pass each other, and up to
    ``REPLICA_MAX_PARAMS``. In a region on shared weights, each thread updates its chunk of
    them right after the other core has read them, and each write must first take its cache
    line back: for ``reg`` (18,817 parameters, shards of 16 rows) the half-update took 12 us
    instead of 3 (``bench/coherence.py``). With copies, each thread updates every parameter
    but writes only its own lines: ``reg`` epochs 1.17-1.26x faster, ``small`` 1.11-1.24x
    (``bench/ab.py``)."""
    return (shards == 2 and n_params <= REPLICA_MAX_PARAMS
            and ShardScheduler.fine(n_params, shard_rows))


# --- parallel or serial shards, by measurement ---------------------------------------------


class ShardScheduler:
    """Whether the next epoch runs its row shards in parallel, from the measured cost of each way.

    Two shards on two threads pay when both cores stay free for the whole epoch. On a shared
    machine where another process takes a core now and then, every small batch waits at the
    barrier for the descheduled thread: the ``reg`` workload (batch 32, two shards of 16 rows)
    was measured at 287 k samples/s with 2 threads against 534 k with 1, in the same run. Both
    ways compute the same bits, so for such fine-grained shards (fewer than ``FINE_FLOPS``
    floating-point operations per shard and step) the epoch loop times every batch with the
    cycle counter and runs a few of them the other way: ``CK_PROBE_RUN`` batches in a row in
    every ``PROBE_FIRST`` of the first epoch (a quarter), in every ``PROBE_EVERY`` after that
    (one in 32). The first batch after a change of way is not timed: it pays for the switch
    (the pool's threads, asleep after a run of serial batches, must be woken: on a busy
    virtual machine that cost more than the batch). Each way is scored by the mean cost of its
    batches timed in the latest ``HORIZON`` steps, and the next epoch takes the cheaper one.
    Both ways are timed in the same epochs, under the same load. The mean, not the median: the
    batches a descheduled thread stretches at the barrier are the very cost of the parallel
    way on a busy machine. A horizon in steps, not a count of batches: the way that runs only
    in probes gets few batches per epoch, and with the latest 256 of them kept, `small`
    stayed serial for 7 epochs after a CPU hog on the second core stopped (32 ms epochs
    instead of 23), its parallel mean held up by batches timed under the hog. (This replaced
    whole probe epochs: with a serial second epoch in every fit, a 6-epoch fit of ``small``
    spent one epoch in five at 31 ms instead of 24, and the warm-up parallel epochs were
    easily disturbed, e.g. by the spinning OpenBLAS threads scikit-learn's own ``fit`` leaves
    behind, which could keep a fit serial.) Coarser shards
    always run in parallel: there the barrier costs little. Without a cycle counter (not x86)
    every batch reads 0 ticks and the parallel way stays.
    """

    FINE_FLOPS = 16e6
    PROBE_FIRST, PROBE_EVERY = 16, 128
    HORIZON = 1024  # steps: timings older than this are dropped
    MIN_SAMPLES = 8  # batches of each way needed before the choice can change

    def __init__(self, n_params, shard_rows):
        self.key = (n_params, shard_rows)  # the shape whose timings this keeps
        self.adaptive = self.fine(n_params, shard_rows)
        self.epoch = 0
        self.steps = 0  # batches recorded so far
        self.samples = {True: np.zeros(0), False: np.zeros(0)}  # ticks per batch, each way
        self.when = {True: np.zeros(0), False: np.zeros(0)}  # the step of each of those
        self.choice = True

    @classmethod
    def fine(cls, n_params, shard_rows):
        """Whether shards of ``shard_rows`` rows of a network of ``n_params`` parameters are
        fine-grained: under ``FINE_FLOPS`` operations per shard and step (forward 2 P and
        backward 4 P per row, P the parameter count)."""
        return 6.0 * n_params * shard_rows < cls.FINE_FLOPS

    def choose(self):
        """True: run the next epoch's batches in parallel (but for the probes)."""
        return self.choice or not self.adaptive

    def probe(self):
        """Every how many steps the next epoch runs ``CK_PROBE_RUN`` batches the other way
        (0: none)."""
        if not self.adaptive:
            return 0
        return self.PROBE_FIRST if self.epoch == 0 else self.PROBE_EVERY

    def record(self, clock):
        """Read the epoch just run from the loop's ``clock`` (N_CK, batches): ticks and way of
        each batch."""
        ticks, way = clock[codes.CK_TICKS], clock[codes.CK_WAY]
        steps = self.steps + np.arange(ticks.shape[0])
        self.steps += ticks.shape[0]
        for parallel, code in ((True, codes.CK_PARALLEL), (False, codes.CK_SERIAL)):
            timed = way == code
            when = np.concatenate([self.when[parallel], steps[timed]])
            recent = when >= self.steps - self.HORIZON
            self.when[parallel] = when[recent]
            self.samples[parallel] = np.concatenate([self.samples[parallel],
                                                     ticks[timed]])[recent]
        par, ser = self.samples[True], self.samples[False]
        if self.adaptive and len(par) + len(ser) > 0 and not (par.any() or ser.any()):
            self.adaptive = False  # no cycle counter here
        if len(par) >= self.MIN_SAMPLES and len(ser) >= self.MIN_SAMPLES:
            self.choice = bool(par.mean() <= ser.mean())
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
