"""Input checks shared by every public entry point.

Each check either returns the value converted to what the kernels need, or raises an error
that names the argument, says what was expected and shows what was received.
"""

import numbers

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used for prediction before it has been fitted."""


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite; the model keeps its last finite weights."""


def describe(value):
    """A short description of a received value for error messages."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} (type {type(value).__name__})"


def lookup(table, aliases, name, what):
    """Resolve ``name`` through ``aliases`` then ``table``; a clear ValueError when unknown."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{what} must be a string naming one of {sorted(table)}; "
                        f"received {describe(name)}")
    key = aliases.get(name, name)
    key = aliases.get(key.lower(), key.lower()) if isinstance(key, str) else key
    if key not in table:
        raise ValueError(f"Unknown {what} {name!r}. Expected one of {sorted(table)}.")
    return key, table[key]


def check_int(value, name, low=None, high=None):
    """An integer (not bool) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; received {describe(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {bounds}; received {name}={value}")
    return value


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite real number within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; received {describe(value)}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}"
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        if low is not None and high is not None:
            bounds = f"in {lo}, {hi}"
        elif low is not None:
            bounds = f"{'>' if low_open else '>='} {low}"
        elif high is not None:
            bounds = f"{'<' if high_open else '<='} {high}"
        else:
            bounds = "finite"
        raise ValueError(f"{name} must be a finite number {bounds}; received {name}={value}")
    return value


def _frame_columns(data):
    """``[(column name, dtype)]`` of a pandas (or similar) frame or series, else None."""
    dtypes = getattr(data, "dtypes", None)
    if dtypes is None:
        return None
    if hasattr(dtypes, "items"):
        return list(dtypes.items())
    return [(getattr(data, "name", None), dtypes)]


def _not_numeric_column(data, name):
    """The error for the first column of a frame that is not plain numbers, or None."""
    for column, dtype in _frame_columns(data) or ():
        kind = str(dtype)
        if kind == "category":
            return TypeError(f"{name} must contain only numbers; column {column!r} is "
                             f"categorical. Encode it first (for example "
                             f"sklearn.preprocessing.OneHotEncoder, or its .cat.codes)")
        if kind in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
                    "Float32", "Float64", "boolean"):
            if hasattr(data, "isna") and bool(data[column].isna().any()
                                               if column in getattr(data, "columns", ())
                                               else data.isna().any()):
                return ValueError(f"{name} must contain only finite numbers; column "
                                  f"{column!r} (nullable dtype {kind}) holds missing values "
                                  f"(pd.NA). Fill or drop them first")
        elif kind in ("object", "string", "str") or kind.startswith(("datetime", "timedelta",
                                                                      "period", "interval")):
            return TypeError(f"{name} must contain only numbers; column {column!r} has dtype "
                             f"{kind}")
    return None


def _as_numeric(data, name):
    """np.asarray with a clear TypeError for data that is not numbers."""
    if data is None:
        raise TypeError(f"{name} must be an array-like of numbers; received None")
    if hasattr(data, "tocsr") and hasattr(data, "nnz"):  # a scipy.sparse matrix or array
        raise TypeError(f"{name} must be a dense array-like of numbers here; received a "
                        f"sparse {type(data).__name__} of shape {data.shape}. Pass "
                        f"{name}.toarray()")
    error = _not_numeric_column(data, name)
    if error is not None:
        raise error
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as err:  # ragged lists and the like
        raise ValueError(f"{name} must be a rectangular array-like of numbers; "
                         f"could not convert it: {err}") from None
    if array.dtype.kind not in "biuf":
        if array.dtype.kind == "O":
            try:
                array = array.astype(np.float64)
            except (ValueError, TypeError):
                kinds = sorted({type(v).__name__ for v in array.flat[:1000]})
                raise TypeError(f"{name} must contain only numbers; received an array of dtype "
                                f"object holding {', '.join(kinds) if kinds else 'nothing'}"
                                ) from None
        else:
            raise TypeError(f"{name} must contain only numbers (bool, int or float); "
                            f"received an array of dtype {array.dtype}")
    return array


def check_finite(array, name):
    """ValueError naming the first non-finite entry."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        value = array[tuple(bad)]
        where = ", ".join(str(i) for i in bad)
        raise ValueError(f"{name} must contain only finite numbers; received {value} at "
                         f"index ({where}) (after conversion to {array.dtype})")


