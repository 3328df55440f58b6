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
    """Every encoder on every row; rows where a modality is unavailable get zero input.

    A zero row is given `encoder.minimum_length` valid frames, so its embedding is exactly the
    encoder's output on zeros (Eq. 1), as `ModalityEmbedder` computes it once per batch.

    Returns:
        `(batch, embedding_dim)`.
    """
    parts = []
    for index, spec in enumerate(embedder.modalities):
        encoder = embedder.encoders[spec.name]
        present = tf.logical_and(availability[:, index], inputs[spec.length_key] > 0)
        features = inputs[spec.name]
        if spec.name in embedder.normalizers:
            features = embedder.normalizers[spec.name](features)
        shortfall = tf.maximum(encoder.minimum_length - tf.shape(features)[1], 0)
        features = tf.pad(features, [[0, 0], [0, shortfall], [0, 0]])
        features = tf.where(present[:, None, None], features, tf.zeros_like(features))
        lengths = tf.where(present, inputs[spec.length_key], encoder.minimum_length)
        valid = tf.sequence_mask(lengths, tf.shape(features)[1], features.dtype)
        parts.append(encoder(features * valid[:, :, None], lengths, training=training))
    return tf.concat(parts, axis=-1)


class ReferenceMMINTrainer(MMINTrainer):
    """`MMINTrainer` computing the step as the original code does (see the module docstring)."""

    @classmethod
    def like(cls, trainer: MMINTrainer) -> "ReferenceMMINTrainer":
        """The reference step over `trainer`'s model, teacher, backward network and settings."""
        return cls(
            trainer.model, trainer.teacher, trainer.backward, trainer.loss_config,
            clip_norm=trainer.clip_norm, finetune_encoders=trainer.finetune_encoders,
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
        )
        return terms, {"logits": logits}
