"""The Missing Modality Imagination Network as served: no training-only parts."""

import keras

import mmin_tf.layers  # noqa: F401  (registers the layers for deserialization)


@keras.saving.register_keras_serializable(package="mmin_tf")
class MMIN(keras.Model):
    """MMIN (Zhao, Li, Jin. ACL 2021), inference path (paper Fig. 2(c)).

        h  = concat(EncA(x^a), EncV(x^v), EncT(x^t)); missing -> encoder on zeros     (Eq. 1)
        h', R = imagination(h): forward CRA, h' = h + sum_k Delta z_k, R = [c_1..c_B]  (Eq. 2-3)
        q  = softmax(f_cls(R))                                                          (Eq. 5)

    The backward imagination network and the frozen teacher are used only in training and live
    in `MMINTrainer`. `imagination` may be a `CascadeResidualAutoencoder` (MMIN) or a
    `PlainAutoencoder` (the MMIN-AE ablation): both return `reconstruction` and `latents`.

    Args:
        embedder: `ModalityEmbedder` (student encoders, initialised from the teacher).
        imagination: forward imagination network.
        classifier: `ClassifierHead` on the latents R.

    Call arguments:
        inputs: dict of per-modality features `(batch, time, dim)` and lengths `(batch,)`.
        training: enables dropout.

    Returns:
        Dict with `logits` `(batch, num_classes)`, `embeddings` (h, `(batch, embedding_dim)`),
        `imagined` (h', `(batch, embedding_dim)`) and `latents` (R, `(batch, latent_dim)`).
    """

    def __init__(self, embedder, imagination, classifier, **kwargs):
        super().__init__(**kwargs)
        deserialize = lambda layer: keras.layers.deserialize(layer) if isinstance(layer, dict) else layer
        self.embedder = deserialize(embedder)
        self.imagination = deserialize(imagination)
        self.classifier = deserialize(classifier)

    @property
    def modalities(self):
        return self.embedder.modalities

    def build(self, input_shape=None):
        for layer, shape in (
            (self.embedder, None),
            (self.imagination, None),
            (self.classifier, (None, self.imagination.latent_dim)),
        ):
            if not layer.built:
                layer.build(shape)
        self.built = True

    def call(self, inputs, training=None):
        embeddings = self.embedder(inputs, training=training)
        imagination = self.imagination(embeddings)
        return {
            "logits": self.classifier(imagination["latents"], training=training),
            "embeddings": embeddings,
            "imagined": imagination["reconstruction"],
            "latents": imagination["latents"],
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            embedder=keras.layers.serialize(self.embedder),
            imagination=keras.layers.serialize(self.imagination),
            classifier=keras.layers.serialize(self.classifier),
        )
        return config
