"""Saving and loading models as ``.npz`` files.

A file holds plain arrays only, readable with ``numpy.load(path, allow_pickle=False)``:

* ``meta``: a JSON document (as a 0-d unicode array) with the format name and version, the
  architecture, the input width, the compile settings and the optimizer's step count;
* ``params``: the flat float32 parameter vector (bit-exact);
* ``aux``: batch-normalisation running statistics (float32);
* ``optimizer_state``: the optimizer's state vectors (empty before the first fit).

The metadata also keeps the class labels, the dropout seed and the random generator's state,
so that a loaded model continues training exactly as the saved one would have.
"""

import json
import os
import zipfile

import numpy as np

FORMAT = "fastbp-model"
VERSION = 1


class ModelFileError(ValueError):
    """The file is not a fastbp model, or it is damaged."""


def save_model(model, path):
    """Write ``model`` to ``path`` (a file name, ``.npz`` appended if missing, or a file object)."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.get_config(),
        "n_features": model.n_features,
        "compile": None,
        "optimizer_iterations": 0,
        "optimizer_epochs": 0,
        "lr_factor": 1.0,
        "classes": None if model.classes_ is None else np.asarray(model.classes_).tolist(),
        "dropout_seed": model._dropout_seed,
        "rng_state": model._rng.bit_generator.state,
    }
    state = np.zeros((0, 0), np.float32)
    if model.loss is not None:
        meta["compile"] = {
            "optimizer": model.optimizer.get_config(),
            "loss": model.loss.get_config(),
            "metrics": list(model.metrics),
            "backend": model.backend,
        }
        meta["lr_factor"] = model.optimizer.lr_factor
        if model.optimizer.state is not None:
            state = model.optimizer.state
            meta["optimizer_iterations"] = int(model.optimizer.iterations)
            meta["optimizer_epochs"] = int(model.optimizer.epochs)
    params = model.params if model.params is not None else np.zeros(0, np.float32)
    aux = model.aux if model.aux is not None else np.zeros(0, np.float32)
    np.savez(path, meta=np.array(json.dumps(meta)), params=params, aux=aux,
             optimizer_state=state)


def _damaged(path, why):
    return ModelFileError(f"{path!s} is not a readable fastbp model file: {why}")


def _read_entries(handle, path):
    archive = np.load(handle, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _damaged(path, "it holds a single array, not a fastbp archive")
    with archive:
        missing = {"meta", "params", "aux", "optimizer_state"} - set(archive.files)
        if missing:
            raise _damaged(path, f"missing entries {sorted(missing)}")
        return (str(archive["meta"]), archive["params"], archive["aux"],
                archive["optimizer_state"])


def load_model(path):
    """Read a model written by ``save_model`` / ``Model.save``.

    Raises
    ------
    ModelFileError
        If the file is not a fastbp model or is damaged.
    """
    from . import losses, optimizers
    from .layers import from_config
    from .model import Sequential

    try:
        if isinstance(path, (str, os.PathLike)):
            with open(path, "rb") as handle:  # closed even when numpy fails half-way
                meta_text, params, aux, state = _read_entries(handle, path)
        else:
            meta_text, params, aux, state = _read_entries(path, path)
    except (ModelFileError, FileNotFoundError):
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise _damaged(path, f"{type(err).__name__}: {err}") from None
    try:
        meta = json.loads(meta_text)
    except json.JSONDecodeError as err:
        raise _damaged(path, f"its metadata is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _damaged(path, f"expected format {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise ModelFileError(f"{path!s} is a fastbp model of format version "
                             f"{meta.get('version')!r}; this fastbp reads version {VERSION}")
    try:
        config = meta["config"]
        model = Sequential([from_config(c) for c in config["layers"]], seed=config["seed"],
                           name=config["name"])
        if meta["compile"] is not None:
            c = meta["compile"]
            model.compile(optimizer=optimizers.get(c["optimizer"]), loss=losses.get(c["loss"]),
                          metrics=c["metrics"], backend=c["backend"])
        if meta["n_features"] is not None:
            model.build(meta["n_features"])
            if params.dtype != np.float32 or params.shape != model.params.shape:
                raise _damaged(path, f"expected {model.params.shape[0]} float32 parameters, "
                                     f"found an array of shape {params.shape} and dtype "
                                     f"{params.dtype}")
            model.params[:] = params
            if aux.dtype != np.float32 or aux.shape != model.aux.shape:
                raise _damaged(path, f"expected {model.aux.shape[0]} float32 running "
                                     f"statistics, found shape {aux.shape}")
            model.aux[:] = aux
            model._dropout_seed = int(meta["dropout_seed"])
            if state.size:
                opt = model.optimizer
                if opt is None or state.shape != (opt.n_slots, model.params.shape[0]):
                    raise _damaged(path, f"optimizer state of shape {state.shape} does not fit "
                                         f"the model")
                opt.state = state.astype(np.float32)
                opt.iterations = int(meta["optimizer_iterations"])
                opt.epochs = int(meta["optimizer_epochs"])
        if model.optimizer is not None:
            model.optimizer.lr_factor = float(meta["lr_factor"])
        if meta["classes"] is not None:
            model.classes_ = np.asarray(meta["classes"])
        model._rng.bit_generator.state = meta["rng_state"]
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise _damaged(path, f"{type(err).__name__}: {err}") from None
    return model
