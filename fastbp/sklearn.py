"""Drop-in scikit-learn estimators: ``fastbp.MLPClassifier`` and ``fastbp.MLPRegressor``.

Same parameters, defaults, attributes and stopping rules as scikit-learn's
``sklearn.neural_network`` estimators, trained by fastbp's compiled epochs. Given the same
``random_state`` they start from the same weights (drawn from the same generator in the same
order) and visit the rows in the same order, so they follow scikit-learn's training to float32
precision. Conventions as in scikit-learn: the squared error is halved, the log-loss sums over
outputs, the L2 penalty is ``0.5 * alpha * ||W||^2`` divided by the batch's (weighted) sample
count, weights and intercepts start uniform in ``+-sqrt(6 / (fan_in + fan_out))`` (factor 2 for
logistic), and ``n_iter_no_change`` counts epochs that improve by less than ``tol``.

Beyond scikit-learn, with neutral defaults: ``dropout``, ``class_weight`` (classifier),
per-layer ``activation`` lists (also ``leaky_relu`` and ``elu``), ``solver="adamw"`` with
``weight_decay``, gradient clipping (``clip_norm``, ``clip_value``), ``n_threads`` and
``diagnostics``.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import (
    _check_sample_weight, check_is_fitted, column_or_1d, validate_data,
)

from . import _threads, codes, engine, inference, losses, optimizers, trainer
from ._validation import to_float32
from .layers import Dense, Dropout
from .layout import Layout
from .sparse import CSR, from_scipy, is_sparse

#: scikit-learn's activation names -> fastbp's
#: the sparse formats X may come in (converted to CSR once, never densified)
SPARSE = ["csr", "csc", "coo"]

#: the widest hidden layer accepted (a memory bound that names the argument, not a model size
#: anyone trains on a CPU)
MAX_UNITS = 1 << 24

ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
               "leaky_relu": "leaky_relu", "elu": "elu"}
#: fastbp's output activation -> scikit-learn's ``out_activation_``
OUT_NAMES = {"softmax": "softmax", "sigmoid": "logistic", "linear": "identity",
             "exponential": "exp"}
STOCHASTIC = ("sgd", "adam", "adamw")


class _BaseMLP(BaseEstimator):
    """Shared by MLPClassifier and MLPRegressor."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR, CSC, COO: the first layer reads the stored entries
        return tags

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS)), list, tuple],
        "solver": [StrOptions({"lbfgs", "sgd", "adam", "adamw"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), list, tuple],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
        "clip_value": [Interval(Real, 0, None, closed="neither"), None],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "diagnostics": ["boolean"],
    }

    # -- construction of the network ------------------------------------------------------------
    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if not hasattr(sizes, "__iter__") else list(sizes)
        if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, Integral) for s in sizes):
            raise ValueError(f"hidden_layer_sizes must hold integers (units per hidden layer); "
                             f"got {self.hidden_layer_sizes!r}.")
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        if any(s > MAX_UNITS for s in sizes):
            raise ValueError(f"hidden_layer_sizes must hold at most {MAX_UNITS} units per "
                             f"layer; got {sizes}.")
        acts = self.activation
        acts = [acts] * len(sizes) if isinstance(acts, str) else list(acts)
        if len(acts) != len(sizes) or any(a not in ACTIVATIONS for a in acts):
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or a list with "
                             f"one of them per hidden layer ({len(sizes)}); got {self.activation!r}")
        rates = self.dropout
        rates = [rates] * len(sizes) if isinstance(rates, Real) else list(rates)
        if len(rates) != len(sizes) or any(not 0 <= r < 1 for r in rates):
            raise ValueError(f"dropout must be a rate in [0, 1) or a list with one per hidden "
                             f"layer ({len(sizes)}); got {self.dropout!r}")
        if self.solver == "lbfgs" and any(rates):
            raise ValueError("dropout needs a stochastic solver ('sgd', 'adam', 'adamw'); "
                             "L-BFGS optimises one fixed function")
        return sizes, acts, rates

    def _layers(self, out_units, out_act):
        sizes, acts, rates = self._hidden()
        layers = []
        for i, (size, act, rate) in enumerate(zip(sizes, acts, rates)):
            layers.append(Dense(size, activation=ACTIVATIONS[act], l2=0.5 * self.alpha,
                                name=f"hidden_{i}"))
            if rate:
                layers.append(Dropout(rate))
        layers.append(Dense(out_units, activation=out_act, l2=0.5 * self.alpha, name="output"))
        return layers, acts

    def _initialize(self, n_features, out_units, out_act):
        layers, acts = self._layers(out_units, out_act)
        self._layers_built = layers
        self._layout = lay = Layout(n_features, layers)
        self._params = np.zeros(lay.n_params, np.float32)
        self._aux = np.zeros(0, np.float32)
        units = [n_features] + [layer.units for layer in layers if isinstance(layer, Dense)]
        dense_ops = [row for row in lay.ops if row[codes.OC_KIND] == codes.OP_DENSE]
        for i, row in enumerate(dense_ops):
            fan_in, fan_out = units[i], units[i + 1]
            # scikit-learn scales every layer by the hidden activation (the output layer too;
            # with no hidden layer, by the activation parameter)
            act = acts[min(i, len(acts) - 1)] if acts else self.activation
            logistic = act == "logistic"
            bound = np.sqrt((2.0 if logistic else 6.0) / (fan_in + fan_out))
            p = row[codes.OC_PARAM]
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self._params[p:p + fan_in * fan_out] = coef.ravel()
            self._params[p + fan_in * fan_out:p + (fan_in + 1) * fan_out] = intercept
        self._dropout_seed = int(self._random_state.randint(2 ** 31 - 1)) \
            if any(r[codes.OC_KIND] == codes.OP_DROPOUT for r in lay.ops) else 0
        self.n_layers_ = len(units)
        self.out_activation_ = OUT_NAMES[out_act]
        self.n_iter_ = 0
        self.t_ = 0
        self._link()
        if self.solver in STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _adopt(self, n_features, out_units, out_act):
        """Continue from public fitted attributes alone (``coefs_``, ``intercepts_`` and what
        else scikit-learn's own tests set by hand): the network they describe, their weights
        copied into a parameter vector, every other fitted attribute at its value or its
        fresh one."""
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        keep = {name: getattr(self, name) for name in (
            "n_iter_", "t_", "loss_curve_", "best_loss_", "_no_improvement_count",
            "validation_scores_", "best_validation_score_") if hasattr(self, name)}
        self._initialize(n_features, out_units, out_act)
        self._random_state = check_random_state(self.random_state)  # as if nothing was drawn
        self.coefs_, self.intercepts_ = coefs, intercepts
        self._sync()
        self.__dict__.update(keep)

    def _link(self):
        """Make ``coefs_`` and ``intercepts_`` views into the flat parameter vector."""
        coefs, intercepts = [], []
        for row in self._layout.ops:
            if row[codes.OC_KIND] != codes.OP_DENSE:
                continue
            n_in, n_out, p = row[codes.OC_IN], row[codes.OC_OUT], row[codes.OC_PARAM]
            coefs.append(self._params[p:p + n_in * n_out].reshape(n_in, n_out))
            intercepts.append(self._params[p + n_in * n_out:p + (n_in + 1) * n_out])
        self.coefs_, self.intercepts_ = coefs, intercepts

    def _publish(self, dtype):
        """``coefs_`` and ``intercepts_`` in the training data's float dtype, as scikit-learn
        gives them: for float32 data, views of the float32 parameters the kernels train
        (writable: an in-place edit changes the model); for float64 data, read-only float64
        copies of them (assign new arrays to change the weights; an in-place edit raises
        rather than being lost)."""
        self._link()
        self._published = None
        if dtype == np.float64:
            def frozen(a):
                copy = a.astype(np.float64)
                copy.flags.writeable = False
                return copy
            self.coefs_ = [frozen(c) for c in self.coefs_]
            self.intercepts_ = [frozen(b) for b in self.intercepts_]
            self._published = (list(self.coefs_), list(self.intercepts_))

    def _sync(self):
        """Read ``coefs_`` / ``intercepts_`` back into the parameter vector if they were
        replaced (by the user, for a warm start, or by unpickling)."""
        linked = all(np.shares_memory(c, self._params) for c in self.coefs_) and \
            all(np.shares_memory(b, self._params) for b in self.intercepts_)
        if linked:
            return
        published = getattr(self, "_published", None)
        if published is not None and _same_objects(published[0], self.coefs_) and \
                _same_objects(published[1], self.intercepts_):
            return  # the read-only copies made at the end of the fit: nothing to read back
        self._published = None
        views_c = [c for c in self.coefs_]
        views_b = [b for b in self.intercepts_]
        self._link()
        for name, new, views in (("coefs_", views_c, self.coefs_),
                                 ("intercepts_", views_b, self.intercepts_)):
            if len(new) != len(views) or any(np.shape(a) != v.shape for a, v in zip(new, views)):
                raise ValueError(f"{name} must keep the shapes "
                                 f"{[v.shape for v in views]}; received "
                                 f"{[np.shape(a) for a in new]}")
            for a, v in zip(new, views):
                v[...] = a

    # -- data -----------------------------------------------------------------------------
    def _validate_X(self, X, reset):
        """X checked as scikit-learn checks it: a float64 or float32 array (the kernels then
        take it as float32; outputs come back in its dtype, as scikit-learn's do)."""
        if not reset and _passes_checks(self, X):
            return X
        return validate_data(self, X, reset=reset, dtype=(np.float64, np.float32),
                             accept_sparse=SPARSE)

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, incremental=False, before=None):
        """Fit, all or nothing: if anything fails (bad input, memory, an interrupt) the
        estimator's attributes are put back as they were, so a failed refit cannot leave new
        classes beside old weights. (Weights trained in place by a warm start keep their last
        finite values.) ``before``: a first step inside the same transaction."""
        saved = dict(self.__dict__)
        try:
            if before is not None:
                before()
            return self._fit_checked(X, y, sample_weight, incremental)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit_checked(self, X, y, sample_weight, incremental):
        self._validate_params()
        self._hidden()  # check the per-layer settings before anything changes
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y, labels, class_index = self._validate_input(X, y, incremental, reset=first_pass)
        sw = np.zeros(0, np.float32)
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X).astype(np.float32)
        sw = self._class_weights(sw, class_index)
        self._random_state = check_random_state(self.random_state)
        out_units, out_act = self._output(Y, labels)
        if first_pass:
            self._initialize(X.shape[1], out_units, out_act)
        elif not hasattr(self, "_params"):  # fitted attributes set by hand
            self._adopt(X.shape[1], out_units, out_act)
        else:
            self._sync()
        data = (X, Y, labels, sw)
        with _threads.limit(self.n_threads):
            if self.solver == "lbfgs":
                self._fit_lbfgs(data)
            else:
                self._fit_stochastic(data, class_index, incremental)
        self._publish(self._fit_dtype)
        return self

    def _class_weights(self, sw, class_index):
        return sw

    def _loss(self):
        loss = self._loss_object()
        param = loss.loss_param(1)
        param[codes.LP_OUT_SCALE] = 0.5 if loss.code == codes.SQUARED_ERROR else 1.0
        param[codes.LP_NORM_BY_WEIGHT] = 1.0
        param[codes.LP_PENALTY_PER_SAMPLE] = 1.0
        return loss.code, param

    def _reported(self, stats):
        """scikit-learn's loss from an epoch's sums: its squared error averages over outputs."""
        k = self.n_outputs_ if self._loss_object().code == codes.SQUARED_ERROR else 1
        pen = stats[codes.ST_PENALTY]
        return ((stats[codes.ST_LOSS] - pen) / k + pen) / stats[codes.ST_ROWS]

    def _make_optimizer(self):
        clip = {"global_clipnorm": self.clip_norm, "clipvalue": self.clip_value}
        if self.solver == "sgd":
            return optimizers.SGD(self.learning_rate_init, momentum=self.momentum,
                                  nesterov=self.nesterovs_momentum, **clip)
        if self.solver == "adamw":
            return optimizers.AdamW(self.learning_rate_init, weight_decay=self.weight_decay,
                                    beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                                    **clip)
        return optimizers.Adam(self.learning_rate_init, beta_1=self.beta_1, beta_2=self.beta_2,
                               epsilon=self.epsilon, **clip)

    def _fit_stochastic(self, data, class_index, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
            self._lr = self.learning_rate_init
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, Y, labels, sw = data
        val = None
        if self.early_stopping:
            # stratified as scikit-learn does: for one output only, by its (n, 1) boolean
            # column (the same split; its errors name the classes 'True' and 'False')
            stratify = (class_index.astype(bool).reshape(-1, 1)
                        if self._is_classifier() and self.n_outputs_ == 1 else None)
            train_rows, val_rows = train_test_split(
                np.arange(len(X)), random_state=self._random_state,
                test_size=self.validation_fraction, stratify=stratify)
            if len(val_rows) < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            val = (X.take(val_rows) if isinstance(X, CSR) else X[val_rows],
                   self._y_true(val_rows), sw[val_rows] if len(sw) else None)
            data = (X.take(train_rows) if isinstance(X, CSR) else X[train_rows],
                    *(a[train_rows] if a.shape[0] else a for a in data[1:]))
            self._best = (self._params.copy(),)
        n = len(data[0])
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))
        loss_code, loss_param = self._loss()
        runner = trainer.EpochRunner(engine.get("numba"), self._layout, self._params, self._aux,
                                     self._optimizer, loss_code, loss_param, codes.ACC_SKIP,
                                     data, batch_size, self._dropout_seed, self.diagnostics)
        previous = getattr(self, "_scheduler", None)
        if incremental and previous is not None and previous.key == runner.scheduler.key:
            runner.scheduler = previous  # partial_fit after partial_fit: keep its timings
        self._scheduler = runner.scheduler
        sample_idx = np.arange(n, dtype=np.int64)
        self.n_iter_ = 0
        if self.diagnostics and not hasattr(self, "diagnostics_"):
            self.diagnostics_ = {}
        for _ in range(self.max_iter):
            if self.shuffle:
                # scikit-learn's shuffle(sample_idx) returns sample_idx[p], p = arange(n)
                # shuffled by the same generator: shuffling in place draws the same numbers and
                # gives the same order, without its checks (1 ms an epoch on 40,000 rows)
                self._random_state.shuffle(sample_idx)
            self._optimizer.learning_rate = self._lr
            stats = runner.run(np.ascontiguousarray(sample_idx, dtype=np.int64))
            if stats is None and not self.early_stopping:
                raise ValueError("Solver produced non-finite parameter weights. The input data "
                                 "may contain large values and need to be preprocessed. "
                                 + runner.failure_message(self.n_iter_, self.max_iter))
            self.n_iter_ += 1
            if stats is None:  # diverged, with early stopping: as scikit-learn (#29504)
                self._diverged(val, n)
                break
            self.loss_ = float(self._reported(stats))
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            if self.diagnostics:
                logs = trainer.diagnostics_logs(self._layers_built, self._layout, self._params,
                                                runner.buf["diag"].sum(axis=0), runner.steps)
                for key, value in logs.items():
                    self.diagnostics_.setdefault(key, []).append(float(value))
            self._update_no_improvement_count(val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self._trigger_stopping(msg):
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              f"reached and the optimization hasn't converged yet.",
                              ConvergenceWarning)
        if self.early_stopping:
            self._params[:] = self._best[0]

    def _diverged(self, val, n):
        """The rest of a fit whose loss became non-finite, with early stopping, as
        scikit-learn runs it: its weights stay NaN to ``max_iter`` (or until its stopping rule
        ends the fit), every epoch's loss is NaN and its validation score that of NaN weights
        (NaN for a regressor; for a classifier, the accuracy of always the first class); the
        best weights are restored at the end. fastbp does not train on NaN weights: it
        records those epochs as such."""
        X_val, y_val, sw_val = val
        score = self._score_of_nan_weights(y_val, sw_val)
        while True:
            self.loss_ = float("nan")
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            self._update_no_improvement_count(val, score=score)
            if self._no_improvement_count > self.n_iter_no_change:
                if self._trigger_stopping(f"Validation score did not improve more than "
                                          f"tol={self.tol:f} for {self.n_iter_no_change} "
                                          f"consecutive epochs."):
                    return
                self._no_improvement_count = 0
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              f"reached and the optimization hasn't converged yet.",
                              ConvergenceWarning)
                return
            self.n_iter_ += 1

    def _trigger_stopping(self, msg):
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._lr /= 5.0
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._lr)
        return False

    def _update_no_improvement_count(self, val, score=None):
        if val is not None:
            X_val, y_val, sw_val = val
            score = self._score_arrays(X_val, y_val, sw_val) if score is None else score
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best = (self._params.copy(),)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _fit_lbfgs(self, data):
        X, Y, labels, sw = data
        lay = self._layout
        backend = engine.get("numba")
        loss_code, loss_param = self._loss()
        full_batch = trainer.FullBatchObjective(backend, lay, self._params, self._aux, loss_code,
                                                loss_param, data)
        exact = []  # the float64 reference, made when first needed

        def reference(packed):
            if not exact:
                exact.append(trainer.FullBatchObjective(
                    engine.get("numpy"), lay, self._params, self._aux, loss_code, loss_param,
                    data, dtype=np.float64))
            value, grads = exact[0](packed)
            return float(value), np.array(grads, np.float64)

        def objective(packed):
            value, grads = full_batch(packed)
            if not (np.isfinite(value) and np.isfinite(grads).all()):
                # a trial point where float32 overflows (a large exponent, a huge logit) but
                # scikit-learn's float64 does not: that point in float64, so that the line
                # search sees the value scikit-learn's would and backs off from it
                return reference(packed)
            return float(value), grads.astype(np.float64)

        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        result = scipy.optimize.minimize(objective, self._params.astype(np.float64),
                                         method="L-BFGS-B", jac=True, options=options)
        n_iter = result.nit
        _, grads = objective(result.x)
        if result.status in (0, 2) and np.abs(grads).max() > self.tol and \
                n_iter < self.max_iter and result.nfev < self.max_fun:
            # scipy stopped before the gradient met tol, because the loss changed by less
            # than float32 resolves (status 0) or its line search found no decrease float32
            # could see (status 2): the rest of the way in float64 on the NumPy reference,
            # as far as scikit-learn's float64 would go
            # (no stop on the loss's relative change: it restarts without the curvature the
            # first run had gathered, and would stop at once on the same criterion)
            result = scipy.optimize.minimize(
                reference, result.x, method="L-BFGS-B", jac=True,
                options={**options, "maxiter": self.max_iter - n_iter,
                         "maxfun": self.max_fun - result.nfev, "ftol": 0.0})
            n_iter += result.nit
            result.nit = n_iter
            _, grads = reference(result.x)
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        if result.status == 0 and np.abs(grads).max() > self.tol:
            warnings.warn(f"lbfgs stopped after {self.n_iter_} iteration(s) with a gradient "
                          f"component of {np.abs(grads).max():.3g}, above tol={self.tol} "
                          f"({result.message})", ConvergenceWarning)
        self._params[:] = result.x
        value, _ = objective(result.x)
        norm = float(len(X)) if len(sw) == 0 else float(sw.sum())
        pen = backend.penalty(self._params, lay.runs, 1.0 / norm)
        k = self.n_outputs_ if loss_code == codes.SQUARED_ERROR else 1
        self.loss_ = float((value - pen) / k + pen)

    # -- prediction --------------------------------------------------------------------------
    def _forward(self, X):
        """Validated X -> ``(outputs float32 (n_samples, n_outputs), dtype)``: the dtype the
        results go back in, X's float dtype after scikit-learn's checks (float32 for float32
        input, else float64), as scikit-learn's estimators return them."""
        check_is_fitted(self)
        self._sync()
        X = self._validate_X(X, reset=False)
        with _threads.limit(self.n_threads):
            out = self._outputs(_as_float32(X))
        return out, (np.float32 if X.dtype == np.float32 else np.float64)

    def _outputs(self, X):
        """Outputs for an already checked float32 X (or ``CSR``)."""
        return inference.predict(engine.get("numba"), self._layout, self._params, self._aux,
                                 X if isinstance(X, CSR) else np.ascontiguousarray(X))

    def to_onnx(self, path=None):
        """The fitted network as an ONNX graph (``fastbp.export.to_onnx``): float32 rows
        ``input`` in, ``predict_proba``'s ``probabilities`` (classifier) or ``predict``'s
        ``predictions`` (regressor) out; written to ``path`` when given. Needs
        ``pip install "fastbp[onnx]"``."""
        from .export import to_onnx
        return to_onnx(self, path)

    def _check_solver(self):
        if self.solver not in STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_params" in state and "coefs_" in state:
            # writable copies, even when unpickled from a read-only memory map: the kernels
            # are compiled for writable arrays
            self._params = np.array(self._params)
            self._aux = np.array(self._aux)
            for name in ("ops", "opf", "runs"):
                setattr(self._layout, name, np.array(getattr(self._layout, name)))
            self._sync()
            self._publish(getattr(self, "_fit_dtype", np.float32))


