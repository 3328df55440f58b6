"""Resampling variable-length frame sequences to a fixed number of steps (MCTN's common time axis)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mmin_tf")
class SequenceResampler(keras.layers.Layer):
    """Linear interpolation of each row's valid frames onto `steps` equally spaced steps.

    The modalities come at different rates (acoustic frames every 100 ms, video frames, word
    pieces), so a row's acoustic, visual and text sequences have different lengths. MCTN
    translates sequences step by step and concatenates modalities per step, so every sequence is
    first put on one time axis of `steps` steps spanning the whole utterance: output step `j`
    stands for the fraction `[j / steps, (j + 1) / steps)` of the utterance and takes the value of
    the row's frames linearly interpolated at that interval's centre, frame position
    `p_j = (j + 0.5) * length / steps - 0.5`, clipped to `[0, length - 1]` (frame `i` covering
    `[i, i + 1)`: the half-pixel-centre convention of `tf.image.resize(method="bilinear")`).
    Longer sequences are thus downsampled and shorter ones upsampled; no frame beyond a row's
    `length` is read (padding is excluded), nothing is truncated, and a row of length 0 (a missing
    modality) becomes `steps` zero frames.

    Args:
        steps: output steps per row, >= 1.

    Call arguments:
        features: float `(batch, time, dim)`; frames beyond each row's length are ignored.
        lengths: int `(batch,)`, valid frames per row, `0 <= length <= time`.

    Returns:
        `(batch, steps, dim)`, the dtype of `features`.
    """

    def __init__(self, steps=20, **kwargs):
        super().__init__(**kwargs)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"`steps` must be a positive int. Received: steps={steps!r}")
        self.steps = steps

    def build(self, features_shape=None, lengths_shape=None):
        self.built = True

    def call(self, features, lengths):
        lengths = tf.cast(lengths, tf.int32)
        # A batch whose rows all have 0 frames may arrive with an empty time axis.
        features = tf.pad(features, [[0, 0], [0, tf.maximum(1 - tf.shape(features)[1], 0)], [0, 0]])
        last = tf.maximum(lengths - 1, 0)  # (B,)
        centres = (tf.range(self.steps, dtype=tf.float32) + 0.5) / self.steps  # (N,)
        positions = centres[None, :] * tf.cast(lengths, tf.float32)[:, None] - 0.5  # (B, N)
        positions = tf.clip_by_value(positions, 0.0, tf.cast(last, tf.float32)[:, None])
        low = tf.cast(tf.floor(positions), tf.int32)
        high = tf.minimum(low + 1, last[:, None])
        weight = tf.cast(positions - tf.floor(positions), features.dtype)[:, :, None]  # (B, N, 1)
        below = tf.gather(features, low, batch_dims=1)  # (B, N, D)
        above = tf.gather(features, high, batch_dims=1)
        resampled = below + (above - below) * weight
        present = tf.cast(lengths > 0, features.dtype)[:, None, None]
        return resampled * present

    def compute_output_shape(self, features_shape, lengths_shape=None):
        return (features_shape[0], self.steps, features_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(steps=self.steps)
        return config
