"""LSTM + max-pool utterance encoder for frame-level features (acoustic, visual)."""

import keras
import tensorflow as tf

from mmin_tf.layers.masking import masked_max_over_time


@keras.saving.register_keras_serializable(package="mmin_tf")
class SequenceEncoder(keras.layers.Layer):
    """One-layer unidirectional LSTM whose outputs are max-pooled over the valid time steps.

    The paper's EncA/EncV (§4.3, Table 3: hidden size 128). Unlike the original code, padded
    steps are excluded from the max, so the embedding of an utterance does not depend on how long
    the other utterances of its batch are. No mask is fed to the LSTM: with right padding the
    outputs at valid steps never see the padding, and the cuDNN kernel stays usable on GPUs.

    Args:
        hidden_size: LSTM units = embedding size.
        use_cudnn: passed to `keras.layers.LSTM` ("auto", True or False). cuDNN disables XLA for
            the whole model on GPUs; pass False to keep `jit_compile`.

    Call arguments:
        features: float `(batch, time, feature_dim)`, zero beyond each row's length.
        lengths: int `(batch,)`, valid steps per row, >= 1.
        training: unused (no dropout), accepted for a uniform encoder interface.

    Returns:
        `(batch, hidden_size)`; `call` is `project(pool(...))` with `project` the identity, the
        interface `ModalityEmbedder` shares with `TextCNN`.
    """

    minimum_length = 1

    def __init__(self, hidden_size=128, use_cudnn="auto", **kwargs):
        super().__init__(**kwargs)
        if hidden_size < 1:
            raise ValueError(f"`hidden_size` must be >= 1. Received: hidden_size={hidden_size}")
        self.hidden_size = hidden_size
        self.use_cudnn = use_cudnn
        self.lstm = keras.layers.LSTM(
            hidden_size, return_sequences=True, use_cudnn=use_cudnn, name="lstm"
        )

    @property
    def output_size(self):
        return self.hidden_size

    def build(self, features_shape, lengths_shape=None):
        if not self.lstm.built:
            self.lstm.build(features_shape)
        self.built = True

    def pool(self, features, lengths):
        """LSTM and max over the valid steps: `(batch, time, feature_dim)` -> `(batch, hidden_size)`."""
        outputs = self.lstm(features)  # (B, T, H)
        return masked_max_over_time(outputs, tf.maximum(lengths, 1))

    def project(self, pooled, training=None):
        """The identity: this encoder has no per-row part (no dropout)."""
        return pooled

    def call(self, features, lengths, training=None):
        return self.project(self.pool(features, lengths), training=training)

    def compute_output_shape(self, features_shape, lengths_shape=None):
        return (features_shape[0], self.hidden_size)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, use_cudnn=self.use_cudnn)
        return config