def _same_objects(a, b):
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _passes_checks(est, X):
    """Whether X is an array scikit-learn's ``validate_data`` (``reset=False``) would pass as
    it is: a float32 or float64 NumPy array, 2-D, with rows, the fitted number of features,
    finite, for an estimator fitted without feature names. Such X skip it (60 us, three times
    the rest of a one-row prediction); any other X goes through it, errors and warnings
    included. A finite sum means finite entries: a NaN or an infinity in X makes it NaN or
    infinite (and an overflowing sum of finite entries only sends X the long way)."""
    return (type(X) is np.ndarray and X.ndim == 2 and X.dtype in (np.float32, np.float64)
            and X.shape[0] > 0 and X.shape[1] == est.n_features_in_
            and not hasattr(est, "feature_names_in_") and bool(np.isfinite(X.sum())))


def _as_float32(X):
    """float32 C-contiguous X, or a sparse X as a ``CSR`` (already checked for NaN by
    scikit-learn's validation; values beyond float32's range are still caught)."""
    if is_sparse(X):
        X = from_scipy(X, "X")
        return X
    if X.dtype == np.float32 and X.flags.c_contiguous:
        return X
    try:
        return to_float32(X, "X")
    except ValueError as error:  # finite in float64 (scikit-learn checked), infinite in float32
        # scikit-learn's own words for data too large to train on, then the reason
        raise ValueError(f"Solver produced non-finite parameter weights. The input data may "
                         f"contain large values and need to be preprocessed. (fastbp computes "
                         f"in float32, whose largest value is about 3.4e38: {error})") from None


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for ``sklearn.neural_network.MLPClassifier``.

    Parameters are scikit-learn's (same names, meanings and defaults), plus:

    dropout : float or list of float, default=0.0
        Dropout rate after every hidden layer (or one rate per hidden layer).
    class_weight : dict, "balanced" or None, default=None
        Weights multiplying each sample's weight by its class's.
    weight_decay : float, default=0.0
        Decoupled weight decay of ``solver="adamw"``.
    clip_norm, clip_value : float or None
        Clip the gradient's global L2 norm / each of its components.
    n_threads : int or None
        Threads for training and prediction (None: Numba's default).
    diagnostics : bool, default=False
        Record per layer and epoch the gradient norm, weight norm, update ratio and dead-unit
        fraction in ``diagnostics_``.

    ``activation`` may also be a list with one activation per hidden layer, and takes
    ``leaky_relu`` and ``elu`` too; ``solver`` also takes ``"adamw"``.
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, class_weight=None, weight_decay=0.0, clip_norm=None,
                 clip_value=None, n_threads=None, diagnostics=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.class_weight = class_weight
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.n_threads = n_threads
        self.diagnostics = diagnostics

    def _is_classifier(self):
        return True

    def _loss_object(self):
        if self.n_outputs_ > 1 and self._label_binarizer.y_type_ == "multiclass":
            return losses.CategoricalCrossentropy()
        return losses.BinaryCrossentropy()

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                             accept_sparse=SPARSE,
                             reset=reset)
        self._fit_dtype = np.float32 if X.dtype == np.float32 else np.float64
        X = _as_float32(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        new_classes = not hasattr(self, "classes_") or (not self.warm_start and not incremental)
        if new_classes:
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        self._y_raw = y
        kind = self._label_binarizer.y_type_
        k = len(self.classes_)
        if y.ndim == 1 and (kind == "multiclass" and k > 2 or kind == "binary" and k == 2):
            # class indices straight from the labels: LabelBinarizer's checks and one-hot rows
            # cost 0.5 ms a call on 455 rows, 1.5 times a whole epoch of the breast-cancer data
            index = self._class_index(y, checked=new_classes)
            if index is not None:
                if kind == "multiclass":
                    self.n_outputs_ = k
                    return X, np.zeros((0, k), np.float32), index, index
                self.n_outputs_ = 1
                Y = index.astype(np.float32).reshape(-1, 1)  # LabelBinarizer's 0/1 column
                return X, Y, np.zeros(0, np.int64), index
        if not new_classes:
            classes = unique_labels(y)
            if self.warm_start and set(classes) != set(self.classes_) or \
                    len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                self._classes_error(classes)
        binary = self._label_binarizer.transform(y)
        self.n_outputs_ = binary.shape[1]
        if self._label_binarizer.y_type_ == "multiclass" and self.n_outputs_ > 1:
            labels = binary.argmax(axis=1).astype(np.int64)
            return X, np.zeros((0, self.n_outputs_), np.float32), labels, labels
        Y = np.ascontiguousarray(binary, dtype=np.float32)
        class_index = Y[:, 0].astype(np.int64) if self.n_outputs_ == 1 else None
        return X, Y, np.zeros(0, np.int64), class_index

    def _class_index(self, y, checked):
        """Index in ``classes_`` of every label of 1-D ``y``, int64 (n,); None when ``y``'s
        labels do not compare with ``classes_`` (the general path then gives scikit-learn's
        error). Unless ``checked`` (``classes_`` just taken from ``y``), a label outside
        ``classes_`` raises scikit-learn's error, and so does, under ``warm_start``, a class
        of ``classes_`` missing from ``y``."""
        classes = self.classes_
        k = len(classes)
        if classes.dtype.kind in "iu" and classes[0] == 0 and classes[-1] == k - 1 and \
                y.dtype.kind in "iu" and y.min() >= 0 and y.max() < k:
            index = y.astype(np.int64)  # classes 0..k-1 (sorted, distinct): a label is its index
        else:
            try:
                index = np.minimum(np.searchsorted(classes, y), k - 1)
                unseen = (classes[index] != y).any()
            except TypeError:
                return None
            if unseen and checked:
                return None
            if unseen:
                self._classes_error(unique_labels(y))
            index = index.astype(np.int64)
        if not checked and self.warm_start and (np.bincount(index, minlength=k) == 0).any():
            self._classes_error(unique_labels(y))
        return index

    def _classes_error(self, classes):
        if self.warm_start:
            raise ValueError(f"warm_start can only be used where `y` has the same classes as in "
                             f"the previous call to fit. Previously got {self.classes_}, `y` "
                             f"has {classes}")
        raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                         f"{self.classes_}. 'y' has {classes}.")

    def _y_true(self, rows):
        return self._y_raw[rows]

    def _output(self, Y, labels):
        if labels.shape[0] > 0:
            return self.n_outputs_, "softmax"
        return self.n_outputs_, "sigmoid"

    def _class_weights(self, sw, class_index):
        if self.class_weight is None:
            return sw
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ValueError("class_weight is not supported for multilabel targets")
        if class_index is None:
            class_index = np.zeros(0, np.int64)
        from .data import class_sample_weights
        per_sample = class_sample_weights(self.class_weight, class_index, self.classes_,
                                          "class_weight").astype(np.float32)
        return per_sample if sw.shape[0] == 0 else sw * per_sample

    def _score_arrays(self, X, y, sample_weight):
        return accuracy_score(y, self._predict_arrays(X), sample_weight=sample_weight)

    def _score_of_nan_weights(self, y, sample_weight):
        """scikit-learn's validation score of NaN weights: every row gets the first class."""
        first = np.asarray(self.classes_)[0]
        pred = np.full(len(y), first, dtype=np.asarray(self.classes_).dtype)
        if np.ndim(y) == 2:  # multilabel
            pred = np.zeros_like(np.asarray(y))
        return float(accuracy_score(y, pred, sample_weight=sample_weight))

    def _predict_arrays(self, X):
        return self._labels(self._outputs(X))

    def _labels(self, out):
        """Class labels of outputs (n_samples, n_outputs), as ``LabelBinarizer.inverse_transform``
        gives them: the most probable class; for one sigmoid output, the second class where it
        exceeds 0.5 (the binarizer's threshold); for multilabel, the 0/1 indicator matrix. Done
        here for the first two, in a few microseconds instead of the binarizer's 30."""
        kind = self._label_binarizer.y_type_
        if kind == "multiclass" and self.n_outputs_ > 2:
            return self.classes_.take(out.argmax(axis=1), mode="clip")
        if kind == "binary" and self.n_outputs_ == 1 and len(self.classes_) == 2:
            return self.classes_[(out[:, 0] > 0.5).astype(np.intp)]
        return self._label_binarizer.inverse_transform(out.ravel() if self.n_outputs_ == 1
                                                        else out)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X (n_samples, n_features) and class labels y, as scikit-learn's."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over the given data; ``classes`` is required on the first call."""
        def first_call():
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, before=first_call)

    def predict(self, X):
        """Predicted class labels, shape (n_samples,) or (n_samples, n_classes) (multilabel)."""
        return self._labels(self._forward(X)[0])

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), ordered as ``classes_``, in X's float
        dtype (float32 for float32 input, else float64)."""
        out, dtype = self._forward(X)
        if self.n_outputs_ == 1:
            out = out.ravel().astype(np.float64)
            out = np.vstack([1 - out, out]).T  # 1 - p in float64, as scikit-learn's
        return out.astype(dtype, copy=False)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``; a probability that underflowed to 0 gives -inf, without
        a warning (scikit-learn's float64 rarely underflows; fastbp computes in float32)."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for ``sklearn.neural_network.MLPRegressor``.

    Parameters are scikit-learn's (``loss`` is ``"squared_error"`` or ``"poisson"``, the latter
    with an exponential output), plus ``dropout``, ``weight_decay``, ``clip_norm``,
    ``clip_value``, ``n_threads`` and ``diagnostics`` as in ``MLPClassifier``.
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, weight_decay=0.0, clip_norm=None, clip_value=None, n_threads=None,
                 diagnostics=False):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.n_threads = n_threads
        self.diagnostics = diagnostics

    def _is_classifier(self):
        return False

    def _loss_object(self):
        return losses.Poisson() if self.loss == "poisson" else losses.SquaredError()

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset,
                             accept_sparse=SPARSE)
        self._fit_dtype = np.float32 if X.dtype == np.float32 else np.float64
        X = _as_float32(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson "
                             "regression.")
        Y = to_float32(y.reshape(len(y), -1), "y")
        self.n_outputs_ = Y.shape[1]
        self._y_raw = y
        return X, Y, np.zeros(0, np.int64), None

    def _y_true(self, rows):
        return self._y_raw[rows]

    def _output(self, Y, labels):
        return self.n_outputs_, "exponential" if self.loss == "poisson" else "linear"

    def _score_arrays(self, X, y, sample_weight):
        return r2_score(y, self._predict_arrays(X), sample_weight=sample_weight)

    def _score_of_nan_weights(self, y, sample_weight):
        """scikit-learn's validation score of NaN weights: NaN (non-finite predictions)."""
        return float("nan")

    def _predict_arrays(self, X):
        out = self._outputs(X)
        return out.ravel() if self.n_outputs_ == 1 else out

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X (n_samples, n_features) and targets y, as scikit-learn's."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over the given data."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_outputs), in X's float
        dtype (float32 for float32 input, else float64)."""
        out, dtype = self._forward(X)
        out = out.astype(dtype, copy=False)
        return out.ravel() if self.n_outputs_ == 1 else out
