"""Integer codes shared by the compiled kernels and the NumPy reference.

The network reaches the kernels as small integer arrays, never as Python objects, so that
one compiled function serves every architecture. This module is the single source of truth
for what each integer means; both ``fastbp.kernels`` and ``fastbp.reference`` import it, and
nothing else. Numba freezes module-level integers as compile-time constants.
"""

# --- activations -----------------------------------------------------------------------
LINEAR = 0
RELU = 1
LEAKY_RELU = 2
ELU = 3
SIGMOID = 4
TANH = 5
SOFTMAX = 6
EXP = 7

#: name -> code; the Python API resolves user strings through this table.
ACTIVATIONS = {
    "linear": LINEAR,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "softmax": SOFTMAX,
    "exponential": EXP,
}
ACTIVATION_ALIASES = {"identity": "linear", "logistic": "sigmoid", "exp": "exponential",
                      None: "linear"}
#: default value of the activation's parameter (negative slope, ELU alpha); 0 where unused.
ACTIVATION_DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}

# --- operations of the compiled network ------------------------------------------------------
# The network reaches the kernels as a table ``ops`` (int64, one row per operation) and a
# table ``opf`` (float64, same rows). Layers of the Python API map onto these operations.
OP_DENSE = 0        # a = f(x W + b)
OP_BATCHNORM = 1    # a = f(gamma * (x - mean) / sqrt(var + eps) + beta)
OP_DROPOUT = 2      # a = x * mask / (1 - rate) while training, a = x otherwise

# columns of ``ops``
OC_KIND = 0         # OP_* code
OC_IN = 1           # input width
OC_OUT = 2          # output width
OC_PARAM = 3        # offset of the op's parameters in the flat vector (W then b; gamma then beta)
OC_ACT = 4          # activation code (dense, batch norm)
OC_AUX = 5          # offset of the running mean, then variance, in ``aux`` (batch norm)
OC_BUF = 6          # offset of the op's output block (and delta block) in the work buffers
OC_XHAT = 7         # batch norm: offset of the normalised input block, then 1/std and mean rows
OC_ALIVE = 8        # diagnostics: offset of the op's units in a diagnostics row (-1: none)
OC_SCRATCH = 9      # offset of the backward workspace in ``deltas``, to its end (-1: none)
N_OC = 10

# columns of ``opf``
OF_ALPHA = 0        # activation parameter
OF_RATE = 1         # dropout rate
OF_MOMENTUM = 2     # batch norm: weight of the old running statistics
OF_EPS = 3          # batch norm: variance epsilon
N_OF = 4

# Rows of ``runs`` (float64): stretches of the parameter vector sharing one L1/L2 penalty.
RUN_START = 0
RUN_STOP = 1
RUN_L1 = 2
RUN_L2 = 3
N_RUN = 4
# Rows of ``seg``: the runs cut to one parameter chunk, penalty scaled for the batch.
SEG_START = 0
SEG_STOP = 1
SEG_C1 = 2
SEG_C2 = 3
SEG_RUN = 4
N_SEG = 5
# A diagnostics row starts with two sums per run: squared gradient and squared update.
DG_PER_RUN = 2

# --- learning-rate schedules -------------------------------------------------------------------
SCHED_CONSTANT = 0      # lr
SCHED_STEP = 1          # lr * a ** floor(x / b)
SCHED_EXPONENTIAL = 2   # lr * a ** (x / b)
SCHED_LINEAR = 3        # lr + (a - lr) * min(x, b) / b
SCHED_INVSCALING = 4    # lr / (x + 1) ** a
SCHED_COSINE = 5        # lr * (a + (1 - a) * (1 + cos(pi * min(x, b) / b)) / 2)
# slots of the float64 ``sched`` array; x counts steps (or epochs) from 0
SC_CODE = 0
SC_PER_STEP = 1     # 1: evaluated at every step inside the epoch; 0: once per epoch
SC_LR = 2
SC_A = 3
SC_B = 4
SC_FACTOR = 5       # multiplier set by ReduceLROnPlateau (1 otherwise)
N_SC = 6

# --- losses ----------------------------------------------------------------------------
SQUARED_ERROR = 0
HUBER = 1
BINARY_CROSSENTROPY = 2
CATEGORICAL_CROSSENTROPY = 3
POISSON = 4
ABSOLUTE_ERROR = 5

LOSSES = {
    "squared_error": SQUARED_ERROR,
    "huber": HUBER,
    "binary_crossentropy": BINARY_CROSSENTROPY,
    "categorical_crossentropy": CATEGORICAL_CROSSENTROPY,
    "poisson": POISSON,
    "absolute_error": ABSOLUTE_ERROR,
}
LOSS_ALIASES = {
    "mse": "squared_error",
    "mean_squared_error": "squared_error",
    "mae": "absolute_error",
    "mean_absolute_error": "absolute_error",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "crossentropy": "categorical_crossentropy",
}

