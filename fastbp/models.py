"""Keras's ``keras.models`` names: ``Sequential``, ``load_model``, ``clone_model``,
``model_from_config``."""

from ._validation import describe
from .model import Sequential, load_model


def clone_model(model, clone_function=None):
    """A new model with ``model``'s architecture and freshly initialised weights (Keras's
    ``clone_model``: the trained weights are not copied, ``set_weights(model.get_weights())``
    does that; with the same seed, the clone starts from the weights ``model`` started from).
    Not compiled. ``clone_function(layer) -> layer`` may replace each layer's copy,
    which by default is built from the layer's config.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"clone_model expects a fastbp.Sequential; received {describe(model)}")
    from .layers import from_config
    config = model.get_config()
    if clone_function is None:
        return Sequential.from_config(config)
    if not callable(clone_function):
        raise TypeError(f"clone_function must be callable; received {describe(clone_function)}")
    layers = [clone_function(from_config(layer.get_config())) for layer in model.layers]
    clone = Sequential(layers, seed=config.get("seed"), name=config.get("name"))
    if config.get("input_shape") is not None and clone._input_width is None:
        clone._input_width = config["input_shape"][0]
    return clone


def model_from_config(config):
    """``Sequential.from_config(config)``."""
    return Sequential.from_config(config)


__all__ = ["Sequential", "clone_model", "load_model", "model_from_config"]
