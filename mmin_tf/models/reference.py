"""The original implementation's training computation, for benchmarks and equivalence tests.

The original MMIN (PyTorch) runs every student encoder on every example, with the missing
modalities' inputs zeroed, and the frozen teacher on every example's complementary view, at
every step. `ReferenceMMINTrainer` does exactly that with our layers, so it computes the same
losses as `MMINTrainer` (tested) at the original's cost: the ratio of their speeds is what our
optimizations (encoders only where there is signal, teacher embeddings computed once) buy.
"""

import tensorflow as tf

from mmin_tf import losses
from mmin_tf.models.trainer import MMINTrainer


def dense_embeddings(embedder, inputs, availability, training=None):
    """Every encoder on every row; rows where a modality is unavailable get zero input
    (`ModalityEmbedder.embed_every_row`, whatever the embedder's `encoder_rows`).

    Args:
        embedder: a `ModalityEmbedder`.
        inputs: per-modality features `(batch, time, dim)` and lengths `(batch,)`.
        availability: bool `(batch, num_modalities)`, in the embedder's modality order.

    Returns:
        `(batch, embedding_dim)`.
    """
    parts = []
    for index, spec in enumerate(embedder.modalities):
        lengths = tf.where(availability[:, index], inputs[spec.length_key], tf.zeros_like(inputs[spec.length_key]))
        parts.append(embedder.embed_every_row(spec, inputs[spec.name], lengths, training))
    return tf.concat(parts, axis=-1)


class ReferenceMMINTrainer(MMINTrainer):
    """`MMINTrainer` computing the step as the original code does (see the module docstring)."""

    @classmethod
    def like(cls, trainer: MMINTrainer) -> "ReferenceMMINTrainer":
        """The reference step over `trainer`'s model, teacher, backward network and settings."""
        return cls(
            trainer.model, trainer.teacher, trainer.backward, trainer.loss_config,
            clip_norm=trainer.clip_norm, finetune_encoders=trainer.finetune_encoders,
            absent_modalities=trainer.absent_modalities,
        )

    def compute_losses(self, inputs, visible, availability, labels, training):
        student = dense_embeddings(self.model.embedder, inputs, availability, training)
        target = dense_embeddings(self.teacher, inputs, tf.logical_not(availability), training=False)
        imagination = self.model.imagination(student)
        logits = self.model.classifier(imagination["latents"], training=training)
        cycle = None
        if self.backward is not None:
            cycle = self.backward(imagination["reconstruction"])["reconstruction"]
        terms = losses.mmin_losses(
            labels=labels, logits=logits, teacher_target=target, imagined=imagination["reconstruction"],
            embeddings=student, cycle_reconstruction=cycle, config=self.loss_config,
            target_mask=self.target_mask(inputs),
        )
        return terms, {"logits": logits}