# Slots of the float64 ``loss_param`` array.
LP_HUBER_DELTA = 0      # Huber's threshold between the quadratic and the linear part
LP_OUT_SCALE = 1        # per-sample loss = out_scale * sum over outputs (1/k: mean over outputs)
LP_NORM_BY_WEIGHT = 2   # 1: divide the batch loss by the sum of sample weights; 0: by the row count
LP_PENALTY_PER_SAMPLE = 3  # 1: divide the L1/L2 penalty by the same batch normaliser (scikit-learn)
N_LOSS_PARAM = 4

# Probabilities given to a log are clipped to [EPS_PROB, 1 - EPS_PROB] when the loss is not
# fused with its natural output activation (fused pairs work from logits and need no clip).
# 2**-23 (about 1.2e-7): both bounds are exact in float32, so every dtype clips at the same values.
EPS_PROB = 2.0 ** -23

# --- optimizers ------------------------------------------------------------------------
SGD = 0
ADAM = 1
ADAMW = 2
RMSPROP = 3
ADAGRAD = 4
NADAM = 5
ADAMAX = 6

#: in place of an optimizer: the epoch loop computes the gradient of its one batch (penalty
#: included) into ``grads[0]`` and changes nothing (the full-batch objective of L-BFGS)
NO_STEP = -1

OPTIMIZERS = {"sgd": SGD, "adam": ADAM, "adamw": ADAMW, "rmsprop": RMSPROP, "adagrad": ADAGRAD,
              "nadam": NADAM, "adamax": ADAMAX}
#: number of state vectors (each as long as the parameter vector) an optimizer keeps.
OPTIMIZER_SLOTS = {SGD: 1, ADAM: 2, ADAMW: 2, RMSPROP: 2, ADAGRAD: 1, NADAM: 2, ADAMAX: 2}

# Slots of the float64 ``hyper`` array.
HP_LR = 0
HP_BETA1 = 1
HP_BETA2 = 2
HP_EPS = 3
HP_MOMENTUM = 4
HP_NESTEROV = 5
HP_WEIGHT_DECAY = 6
HP_RHO = 7
HP_CLIPNORM = 8      # global-norm clipping threshold; 0 = off
HP_CLIPVALUE = 9     # element clipping threshold; 0 = off
HP_MOMENTUM_DECAY = 10  # Nadam: mu_t = beta_1 (1 - 0.5 * 0.96 ** (t * momentum_decay))
HP_MU_PRODUCT = 11   # Nadam: mu_1 * ... * mu_t of the steps taken (the epoch loop keeps it)
N_HYPER = 12

# --- metrics computed inside the epoch ----------------------------------------------------
# Slots of the float64 ``stats`` array that a training epoch or an evaluation accumulates.
ST_LOSS = 0          # sum over batches of (batch loss * rows in batch)
ST_ROWS = 1          # rows seen
ST_WEIGHT = 2        # sum of sample weights seen
ST_CORRECT = 3       # weighted count of correct predictions (accuracy)
ST_ABS_ERR = 4       # weighted sum of mean absolute error per row
ST_SQ_ERR = 5        # weighted sum of mean squared error per row
ST_BIN_CORRECT = 6   # weighted sum of the fraction of outputs right at threshold 0.5
ST_LOG_LOSS = 7      # weighted sum of the log loss of the probabilities
ST_PENALTY = 8       # sum over batches of (penalty * rows in batch)
N_STATS = 9          # then three sums per output j at N_STATS + 3 j: w y, w y^2, w (y - a)^2
ST_PER_OUTPUT = 3

# How ``accuracy`` is counted from the output layer.
ACC_SKIP = -1        # no metric sums at all (training loss only)
ACC_NONE = 0         # error sums only, no accuracy
ACC_ARGMAX = 1       # argmax of the outputs equals the label; log loss of softmax rows
ACC_THRESHOLD = 2    # each output > 0.5 equals its 0/1 target; binary log loss

# --- status returned by compiled loops --------------------------------------------------
OK = -1              # any value >= 0 is the index of the batch whose loss was not finite

# --- batch timings of the epoch loop (``clock``, float64 (N_CK, batches)) -------------------
CK_TICKS = 0         # cycle-counter ticks the batch took
CK_WAY = 1           # how it ran: CK_PARALLEL, CK_SERIAL, or CK_UNTIMED (another call was
                     # under way, or the batch before ran the other way)
N_CK = 2
CK_UNTIMED, CK_SERIAL, CK_PARALLEL = -1.0, 0.0, 1.0
CK_PROBE_RUN = 4     # batches in a row run the other way by each probe
CK_PROBE_FIRST = 16  # probe period until both ways have enough timed batches:
CK_MIN_SAMPLES = 8   # this many of each way before the loop compares them, or
CK_MIN_TICKS = 3e7   # ... 2 of them if they took this many ticks (10 ms at 3 GHz) in all

# --- the ways of the epoch loop and their timings (``ways``, float64 (N_WAYS,)) -----------
W_PARALLEL = 0       # 1.0: batches run in parallel (but for probes); the loop writes its last
W_PAR_TICKS = 1      # ticks of the timed parallel batches, summed
W_PAR_N = 2          # how many
W_SER_TICKS = 3      # ticks of the timed serial batches, summed
W_SER_N = 4          # how many
N_WAYS = 5
