"""The flat parameter layout and the work buffers of a network.

All parameters live in one float32 vector: for each layer l, W_l (s_l x s_{l+1}, row-major)
then b_l (s_{l+1}). The gradient and every optimizer state vector share this layout. The
kernels see the network only through the small arrays built here.
"""

import numpy as np


class Layout:
    """Integer arrays describing a stack of dense layers.

    Attributes
    ----------
    sizes : int64 (L + 1,)      widths, features first
    w_off, b_off : int64 (L,)   offsets of W_l and b_l in the parameter vector
    act : int64 (L,)            activation codes
    alpha : float64 (L,)        activation parameters
    l1, l2 : float64 (L,)       penalty coefficients
    n_params : int
    """

    def __init__(self, n_features, layers):
        self.sizes = np.array([n_features] + [layer.units for layer in layers], np.int64)
        n_layers = len(layers)
        self.w_off = np.zeros(n_layers, np.int64)
        self.b_off = np.zeros(n_layers, np.int64)
        offset = 0
        for l in range(n_layers):
            self.w_off[l] = offset
            offset += self.sizes[l] * self.sizes[l + 1]
            self.b_off[l] = offset
            offset += self.sizes[l + 1]
        self.n_params = int(offset)
        self.act = np.array([layer.activation_code for layer in layers], np.int64)
        self.alpha = np.array([layer.alpha for layer in layers], np.float64)
        self.l1 = np.array([layer.l1 for layer in layers], np.float64)
        self.l2 = np.array([layer.l2 for layer in layers], np.float64)

    @property
    def n_layers(self):
        return len(self.w_off)

    @property
    def n_outputs(self):
        return int(self.sizes[-1])

    def weights(self, params):
        """Views ``[(W_1, b_1), ...]`` into ``params``."""
        views = []
        for l in range(self.n_layers):
            n_in, n_out = int(self.sizes[l]), int(self.sizes[l + 1])
            W = params[self.w_off[l]:self.w_off[l] + n_in * n_out].reshape(n_in, n_out)
            b = params[self.b_off[l]:self.b_off[l] + n_out]
            views.append((W, b))
        return views

    def buffers(self, rows):
        """``(act_off, acts, deltas)`` for batches of up to ``rows`` rows.

        Layer l's block starts at ``act_off[l]`` in ``acts`` (outputs) and ``deltas`` (dL/dz).
        """
        widths = self.sizes[1:]
        act_off = np.concatenate(([0], np.cumsum(rows * widths)[:-1])).astype(np.int64)
        total = int(rows * widths.sum())
        return act_off, np.zeros(total, np.float32), np.zeros(total, np.float32)

    def shard_buffers(self, batch_size, shards):
        """Work buffers of a training loop that cuts each batch into ``shards`` row shards.

        Returns ``(act_off, xb, acts, deltas, grads, seg, scratch)``: xb (S, rows, s0);
        acts, deltas (S, A); grads (S, P); seg (S, 2 L, 4); scratch (2, S); with
        ``rows = ceil(batch_size / S)``.
        """
        rows = -(-batch_size // shards)
        act_off, acts, deltas = self.buffers(rows)
        return (act_off,
                np.zeros((shards, rows, int(self.sizes[0])), np.float32),
                np.zeros((shards, acts.size), np.float32),
                np.zeros((shards, deltas.size), np.float32),
                np.zeros((shards, self.n_params), np.float32),
                np.zeros((shards, 2 * self.n_layers, 4)),
                np.zeros((2, shards)))
