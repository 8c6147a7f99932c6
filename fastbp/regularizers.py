"""Keras's weight regularizers, as the ``l1`` and ``l2`` a Dense layer's kernel is penalised
with: ``Dense(64, kernel_regularizer=fastbp.regularizers.L2(0.01))`` is
``Dense(64, l2=0.01)``, a penalty ``l1 * sum|W| + l2 * sum W^2`` added to the loss."""

from ._validation import check_float, describe


class L1L2:
    """``l1 * sum|W| + l2 * sum W^2``."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = check_float(l1, "l1", low=0.0)
        self.l2 = check_float(l2, "l2", low=0.0)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return f"L1L2(l1={self.l1}, l2={self.l2})"


def L1(l1=0.01):
    """``l1 * sum|W|`` (Keras's default rate 0.01)."""
    return L1L2(l1=l1)


def L2(l2=0.01):
    """``l2 * sum W^2`` (Keras's default rate 0.01)."""
    return L1L2(l2=l2)


l1, l2, l1_l2 = L1, L2, L1L2
_NAMES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01)}


def get(regularizer):
    """An L1L2 from None, a name (``"l1"``, ``"l2"``, ``"l1_l2"``, Keras's rates 0.01), a
    config dict or an L1L2."""
    if regularizer is None or isinstance(regularizer, L1L2):
        return regularizer
    if isinstance(regularizer, str) and regularizer in _NAMES:
        return _NAMES[regularizer]()
    if isinstance(regularizer, dict):
        return L1L2(**regularizer)
    raise TypeError(f"kernel_regularizer must be None, 'l1', 'l2', 'l1_l2' or a "
                    f"fastbp.regularizers.L1L2 (L1, L2); received {describe(regularizer)}")
