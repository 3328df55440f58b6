"""One residual autoencoder (RA), the block of the cascade."""

import keras

from mmin_tf.layers.dense_stack import apply_stack, build_stack, dense_stack, leaky_relu


@keras.saving.register_keras_serializable(package="mmin_tf")
class ResidualAutoencoder(keras.layers.Layer):
    """Autoencoder `phi_k` of the CRA (paper Eq. 2): predicts a residual `Delta z_k`.

    Encoder: Dense(h_1)-LeakyReLU-...-Dense(h_n) with a linear bottleneck `c_k` (the latent vector
    collected into the joint representation R, §3.1.4); decoder mirrors it with ReLU and ends in a
    linear layer back to `input_dim`. Table 3: 384-256-128-64-128-256-384.

    Args:
        input_dim: width of the multimodal embedding `h`.
        hidden_sizes: encoder widths; the last is the latent size.

    Call arguments:
        inputs: `(batch, input_dim)`.

    Returns:
        `(residual (batch, input_dim), latent (batch, hidden_sizes[-1]))`.
    """

    def __init__(self, input_dim, hidden_sizes=(256, 128, 64), **kwargs):
        super().__init__(**kwargs)
        if not hidden_sizes:
            raise ValueError(f"`hidden_sizes` must be non-empty. Received: {hidden_sizes}")
        self.input_dim = int(input_dim)
        self.hidden_sizes = tuple(int(size) for size in hidden_sizes)
        self.encoder_layers = dense_stack(self.hidden_sizes, leaky_relu, None, "encoder")
        decoder_sizes = tuple(reversed(self.hidden_sizes[:-1])) + (self.input_dim,)
        self.decoder_layers = dense_stack(decoder_sizes, "relu", None, "decoder")

    @property
    def latent_dim(self):
        return self.hidden_sizes[-1]

    def build(self, input_shape=None):
        latent = build_stack(self.encoder_layers, self.input_dim)
        build_stack(self.decoder_layers, latent)
        self.built = True

    def call(self, inputs):
        latent = apply_stack(self.encoder_layers, inputs)
        return apply_stack(self.decoder_layers, latent), latent

    def get_config(self):
        config = super().get_config()
        config.update(input_dim=self.input_dim, hidden_sizes=self.hidden_sizes)
        return config
