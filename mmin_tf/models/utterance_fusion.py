"""Utterance-fusion classifier: the paper's baselines and MMIN's pretrained teacher."""

import keras


import mmin_tf.layers  # noqa: F401  (registers the layers for deserialization)


@keras.saving.register_keras_serializable(package="mmin_tf")
class UtteranceFusion(keras.Model):
    """Encoders -> concatenated embeddings -> classifier (paper Fig. 2(b), §4.4).

    Trained on full-modality data it is the full-modality baseline and MMIN's teacher; trained on
    the full + missing-modality conditions it is the augmented baseline; trained on one condition,
    a matched-modality baseline (Table 7). One model, three ways to train it.

    Args:
        embedder: `ModalityEmbedder`.
        classifier: `ClassifierHead`.

    Call arguments:
        inputs: dict of per-modality features `(batch, time, dim)` and lengths `(batch,)`.
        training: enables dropout.

    Returns:
        Dict with `logits` `(batch, num_classes)` and `embeddings` `(batch, embedding_dim)`.
    """

    def __init__(self, embedder, classifier, **kwargs):
        super().__init__(**kwargs)
        self.embedder = keras.layers.deserialize(embedder) if isinstance(embedder, dict) else embedder
        self.classifier = (
            keras.layers.deserialize(classifier) if isinstance(classifier, dict) else classifier
        )

    @property
    def modalities(self):
        return self.embedder.modalities

    def build(self, input_shape=None):
        if not self.embedder.built:
            self.embedder.build()
        if not self.classifier.built:
            self.classifier.build((None, self.embedder.output_size))
        self.built = True

    def call(self, inputs, training=None):
        embeddings = self.embedder(inputs, training=training)
        return {"logits": self.classifier(embeddings, training=training), "embeddings": embeddings}

    def get_config(self):
        config = super().get_config()
        config.update(
            embedder=keras.layers.serialize(self.embedder),
            classifier=keras.layers.serialize(self.classifier),
        )
        return config
