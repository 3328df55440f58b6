"""TextCNN utterance encoder for word-level features (text)."""

import keras
import tensorflow as tf

from mmin_tf.layers.masking import masked_max_over_time


@keras.saving.register_keras_serializable(package="mmin_tf")
class TextCNN(keras.layers.Layer):
    """Kim (2014) TextCNN: parallel 1-D convolutions, ReLU, max over time, dropout, projection.

    The paper's EncT (§4.3, Table 3: kernels 3/4/5, 128 channels). As the original code: the
    pooled features are concatenated, dropped out (0.5) and projected to `embedding_size` with a
    ReLU, so the embedding is non-negative. `call` is `project(pool(...))`: `pool` is the
    deterministic, costly part and `project` the per-row part with the dropout, so a caller can
    pool one input once and project it for many rows with a dropout mask each. Only convolution windows that lie within the valid
    frames are pooled; a sequence shorter than a kernel is zero-padded to that kernel's width
    (the original needs at least 5 frames).

    Args:
        channels: filters per kernel size.
        kernel_sizes: tuple of window widths.
        embedding_size: output size.
        dropout: rate applied to the concatenated pooled features in training.

    Call arguments:
        features: float `(batch, time, feature_dim)`, zero beyond each row's length.
        lengths: int `(batch,)`, valid frames per row, >= 1.
        training: enables dropout.

    Returns:
        `(batch, embedding_size)`.
    """

    def __init__(self, channels=128, kernel_sizes=(3, 4, 5), embedding_size=128, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ValueError(f"`kernel_sizes` must be positive ints. Received: {kernel_sizes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        self.embedding_size = embedding_size
        self.dropout = dropout
        self.convolutions = [
            keras.layers.Conv1D(
                channels, size, activation="relu",
                name=f"convolution_{size}",
            )
            for size in kernel_sizes
        ]
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.projection = keras.layers.Dense(
            embedding_size, activation="relu", name="projection"
        )

    @property
    def minimum_length(self):
        return max(self.kernel_sizes)

    @property
    def output_size(self):
        return self.embedding_size

    def build(self, features_shape, lengths_shape=None):
        for convolution in self.convolutions:
            if not convolution.built:
                convolution.build((None, None, features_shape[-1]))
        if not self.projection.built:
            self.projection.build((None, self.channels * len(self.kernel_sizes)))
        self.built = True

    def pool(self, features, lengths):
        """The deterministic part: convolutions, ReLU, max over valid windows, concatenated.

        features `(batch, time, feature_dim)`, lengths `(batch,)` -> `(batch, channels * len(kernel_sizes))`.
        """
        shortfall = tf.maximum(self.minimum_length - tf.shape(features)[1], 0)
        features = tf.pad(features, [[0, 0], [0, shortfall], [0, 0]])
        pooled = []
        for size, convolution in zip(self.kernel_sizes, self.convolutions):
            windows = tf.maximum(lengths - size + 1, 1)  # windows inside the valid frames
            pooled.append(masked_max_over_time(convolution(features), windows))
        return tf.concat(pooled, axis=-1)  # (B, channels * len(kernel_sizes))

    def project(self, pooled, training=None):
        """The per-row part: dropout (in training) and the ReLU projection.

        pooled `(batch, channels * len(kernel_sizes))` -> `(batch, embedding_size)`.
        """
        return self.projection(self.dropout_layer(pooled, training=training))

    def call(self, features, lengths, training=None):
        return self.project(self.pool(features, lengths), training=training)

    def compute_output_shape(self, features_shape, lengths_shape=None):
        return (features_shape[0], self.embedding_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            kernel_sizes=self.kernel_sizes,
            embedding_size=self.embedding_size,
            dropout=self.dropout,
        )
        return config
