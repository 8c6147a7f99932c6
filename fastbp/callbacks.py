"""Training callbacks. ``History`` records what each epoch reported."""


class History:
    """Per-epoch logs of a ``fit``: ``history["loss"]``, ``history["val_accuracy"]``, ...

    Attributes
    ----------
    history : dict of str -> list of float
    epoch : list of int
        Epoch indices (0-based) the lists refer to.
    params : dict
        ``epochs``, ``batch_size``, ``samples``, ``steps`` of the fit.
    """

    def __init__(self, params=None):
        self.history = {}
        self.epoch = []
        self.params = dict(params or {})

    def record(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"
