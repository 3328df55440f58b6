"""Plain (non-residual) autoencoder for the MMIN-AE ablation (paper Table 6)."""

import keras

from mmin_tf.layers.dense_stack import (
    apply_stack,
    build_stack,
    dense_stack,
    leaky_relu,
    stack_parameters,
)


@keras.saving.register_keras_serializable(package="mmin_tf")
class PlainAutoencoder(keras.layers.Layer):
    """Dense autoencoder `input_dim -> hidden_sizes -> latent_dim -> reversed(hidden_sizes) -> input_dim`.

    Its bottleneck is the joint representation fed to the classifier. Use `matched_hidden_size`
    to give it the parameter count of a CRA (the paper compares at "the same parameter scale").

    Args:
        input_dim: width of `h`.
        latent_dim: bottleneck width (match the CRA's `num_blocks * latent` so the classifier
            input is unchanged).
        hidden_sizes: encoder widths before the bottleneck.

    Call arguments:
        inputs: `(batch, input_dim)`.

    Returns:
        Dict with `reconstruction` `(batch, input_dim)` and `latents` `(batch, latent_dim)`.
    """

    def __init__(self, input_dim, latent_dim, hidden_sizes=(1024,), **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.latent_dim = int(latent_dim)
        self.hidden_sizes = tuple(int(size) for size in hidden_sizes)
        self.encoder_layers = dense_stack(self.hidden_sizes + (self.latent_dim,), leaky_relu, None, "encoder")
        self.decoder_layers = dense_stack(
            tuple(reversed(self.hidden_sizes)) + (self.input_dim,), "relu", None, "decoder"
        )

    @staticmethod
    def parameter_count(input_dim, latent_dim, hidden_sizes):
        hidden_sizes = tuple(hidden_sizes)
        return stack_parameters(input_dim, hidden_sizes + (latent_dim,)) + stack_parameters(
            latent_dim, tuple(reversed(hidden_sizes)) + (input_dim,)
        )

    @staticmethod
    def matched_hidden_size(input_dim, latent_dim, target_parameters):
        """The single hidden width whose parameter count is closest to `target_parameters`."""
        return min(
            range(1, 8192),
            key=lambda width: abs(
                PlainAutoencoder.parameter_count(input_dim, latent_dim, (width,)) - target_parameters
            ),
        )

    def build(self, input_shape=None):
        build_stack(self.encoder_layers, self.input_dim)
        build_stack(self.decoder_layers, self.latent_dim)
        self.built = True

    def call(self, inputs):
        latents = apply_stack(self.encoder_layers, inputs)
        return {"reconstruction": apply_stack(self.decoder_layers, latents), "latents": latents}

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim, latent_dim=self.latent_dim, hidden_sizes=self.hidden_sizes
        )
        return config
