"""Parallel or serial batches, by measurement; and when threads keep their own weights.

Both ways compute the same bits (``fastbp.kernels.epoch``); this only decides which is
faster here and now.
"""

import numpy as np

from . import codes

#: an epoch of fewer floating-point operations than this (6 per parameter and row: forward,
#: weight gradient, input gradient) runs on one thread, with one shard: below it, a batch's
#: two shards' fixed work and meetings cost more than the second core saves (32-64-unit
#: networks at batch 200: 0.90-0.98x at 32-65 MFLOP an epoch, 1.16x at 65-129; 128-64 units:
#: 0.96x at 78, 1.44x at 155); handing an epoch to the kept helper threads costs about 60 us
MIN_PARALLEL_FLOPS = 64e6


def worth_threads(n_params, n_rows):
    """Whether an epoch over ``n_rows`` rows of a network of ``n_params`` parameters is long
    enough to start threads for (``MIN_PARALLEL_FLOPS``)."""
    return 6.0 * n_params * n_rows >= MIN_PARALLEL_FLOPS


#: at most this many parameters per copy: with Adam, two shards hold at most 3 MiB of copies
REPLICA_MAX_PARAMS = 2 ** 17


def replicate(n_params, shard_rows, shards):
    """Whether each thread of an epoch trains on its own copy of the weights and optimizer
    state: for two shards (where it was measured) of fine grain (``ShardScheduler.fine``),
    whose batches are short next to what the two cores must pass each other, and up to
    ``REPLICA_MAX_PARAMS``. On shared weights, each thread updates its chunk of
    them right after the other core has read them, and each write must first take its cache
    line back: for ``reg`` (18,817 parameters, shards of 16 rows) the half-update took 12 us
    instead of 3 (``bench/coherence.py``). With copies, each thread updates every parameter
    but writes only its own lines: ``reg`` epochs 1.17-1.26x faster, ``small`` 1.11-1.24x
    (``bench/ab.py``)."""
    return (shards == 2 and n_params <= REPLICA_MAX_PARAMS
            and ShardScheduler.fine(n_params, shard_rows))


# --- parallel or serial shards, by measurement ---------------------------------------------


def enough(samples):
    """Whether these timed batches (ticks) suffice to compare a way by: the Python twin of
    the loop's ``kernels.clock.timed_enough`` (calling that from here would compile it, and an
    installed wheel compiles nothing)."""
    return len(samples) >= codes.CK_MIN_SAMPLES or (
        len(samples) >= 2 and samples.sum() >= codes.CK_MIN_TICKS)


