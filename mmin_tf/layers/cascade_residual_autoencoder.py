"""Cascade Residual Autoencoder (CRA; Tran et al. 2017), MMIN's imagination module."""

import keras
import tensorflow as tf

from mmin_tf.layers.dense_stack import apply_stack, build_stack, dense_stack
from mmin_tf.layers.residual_autoencoder import ResidualAutoencoder


@keras.saving.register_keras_serializable(package="mmin_tf")
class CascadeResidualAutoencoder(keras.layers.Layer):
    """B residual autoencoders in cascade (paper Eq. 2-3).

        Delta z_1 = phi_1(h);  Delta z_k = phi_k(h + sum_{j<k} Delta z_j)
        h' = h + sum_k Delta z_k                                    (Eq. 3)
        R  = concat(c_1, ..., c_B)                                  (§3.1.4)

    The original code additionally passes `h'` through a two-layer "transition" MLP
    (Dense-ReLU-Dense, `input_dim` wide) that the paper does not describe; `use_transition=True`
    (the default) reproduces the code, False the paper.

    Args:
        input_dim: width of `h`.
        num_blocks: B.
        hidden_sizes: encoder widths of each block; the last is the latent size.
        use_transition: apply the original code's transition MLP to `h'`.

    Call arguments:
        inputs: `h`, `(batch, input_dim)`.

    Returns:
        Dict with `reconstruction` (`h'`, `(batch, input_dim)`) and `latents`
        (`R`, `(batch, num_blocks * hidden_sizes[-1])`).
    """

    def __init__(self, input_dim, num_blocks=5, hidden_sizes=(256, 128, 64), use_transition=True, **kwargs):
        super().__init__(**kwargs)
        if num_blocks < 1:
            raise ValueError(f"`num_blocks` must be >= 1. Received: num_blocks={num_blocks}")
        self.input_dim = int(input_dim)
        self.num_blocks = int(num_blocks)
        self.hidden_sizes = tuple(int(size) for size in hidden_sizes)
        self.use_transition = bool(use_transition)
        self.blocks = [
            ResidualAutoencoder(self.input_dim, self.hidden_sizes, name=f"block_{i}")
            for i in range(self.num_blocks)
        ]
        self.transition_layers = (
            dense_stack((self.input_dim, self.input_dim), "relu", None, "transition")
            if self.use_transition
            else []
        )

    @property
    def latent_dim(self):
        return self.num_blocks * self.hidden_sizes[-1]

    def build(self, input_shape=None):
        for block in self.blocks:
            if not block.built:
                block.build()
        build_stack(self.transition_layers, self.input_dim)
        self.built = True

    def call(self, inputs):
        block_input = inputs
        residual = tf.zeros_like(inputs)
        latents = []
        for block in self.blocks:
            block_input = block_input + residual  # h + sum_{j<k} Delta z_j
            residual, latent = block(block_input)
            latents.append(latent)
        imagined = block_input + residual  # Eq. 3
        return {
            "reconstruction": apply_stack(self.transition_layers, imagined),
            "latents": tf.concat(latents, axis=-1),  # (B, num_blocks * latent)
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            num_blocks=self.num_blocks,
            hidden_sizes=self.hidden_sizes,
            use_transition=self.use_transition,
        )
        return config
