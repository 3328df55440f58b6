"""Weight initialisation schemes: Keras's defaults or the original PyTorch code's.

The served models are built with Keras's initialisers. `initialize` redraws the weights of the
Dense, Conv1D and LSTM layers inside a layer as the original MMIN code initialises its networks
(`models/networks/tools.py:init_weights` with `init_type=kaiming`, the default of its scripts):

    Dense / Conv kernels   Kaiming normal, fan_in, gain sqrt(2): N(0, 2 / fan_in)   (Keras: Glorot uniform)
    Dense / Conv biases    0                                                         (Keras: 0)
    LSTM kernels           U(-1/sqrt(units), 1/sqrt(units)), PyTorch's nn.LSTM       (Keras: Glorot uniform,
    LSTM recurrent kernel  U(-1/sqrt(units), 1/sqrt(units))                           orthogonal,
    LSTM bias              b_ih + b_hh, each U(-1/sqrt(units), 1/sqrt(units))         zeros + 1 on the forget gate)

The original applies it to every network it trains from scratch: the baseline's encoders and
classifier, and MMIN's autoencoders and classifier (MMIN's encoders are then copied from the
teacher, here as there).
"""

from __future__ import annotations

import keras
import numpy as np

from mmin_tf.configs import Initialization


def initialize(layer: keras.layers.Layer, scheme: Initialization, seed: int) -> None:
    """Redraws the weights of every Dense, Conv1D and LSTM layer inside `layer` by `scheme`.

    `Initialization.KERAS` leaves the weights as built. The draws depend only on `seed` and the
    order of the layers, so the same model and seed give the same weights.

    Args:
        layer: a built layer or model.
        scheme: the initialisation.
        seed: seed of the draws.
    """
    if not isinstance(scheme, Initialization):
        raise TypeError(f"`scheme` must be an Initialization. Received: {scheme!r}")
    if scheme is Initialization.KERAS:
        return
    if not layer.built:
        raise ValueError(f"Build {layer.name!r} before initialising its weights")
    rng = np.random.default_rng(seed)
    for sublayer in _flatten(layer):
        if isinstance(sublayer, (keras.layers.Dense, keras.layers.Conv1D)):
            kernel = sublayer.kernel
            fan_in = int(np.prod(kernel.shape[:-1]))
            kernel.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype(kernel.dtype))
            if sublayer.bias is not None:
                sublayer.bias.assign(np.zeros(sublayer.bias.shape, sublayer.bias.dtype))
        elif isinstance(sublayer, keras.layers.LSTM):
            cell = sublayer.cell
            bound = 1.0 / np.sqrt(cell.units)
            for weight in (cell.kernel, cell.recurrent_kernel):
                weight.assign(rng.uniform(-bound, bound, weight.shape).astype(weight.dtype))
            if cell.use_bias:
                shape = cell.bias.shape
                two_biases = rng.uniform(-bound, bound, shape) + rng.uniform(-bound, bound, shape)
                cell.bias.assign(two_biases.astype(cell.bias.dtype))


def _flatten(layer):
    """`layer` and every layer inside it, each once, in a fixed order."""
    seen, ordered = set(), []
    for sublayer in layer._flatten_layers(include_self=True, recursive=True):
        if id(sublayer) not in seen:
            seen.add(id(sublayer))
            ordered.append(sublayer)
    return ordered
