"""Keras layers of MMIN; importing this package registers them for deserialization."""

from mmin_tf.layers.cascade_residual_autoencoder import CascadeResidualAutoencoder
from mmin_tf.layers.classifier_head import ClassifierHead
from mmin_tf.layers.modality_embedder import ModalityEmbedder
from mmin_tf.layers.plain_autoencoder import PlainAutoencoder
from mmin_tf.layers.residual_autoencoder import ResidualAutoencoder
from mmin_tf.layers.sequence_encoder import SequenceEncoder
from mmin_tf.layers.text_cnn import TextCNN

__all__ = [
    "CascadeResidualAutoencoder",
    "ClassifierHead",
    "ModalityEmbedder",
    "PlainAutoencoder",
    "ResidualAutoencoder",
    "SequenceEncoder",
    "TextCNN",
]
