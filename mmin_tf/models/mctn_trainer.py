"""Trains `MCTN`: owns its decoders and losses; never exported."""

import keras
import tensorflow as tf

from mmin_tf import losses
from mmin_tf.configs import MCTNConfig
from mmin_tf.models.trainer import _Trainer


class MCTNTrainer(_Trainer):
    """Trains `MCTN` with the coupled translation-prediction objective (`losses.mctn_losses`).

    Per step, with X_S the resampled source and X_Tk the resampled missing modalities (the batch
    carries every modality; the served model is shown the condition's, `availability`):

        E_1 = f_1(X_S)             X^_T1 = g_1(E_1)              translation loss L_t1
        X^_S = g_1(f_1(X^_T1))                                   cycle loss L_c
        E_k = f_k(E_{k-1})         X^_Tk = g_k(E_k), k >= 2       translation losses L_tk
        L = w_p CE(y, y^) + lambda_t L_t1 + lambda_c L_c + lambda_t2 sum_k L_tk

    Level 1 translates in both directions with the same encoder and decoder (the public code's
    `mctn_model`): `g_1` decodes `translation_width` features, of which the first target's are
    the translation and the source's the back translation; the translation is zero-padded to
    `translation_width` again before `f_1` re-encodes it. The losses cover each modality's own
    features only (the public code also fits the zero padding). A row whose target modality is
    absent in the data has no translation target: it is left out of that level's loss.

    Args:
        model: `MCTN`.
        decoders: one `AttentionDecoder` per level: level 1's decodes `model.translation_width`
            features, level k's the k-th missing modality's `feature_dim`; `model.steps` steps.
        config: MCTN's loss weights.
        classification_weight: the prediction loss weight.
        clip_norm: every network's gradient (each encoder, each decoder, the pooling, the
            classifier) is clipped to this global norm separately.

    Metrics: `loss`, `ce_loss`, `translation_loss`, `cycle_loss`, `second_translation_loss`
    (weighted), `accuracy`.
    """

    def __init__(self, model, decoders, config: MCTNConfig, classification_weight=1.0, clip_norm=1.0, **kwargs):
        super().__init__(model, clip_norm, **kwargs)
        self.decoders = list(decoders)
        expected = [model.translation_width] + [spec.feature_dim for spec in model.target_specs[1:]]
        received = [decoder.output_dim for decoder in self.decoders]
        if received != expected:
            raise ValueError(
                f"MCTN for condition {model.condition!r} needs decoders of {expected} features (level 1: the "
                f"translation width, then each further missing modality). Received: {received}"
            )
        steps = [decoder.steps for decoder in self.decoders]
        if any(count != model.steps for count in steps):
            raise ValueError(f"The decoders must decode the model's {model.steps} steps. Received: {steps}")
        self.config = config
        self.classification_weight = float(classification_weight)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("ce_loss", "translation_loss", "cycle_loss", "second_translation_loss")
        }

    def networks(self):
        return [*self.model.encoders, self.model.pooling, self.model.classifier, *self.decoders]

    def compute_losses(self, inputs, visible, labels, training):
        """Forward pass, translations and the loss terms; `inputs` carry every modality."""
        model = self.model
        outputs = model(visible, training=training)
        targets = model.resampled(inputs, model.target_names)
        first = model.target_specs[0]
        translated = self.decoders[0](outputs["levels"][0])[:, :, :first.feature_dim]  # X^_T1
        back = model.encoders[0](model.pad_to_translation_width(translated))  # E_{T1->S}
        cycled = self.decoders[0](back)[:, :, :model.source_width]  # X^_S
        translations = [(targets[first.name], translated, inputs[first.length_key] > 0)]
        for level, spec in enumerate(model.target_specs[1:], start=1):
            prediction = self.decoders[level](outputs["levels"][level])  # X^_Tk
            translations.append((targets[spec.name], prediction, inputs[spec.length_key] > 0))
        terms = losses.mctn_losses(
            labels=labels, logits=outputs["logits"], translations=translations, source=outputs["source"],
            cycled=cycled, config=self.config, classification_weight=self.classification_weight,
        )
        return terms, outputs

    def train_step(self, data):
        inputs, visible, _, labels = self._split_inputs(data)
        with tf.GradientTape() as tape:
            terms, outputs = self.compute_losses(inputs, visible, labels, training=True)
        share = self._apply_clipped_gradients(tape, terms["loss"], tf.shape(labels)[0])
        return self._logs(terms, labels, outputs["logits"], share)
