"""The model file: plain arrays and JSON metadata in a zip (``.npz``), read with bounded memory.

A file holds four entries, readable with ``numpy.load(path, allow_pickle=False)``:

* ``meta``: a JSON document (as a 0-d unicode array) with the format name and version, the
  architecture, the input width, the compile settings, the optimizer's counters, the class
  labels, the dropout seed and the random generator's state;
* ``params``: the flat float32 parameter vector (bit-exact);
* ``aux``: batch-normalisation running statistics (float32);
* ``optimizer_state``: the optimizer's state vectors (float32, (slots, P), or (0, 0)).

``read`` trusts nothing in the file. Before anything is allocated beyond the metadata (at most
``META_BYTES``) it checks the zip's entries (names, stored uncompressed, sizes within the
file), parses and checks every metadata field, works out from the architecture how many
numbers each array must hold, and compares that with each entry's ``.npy`` header and size:
it never allocates more than the file's own bytes. Then every number is checked (finite
weights, non-negative variances and second moments, counters in range). Any failure is a
``ModelFileError`` naming what was expected and what was found.

This module knows the format, not the Model API: ``fastbp.model.load_model`` builds the model.
"""

import json
import math
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from . import codes

FORMAT = "fastbp-model"
VERSION = 1
ENTRIES = ("meta", "params", "aux", "optimizer_state")
#: the largest metadata entry read (its JSON is a few kilobytes for any real model)
META_BYTES = 1 << 20
#: the largest width of a layer, or of the input, that a file may declare
MAX_WIDTH = 1 << 24
#: counters above this are not counts of anything a model did
MAX_COUNT = 1 << 62


class ModelFileError(ValueError):
    """The file is not a fastbp model, or it is damaged."""


@dataclass
class ModelFile:
    """A checked model file: metadata, the layers it describes, and its arrays."""

    meta: dict
    layers: list
    params: np.ndarray
    aux: np.ndarray
    state: np.ndarray


def write(path, meta, params, aux, state):
    """Write a model file (``path``: a file name, ``.npz`` appended if missing, or a file
    object)."""
    np.savez(path, meta=np.array(json.dumps(meta)), params=params, aux=aux,
             optimizer_state=state)


def _damaged(path, why):
    return ModelFileError(f"{path!s} is not a readable fastbp model file: {why}")


# --- the zip and its entries ----------------------------------------------------------------

def _entries(archive, path):
    """``{name: ZipInfo}`` of the four entries, each once, stored uncompressed."""
    infos = {}
    for info in archive.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name in infos:
            raise _damaged(path, f"entry {info.filename!r} appears twice")
        infos[name] = info
    missing = set(ENTRIES) - set(infos)
    if missing:
        raise _damaged(path, f"missing entries {sorted(missing)}")
    for name in ENTRIES:
        info = infos[name]
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise _damaged(path, f"entry {name!r} is compressed; fastbp writes its arrays "
                                 f"uncompressed")
    return infos


def _open_array(archive, info, path):
    """Open an ``.npy`` entry and read its header: ``(stream, dtype, shape, payload bytes)``;
    nothing but the header is read."""
    stream = archive.open(info)
    try:
        major, _ = np.lib.format.read_magic(stream)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif major in (2, 3):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy version {major}")
    except Exception as err:  # noqa: BLE001  (numpy parses the header with Python's
        stream.close()         # tokenizer: any of its errors means a damaged header)
        raise _damaged(path, f"entry {info.filename!r} is not a NumPy array "
                             f"({type(err).__name__}: {err})") from None
    if fortran or dtype.hasobject or any(extent < 0 for extent in shape):
        stream.close()
        raise _damaged(path, f"entry {info.filename!r} holds an array of dtype {dtype} in "
                             f"{'Fortran' if fortran else 'C'} order; expected plain numbers")
    header = stream.tell()
    count = math.prod(shape)
    if header + count * dtype.itemsize != info.file_size:
        stream.close()
        raise _damaged(path, f"entry {info.filename!r} declares shape {shape} of {dtype} "
                             f"({count * dtype.itemsize} bytes) but holds "
                             f"{info.file_size - header}")
    return stream, dtype, shape, count * dtype.itemsize