class ShardScheduler:
    """Whether the batches of the next epoch run their row shards in parallel, from the measured
    cost of each way; the compiled loop carries the choice on within the epoch.

    Two shards on two threads pay when both cores stay free. On a shared machine where another
    process takes a core, every batch waits at the barrier for the descheduled thread: the
    ``reg`` workload (batch 32, two shards of 16 rows) ran at 287 k samples/s with 2 threads
    against 534 k with 1, in the same run, and coarse shards lose too (``medium``, batch 256:
    490 ms epochs on 2 threads against 315 ms on 1, ``bench/hog.py``). Both ways compute the
    same bits, so the epoch loop times every batch with the cycle counter and runs a few of
    them the other way: ``CK_PROBE_RUN`` batches in a row in every ``CK_PROBE_FIRST`` until
    each way has enough timed batches (``CK_MIN_SAMPLES``, or 2 long ones), then in every
    ``PROBE_EVERY`` x r, r the ratio of the two ways' mean costs. From then on,
    before every batch, the loop takes the way whose timed batches cost less on average
    (``kernels.clock.choose_way``): a fit that starts on a busy machine goes serial within its
    first few dozen batches. In a serial stretch the helper threads wait for those probes,
    first spinning, then yielding, then asleep (``kernels.shared.pause``), so that they take
    nothing from the leader. The first batch after a change of way is not timed: it pays for
    the switch (a helper thread starting, or waking). Between epochs this keeps the batches
    timed in the latest ``HORIZON`` steps and seeds the next epoch's loop with them. The mean,
    not the median: the batches a descheduled thread stretches at the barrier are the very
    cost of the parallel way on a busy machine. A horizon in steps, not a count of batches:
    the way that runs only in probes gets few batches per epoch, and with the latest 256 of
    them kept, `small` stayed serial for 7 epochs after a CPU hog on the second core stopped
    (32 ms epochs instead of 23), its parallel mean held up by batches timed under the hog.
    (This replaced whole probe epochs: with a serial second epoch in every fit, a 6-epoch fit
    of ``small`` spent one epoch in five at 31 ms instead of 24.) Without a cycle counter
    (not x86) every batch reads 0 ticks and the parallel way stays, unprobed.
    """

    FINE_FLOPS = 16e6
    PROBE_EVERY = 128
    HORIZON = 1024  # steps: timings older than this are dropped

    def __init__(self, n_params, shard_rows):
        self.key = (n_params, shard_rows)  # the shape whose timings this keeps
        self.adaptive = True
        self.epoch = 0
        self.steps = 0  # batches recorded so far
        # per way: (step of each timed batch, its ticks), replaced whole by ``record``, so an
        # interrupt can never leave the two of different lengths
        self.timings = {True: (np.zeros(0), np.zeros(0)), False: (np.zeros(0), np.zeros(0))}
        self.choice = True

    @classmethod
    def fine(cls, n_params, shard_rows):
        """Whether shards of ``shard_rows`` rows of a network of ``n_params`` parameters are
        fine-grained: under ``FINE_FLOPS`` operations per shard and step (forward 2 P and
        backward 4 P per row, P the parameter count)."""
        return 6.0 * n_params * shard_rows < cls.FINE_FLOPS

    def choose(self):
        """True: the next epoch starts with its batches in parallel (but for the probes)."""
        return self.choice or not self.adaptive

    def probe(self):
        """The probe period of the next epoch once both ways are timed (0: no probes)."""
        return self.PROBE_EVERY if self.adaptive else 0

    def ways(self):
        """The next epoch's ``ways`` (``codes.N_WAYS``,): the way to start with and the
        ticks and counts of the batches timed within the horizon."""
        ways = np.zeros(codes.N_WAYS)
        ways[codes.W_PARALLEL] = 1.0 if self.choose() else 0.0
        par, ser = self.timings[True][1], self.timings[False][1]
        ways[codes.W_PAR_TICKS], ways[codes.W_PAR_N] = par.sum(), len(par)
        ways[codes.W_SER_TICKS], ways[codes.W_SER_N] = ser.sum(), len(ser)
        return ways

    def record(self, clock):
        """Read the epoch just run from the loop's ``clock`` (N_CK, batches): ticks and way of
        each batch."""
        ticks, way = clock[codes.CK_TICKS], clock[codes.CK_WAY]
        steps = self.steps + ticks.shape[0]
        when_all = self.steps + np.arange(ticks.shape[0])
        timings = {}
        for parallel, code in ((True, codes.CK_PARALLEL), (False, codes.CK_SERIAL)):
            timed = way == code
            when, samples = self.timings[parallel]
            when = np.concatenate([when, when_all[timed]])
            samples = np.concatenate([samples, ticks[timed]])
            recent = when >= steps - self.HORIZON
            timings[parallel] = (when[recent], samples[recent])
        par, ser = timings[True][1], timings[False][1]
        adaptive = self.adaptive
        if adaptive and len(par) + len(ser) > 0 and not (par.any() or ser.any()):
            adaptive = False  # no cycle counter here
        choice = self.choice
        if enough(par) and enough(ser):
            choice = bool(par.sum() * len(ser) <= ser.sum() * len(par))  # as choose_way
        # one assignment: an interrupt leaves either the old state or the new one
        self.__dict__.update(timings=timings, steps=steps, adaptive=adaptive, choice=choice,
                             epoch=self.epoch + 1)

    @property
    def samples(self):
        """Ticks of the timed batches kept, per way (True: parallel)."""
        return {way: pair[1] for way, pair in self.timings.items()}
