"""MMIN's losses (paper Eq. 6-7) as pure functions."""

import tensorflow as tf

from mmin_tf.configs import ImaginationReduction, LossConfig


def classification_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy `L_cls`. labels int `(batch,)`, logits `(batch, classes)` -> scalar."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))
    )


def imagination_loss(
    target: tf.Tensor, prediction: tf.Tensor, reduction: ImaginationReduction, mask=None
) -> tf.Tensor:
    """`||target - prediction||^2` averaged over the batch (SUM) or over every element (MEAN).

    target, prediction: `(batch, embedding_dim)` -> scalar. `mask` (bool or 0/1 `(batch,
    embedding_dim)`, or None for all) keeps only the elements that have a target: MEAN averages
    over the kept elements, SUM sums each example's kept elements and averages over the batch.
    Either way every kept element weighs what it weighs when nothing is masked, so an example
    with fewer targets contributes in proportion to what it has, neither more nor less per target.
    """
    squared = tf.square(tf.cast(target, tf.float32) - tf.cast(prediction, tf.float32))
    if mask is not None:
        squared = squared * tf.cast(mask, tf.float32)
    if reduction is ImaginationReduction.SUM:
        return tf.reduce_mean(tf.reduce_sum(squared, axis=-1))
    if mask is not None:
        return tf.reduce_sum(squared) / tf.maximum(tf.reduce_sum(tf.cast(mask, tf.float32)), 1.0)
    return tf.reduce_mean(squared)


def mmin_losses(
    *,
    labels: tf.Tensor,
    logits: tf.Tensor,
    teacher_target: tf.Tensor,
    imagined: tf.Tensor,
    embeddings: tf.Tensor,
    cycle_reconstruction,
    config: LossConfig,
    target_mask=None,
) -> dict:
    """The weighted terms and total of Eq. 7.

    Args:
        labels: int `(batch,)`.
        logits: `(batch, classes)` from the classifier on R.
        teacher_target: `h_hat`, the frozen teacher's embedding of the complementary view
            `(batch, dim)`; carries no gradient.
        imagined: `h'`, the forward imagination `(batch, dim)`.
        embeddings: `h`, the student's embedding of the available view `(batch, dim)`; the cycle
            target, detached here (the original detaches it too).
        cycle_reconstruction: `h''` = backward(h') `(batch, dim)`, or None without cycle learning.
        config: weights and reduction.
        target_mask: `(batch, dim)`, the slots of the modalities each example really has (its
            absent modalities have no imagination target); None: every slot.

    Returns:
        Dict of scalars `loss`, `ce_loss`, `forward_loss`, `backward_loss` (weighted).
    """
    ce = config.classification_weight * classification_loss(labels, logits)
    forward = config.forward_weight * imagination_loss(
        tf.stop_gradient(teacher_target), imagined, config.reduction, target_mask
    )
    if cycle_reconstruction is None:
        backward = tf.zeros([], tf.float32)
    else:
        backward = config.backward_weight * imagination_loss(
            tf.stop_gradient(embeddings), cycle_reconstruction, config.reduction
        )
    return {"loss": ce + forward + backward, "ce_loss": ce, "forward_loss": forward, "backward_loss": backward}