def _read_payload(stream, dtype, shape, path, name):
    out = np.empty(shape, dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))
    done = 0
    while done < len(view):
        got = stream.readinto(view[done:done + (1 << 24)])
        if not got:
            raise _damaged(path, f"entry {name!r} ends early")
        done += got
    return out


def _read_array(archive, info, path, name, expected_shape):
    """The float32 array of entry ``name``, which must have ``expected_shape``."""
    stream, dtype, shape, _ = _open_array(archive, info, path)
    with stream:
        if dtype != np.float32 or tuple(shape) != tuple(expected_shape):
            raise _damaged(path, f"expected {name} of shape {tuple(expected_shape)} and dtype "
                                 f"float32 for this architecture; found shape {tuple(shape)} "
                                 f"and dtype {dtype}")
        return _read_payload(stream, dtype, shape, path, name).astype(np.float32, copy=False)


def _read_meta(archive, info, path):
    if info.file_size > META_BYTES:
        raise _damaged(path, f"its metadata entry holds {info.file_size} bytes; expected at "
                             f"most {META_BYTES}")
    stream, dtype, shape, _ = _open_array(archive, info, path)
    with stream:
        if dtype.kind != "U" or shape != ():
            raise _damaged(path, f"its metadata must be one string; found an array of shape "
                                 f"{shape} and dtype {dtype}")
        text = str(_read_payload(stream, dtype, shape, path, "meta")[()])
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise _damaged(path, f"its metadata is not valid JSON ({type(err).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _damaged(path, f"expected format {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise ModelFileError(f"{path!s} is a fastbp model of format version "
                             f"{meta.get('version')!r}; this fastbp reads version {VERSION}")
    return meta


# --- the metadata ---------------------------------------------------------------------------

def _int(value, what, low, high, path, none=False):
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _damaged(path, f"{what} must be an integer in [{low}, {high}]; found {value!r}")
    return value


def _checked_meta(meta, path):
    """The metadata's fields, type- and range-checked (``KeyError`` for a missing one)."""
    config = meta["config"]
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise _damaged(path, f"config must be an object with a list of layers; found "
                             f"{type(config).__name__}")
    if not all(isinstance(c, dict) for c in config["layers"]) or len(config["layers"]) > 10_000:
        raise _damaged(path, "config.layers must be a list of layer objects")
    if not (config.get("name") is None or isinstance(config["name"], str)):
        raise _damaged(path, f"config.name must be a string or null; found {config['name']!r}")
    _int(config.get("seed"), "config.seed", 0, MAX_COUNT, path, none=True)
    _int(meta["n_features"], "n_features", 1, MAX_WIDTH, path, none=True)
    for key in ("optimizer_iterations", "optimizer_epochs"):
        _int(meta[key], key, 0, MAX_COUNT, path)
    _int(meta["dropout_seed"], "dropout_seed", 0, MAX_COUNT, path,
         none=meta["n_features"] is None)  # a built model has one
    factor = meta["lr_factor"]
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or \
            not math.isfinite(factor) or factor <= 0:
        raise _damaged(path, f"lr_factor must be a finite number > 0; found {factor!r}")
    classes = meta["classes"]
    if classes is not None and not (
            isinstance(classes, list) and len(classes) <= MAX_WIDTH
            and all(isinstance(c, (str, int, float)) and not isinstance(c, bool)
                    for c in classes)):
        raise _damaged(path, "classes must be null or a list of numbers or strings")
    if meta["compile"] is not None:
        c = meta["compile"]
        if not isinstance(c, dict) or not isinstance(c.get("metrics"), list):
            raise _damaged(path, "compile must be null or an object with a list of metrics")
    if not isinstance(meta["rng_state"], dict):
        raise _damaged(path, "rng_state must be an object")
    return meta


def _layers(meta, path):
    """The layers the metadata describes, and the sizes of the arrays they imply:
    ``(layers, n_params, n_aux)`` (sizes None for an unbuilt model)."""
    from .layers import Dense, from_config
    from .layout import Layout
    layers = []
    for i, layer_config in enumerate(meta["config"]["layers"]):
        layer = from_config(layer_config)
        if isinstance(layer, Dense) and layer.units > MAX_WIDTH:
            raise _damaged(path, f"layer {i} declares {layer.units} units; at most "
                                 f"{MAX_WIDTH} are read")
        layers.append(layer)
    if meta["n_features"] is None:
        return layers, None, None
    layout = Layout(meta["n_features"], layers)
    return layers, layout.n_params, layout.n_aux


# --- the numbers ----------------------------------------------------------------------------

def _check_numbers(model_file, path):
    """Finite weights and state; variances and second moments >= 0; batch-norm variances."""
    from .layers import BatchNormalization
    if not np.isfinite(model_file.params).all():
        raise _damaged(path, "its parameters hold NaN or infinite values")
    if not np.isfinite(model_file.aux).all():
        raise _damaged(path, "its batch-normalisation statistics hold NaN or infinite values")
    offset = 0
    width = model_file.meta["n_features"]
    for layer in model_file.layers:
        if isinstance(layer, BatchNormalization):
            if (model_file.aux[offset + width:offset + 2 * width] < 0).any():
                raise _damaged(path, "a batch-normalisation moving variance is negative")
            offset += 2 * width
        width = layer.output_width(width) if hasattr(layer, "output_width") else width
    state = model_file.state
    if state.size:
        if not np.isfinite(state).all():
            raise _damaged(path, "its optimizer state holds NaN or infinite values")
        name = model_file.meta["compile"]["optimizer"].get("name")
        slot = {"adam": 1, "adamw": 1, "nadam": 1, "adamax": 1, "rmsprop": 0,
                "adagrad": 0}.get(name)
        if slot is not None and (state[slot] < 0).any():
            raise _damaged(path, f"its optimizer state holds negative {name} squared-gradient "
                                 f"averages (or gradient maxima)")


def read(path):
    """Read and check a model file (a file name or a binary file object).

    Returns
    -------
    ModelFile

    Raises
    ------
    ModelFileError
        If the file is not a fastbp model, or is damaged (anything found is named).
    FileNotFoundError
        If there is no such file.
    """
    if isinstance(path, (str, os.PathLike)):
        with open(path, "rb") as handle:  # FileNotFoundError as is
            return _read(handle, path)
    return _read(path, path)


def _read(handle, path):
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        try:
            handle.seek(0)
            if handle.read(6) == b"\x93NUMPY":
                raise _damaged(path, "it holds a single array, not a fastbp archive") from None
        except (OSError, AttributeError):
            pass
        raise _damaged(path, f"{type(err).__name__}: {err}") from None
    try:
        with archive:
            infos = _entries(archive, path)
            meta = _checked_meta(_read_meta(archive, infos["meta"], path), path)
            layers, n_params, n_aux = _layers(meta, path)
            if n_params is None:  # an unbuilt model: empty arrays
                params = aux = np.zeros(0, np.float32)
                state = np.zeros((0, 0), np.float32)
            else:
                params = _read_array(archive, infos["params"], path, "params", (n_params,))
                aux = _read_array(archive, infos["aux"], path, "aux", (n_aux,))
                state = _read_state(archive, infos["optimizer_state"], path, meta, n_params)
    except ModelFileError:
        raise
    except MemoryError:  # cannot come from the file's sizes, which were checked: not its fault
        raise
    except Exception as err:  # noqa: BLE001  (whatever a crafted file makes fail is its damage)
        raise _damaged(path, f"{type(err).__name__}: {err}") from None
    model_file = ModelFile(meta, layers, params, aux, state)
    _check_numbers(model_file, path)
    return model_file


def _read_state(archive, info, path, meta, n_params):
    """The optimizer state: (0, 0), or (slots of the saved optimizer, P)."""
    stream, dtype, shape, _ = _open_array(archive, info, path)
    stream.close()
    if shape in ((0, 0), (0,)):
        return np.zeros((0, 0), np.float32)
    if meta["compile"] is None:
        raise _damaged(path, f"optimizer state of shape {shape} does not fit the model: it "
                             f"has no optimizer")
    from .optimizers import get
    optimizer = get(meta["compile"]["optimizer"])
    return _read_array(archive, info, path, "optimizer state",
                       (codes.OPTIMIZER_SLOTS[optimizer.code], n_params))
