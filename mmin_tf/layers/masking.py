"""Masked reductions over time shared by the encoders."""

import tensorflow as tf


def masked_max_over_time(values: tf.Tensor, valid_steps: tf.Tensor) -> tf.Tensor:
    """Max over the first `valid_steps[b]` time steps of each row.

    Args:
        values: `(batch, time, channels)`.
        valid_steps: int `(batch,)`, each >= 1 and <= time.

    Returns:
        `(batch, channels)`; padded steps never contribute, so the result does not depend on how
        much padding follows the valid steps.
    """
    mask = tf.sequence_mask(valid_steps, maxlen=tf.shape(values)[1])[:, :, None]
    lowest = tf.constant(values.dtype.min, values.dtype)
    return tf.reduce_max(tf.where(mask, values, lowest), axis=1)