def check_matrix(X, name="X", n_features=None, sparse=False):
    """X as a float32 C-contiguous (n_samples, n_features) array, checked; with ``sparse``, a
    scipy.sparse matrix as a checked ``fastbp.sparse.CSR``."""
    if sparse and hasattr(X, "tocsr") and hasattr(X, "nnz"):
        from .sparse import from_scipy
        array = from_scipy(X, name)
        _check_shape(array.shape, name, n_features)
        return array
    array = _as_numeric(X, name)
    if array.ndim != 2:
        hint = (" Reshape 1-D data with .reshape(-1, 1) for a single feature or .reshape(1, -1) "
                "for a single sample." if array.ndim == 1 else "")
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_features); "
                         f"received an array of shape {array.shape}.{hint}")
    _check_shape(array.shape, name, n_features)
    return to_float32(array, name)


def _check_shape(shape, name, n_features):
    """At least one sample and one feature, and the model's width if it has one."""
    if shape[0] == 0:
        raise ValueError(f"{name} must contain at least one sample; received an array of shape "
                         f"{shape}")
    if shape[1] == 0:
        raise ValueError(f"{name} must contain at least one feature; received an array of shape "
                         f"{shape}")
    if n_features is not None and shape[1] != n_features:
        raise ValueError(f"{name} has {shape[1]} features, but the model expects "
                         f"{n_features} (the width it was built with)")


def to_float32(array, name):
    """C-contiguous float32 copy (or view) of ``array``; values beyond float32 are an error."""
    if array.dtype == np.float32 and array.flags.c_contiguous:
        converted = array  # nothing to convert (and np.errstate costs microseconds)
    else:
        with np.errstate(over="ignore"):  # an overflow shows up as inf, reported just below
            converted = np.ascontiguousarray(array, dtype=np.float32)
    check_finite(converted, name)
    return converted


def check_sample_weight(sample_weight, n_samples, name="sample_weight"):
    """float32 (n,) non-negative finite weights with a positive sum; empty (0,) for None."""
    if sample_weight is None:
        return np.zeros(0, np.float32)
    w = _as_numeric(sample_weight, name)
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"{name} must be a 1-D array with one weight per sample ({n_samples}); "
                         f"received an array of shape {w.shape}")
    w = to_float32(w, name)
    if (w < 0).any():
        raise ValueError(f"{name} must be non-negative; received {w[w < 0][0]}")
    if w.sum() <= 0:
        raise ValueError(f"{name} must have a positive sum; received all zeros")
    return w


def check_lengths(X, y, names=("X", "y")):
    """X and y must have the same number of samples."""
    if len(X) != len(y):
        raise ValueError(f"{names[0]} and {names[1]} must have the same number of samples; "
                         f"received {len(X)} and {len(y)}")


def as_targets(y, name="y"):
    """y as a numeric array, at least 1-D and non-empty (its shape is checked by the loss)."""
    array = _as_numeric(y, name)
    if array.ndim == 0 or array.ndim > 2:
        raise ValueError(f"{name} must be a 1-D or 2-D array; received an array of shape "
                         f"{array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one sample; received an array of shape "
                         f"{array.shape}")
    if array.dtype.kind == "f":
        check_finite(array, name)
    return array


def as_labels(y, name="y"):
    """Class labels as a 1-D array of numbers or strings, non-empty and finite."""
    if y is None:
        raise TypeError(f"{name} must be an array-like of targets; received None")
    try:
        array = np.asarray(y)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} must be a rectangular array-like; could not convert it: "
                         f"{err}") from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels; received shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one sample; received an array of shape "
                         f"{array.shape}")
    if array.dtype.kind == "O":
        if not all(isinstance(v, (str, bytes, int, float, np.number, np.str_)) for v in array):
            bad = next(v for v in array if not isinstance(v, (str, bytes, int, float, np.number)))
            raise TypeError(f"{name} must contain only numbers (or string class labels); "
                            f"received an element of type {type(bad).__name__}")
        kinds = {type(v) for v in array}
        if any(issubclass(k, (str, np.str_)) for k in kinds):
            array = array.astype(str)
        else:
            array = array.astype(np.float64)
    if array.dtype.kind not in "biufUS":
        raise TypeError(f"{name} must contain only numbers (or string class labels); "
                        f"received an array of dtype {array.dtype}")
    if array.dtype.kind == "f":
        check_finite(array, name)
    return array


def check_weights(value, shape, name):
    """``value`` as a float32 array of ``shape`` holding finite numbers (weights, gradients),
    or a ValueError naming ``name`` and what it received."""
    array = np.asarray(value)
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; received shape "
                         f"{array.shape}")
    if array.dtype.kind not in "biuf" or not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers; received {describe(array)}")
    return array.astype(np.float32)
