"""Keras layers of MMIN and MCTN; importing this package registers them for deserialization."""

from mmin_tf.layers.attention_decoder import AttentionDecoder
from mmin_tf.layers.cascade_residual_autoencoder import CascadeResidualAutoencoder
from mmin_tf.layers.classifier_head import ClassifierHead
from mmin_tf.layers.modality_embedder import ModalityEmbedder
from mmin_tf.layers.plain_autoencoder import PlainAutoencoder
from mmin_tf.layers.recurrent_attention_pooling import RecurrentAttentionPooling
from mmin_tf.layers.residual_autoencoder import ResidualAutoencoder
from mmin_tf.layers.sequence_encoder import SequenceEncoder
from mmin_tf.layers.sequence_resampler import SequenceResampler
from mmin_tf.layers.text_cnn import TextCNN
from mmin_tf.layers.translation_encoder import TranslationEncoder

__all__ = [
    "AttentionDecoder",
    "CascadeResidualAutoencoder",
    "ClassifierHead",
    "ModalityEmbedder",
    "PlainAutoencoder",
    "RecurrentAttentionPooling",
    "ResidualAutoencoder",
    "SequenceEncoder",
    "SequenceResampler",
    "TextCNN",
    "TranslationEncoder",
]
