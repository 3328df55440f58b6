"""MMIN's losses (paper Eq. 6-7) and the MCTN baseline's, as pure functions."""

from typing import Sequence

import tensorflow as tf

from mmin_tf.configs import ImaginationReduction, LossConfig, MCTNConfig


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


def sequence_loss(target: tf.Tensor, prediction: tf.Tensor, present=None) -> tf.Tensor:
    """Mean squared error over every element of the rows that have a target (MCTN's translation
    and cycle losses; the public code's Keras `'mse'`).

    target, prediction: `(batch, steps, dim)` -> scalar. `present` (bool `(batch,)`, or None for
    every row) keeps the rows whose target modality exists; the mean runs over their elements
    (0 when no row has one).
    """
    squared = tf.square(tf.cast(target, tf.float32) - tf.cast(prediction, tf.float32))
    if present is None:
        return tf.reduce_mean(squared)
    rows = tf.cast(present, tf.float32)
    per_row = tf.reduce_mean(squared, axis=[1, 2])  # (B,)
    return tf.reduce_sum(per_row * rows) / tf.maximum(tf.reduce_sum(rows), 1.0)


def mctn_losses(
    *,
    labels: tf.Tensor,
    logits: tf.Tensor,
    translations: Sequence,
    source: tf.Tensor,
    cycled: tf.Tensor,
    config: MCTNConfig,
    classification_weight: float,
) -> dict:
    """MCTN's coupled translation-prediction objective (Pham et al., AAAI 2019), weighted:

        L = w_p L_p + lambda_t L_t(X_T1, X^_T1) + lambda_c L_c(X_S, X^_S) + lambda_t2 sum_k L_t(X_Tk, X^_Tk)

    with `L_p` the cross-entropy of the prediction on the joint representation and every `L_t`,
    `L_c` a mean squared error (`sequence_loss`).

    Args:
        labels: int `(batch,)`.
        logits: `(batch, classes)`.
        translations: one `(target, prediction, present)` per translation level, in order: level 1
            (the source -> first missing modality) and the hierarchical levels after it; `target`
            and `prediction` `(batch, steps, dim)`, `present` bool `(batch,)` (None: every row).
        source: `X_S`, the source sequence `(batch, steps, source_dim)`: the cycle's target.
        cycled: `X^_S`, the back translation of level 1's translation `(batch, steps, source_dim)`.
        config: the weights.
        classification_weight: `w_p`.

    Returns:
        Dict of scalars `loss`, `ce_loss`, `translation_loss`, `cycle_loss`,
        `second_translation_loss` (weighted; the last is 0 with one level).
    """
    if not translations:
        raise ValueError("MCTN needs at least one translation level. Received: translations=[]")
    ce = classification_weight * classification_loss(labels, logits)
    translation = config.translation_weight * sequence_loss(*translations[0])
    cycle = config.cycle_weight * sequence_loss(tf.stop_gradient(source), cycled)
    second = tf.zeros([], tf.float32)
    for target, prediction, present in translations[1:]:
        second += config.second_translation_weight * sequence_loss(target, prediction, present)
    return {
        "loss": ce + translation + cycle + second, "ce_loss": ce, "translation_loss": translation,
        "cycle_loss": cycle, "second_translation_loss": second,
    }
