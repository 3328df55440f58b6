"""Builds the served models and their trainers from typed configs."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import keras
import numpy as np

from mmin_tf import modalities as modalities_lib
from mmin_tf.configs import LossConfig, MCTNConfig, ModelConfig, ModelKind
from mmin_tf.layers import (
    AttentionDecoder,
    CascadeResidualAutoencoder,
    ClassifierHead,
    ModalityEmbedder,
    PlainAutoencoder,
    RecurrentAttentionPooling,
    SequenceEncoder,
    TextCNN,
    TranslationEncoder,
)
from mmin_tf.models import initialization
from mmin_tf.models.mctn import MCTN
from mmin_tf.models.mctn_trainer import MCTNTrainer
from mmin_tf.models.mmin import MMIN
from mmin_tf.models.trainer import MMINTrainer
from mmin_tf.models.utterance_fusion import UtteranceFusion

_CUDNN = {"auto": "auto", "true": True, "false": False}


def build_encoder(spec: modalities_lib.ModalitySpec, config: ModelConfig) -> keras.layers.Layer:
    if spec.encoder is modalities_lib.EncoderKind.LSTM:
        return SequenceEncoder(config.embedding_size, use_cudnn=_CUDNN[config.use_cudnn], name=f"{spec.name}_encoder")
    return TextCNN(
        channels=config.text_cnn_channels,
        kernel_sizes=config.text_cnn_kernel_sizes,
        embedding_size=config.embedding_size,
        dropout=config.text_cnn_dropout,
        name=f"{spec.name}_encoder",
    )


def build_embedder(
    modalities: Sequence[modalities_lib.ModalitySpec],
    config: ModelConfig,
    normalization: Optional[Mapping[str, dict]] = None,
) -> ModalityEmbedder:
    embedder = ModalityEmbedder(
        modalities,
        {spec.name: build_encoder(spec, config) for spec in modalities},
        normalization,
        encoder_rows=config.encoder_rows,
        name="embedder",
    )
    embedder.build()
    return embedder


def build_utterance_fusion(
    modalities, num_classes: int, config: ModelConfig, normalization=None, classifier_dropout=None
) -> UtteranceFusion:
    """The baseline / teacher. `classifier_dropout` overrides the config's (teacher stage)."""
    embedder = build_embedder(modalities, config, normalization)
    classifier = ClassifierHead(
        num_classes,
        config.classifier_hidden_sizes,
        config.classifier_dropout if classifier_dropout is None else classifier_dropout,
        name="classifier",
    )
    model = UtteranceFusion(embedder, classifier, name="utterance_fusion")
    model.build()
    _initialize(model, config)
    return model


def _initialize(layer, config: ModelConfig) -> None:
    """Redraws `layer`'s weights by `config.initialization`, seeded from NumPy's global generator
    (which `seeding.set_seed` seeds), so a run's seed fixes them."""
    if config.initialization is not initialization.Initialization.KERAS:
        initialization.initialize(layer, config.initialization, seed=int(np.random.randint(2**31 - 1)))


def build_imagination(input_dim: int, config: ModelConfig, name: str) -> keras.layers.Layer:
    """The CRA, or for MMIN-AE a plain autoencoder with the CRA's parameter count and latent size."""
    cascade = CascadeResidualAutoencoder(
        input_dim, config.num_blocks, config.autoencoder_hidden_sizes, config.use_transition, name=name
    )
    if config.kind is not ModelKind.MMIN_AE:
        return cascade
    cascade.build()
    width = PlainAutoencoder.matched_hidden_size(input_dim, cascade.latent_dim, cascade.count_params())
    return PlainAutoencoder(input_dim, cascade.latent_dim, (width,), name=name)


def student_embedder(teacher: ModalityEmbedder, config: ModelConfig) -> ModalityEmbedder:
    """A trainable copy of the teacher's embedder (same normalization, weights copied)."""
    student = build_embedder(teacher.modalities, config, teacher.normalization)
    student.set_weights(teacher.get_weights())
    return student


def build_mmin_trainer(
    teacher: UtteranceFusion,
    num_classes: int,
    config: ModelConfig,
    loss_config: LossConfig,
    clip_norm: float,
    finetune_encoders: bool,
    absent_modalities: bool = False,
) -> MMINTrainer:
    """MMIN with its encoders copied from `teacher`, the rest initialised by `config.initialization`,
    with its backward network (unless NoCycle)."""
    if not config.kind.is_mmin:
        raise ValueError(f"Not an MMIN model kind: {config.kind.value}")
    embedder = student_embedder(teacher.embedder, config)
    imagination = build_imagination(embedder.output_size, config, "forward_imagination")
    classifier = ClassifierHead(num_classes, config.classifier_hidden_sizes, config.classifier_dropout, name="classifier")
    model = MMIN(embedder, imagination, classifier, name="mmin")
    model.build()
    _initialize(imagination, config)
    _initialize(classifier, config)
    if config.kind is ModelKind.MMIN_NOCYCLE:
        backward = None
    elif config.share_autoencoders:
        backward = imagination
    else:
        backward = build_imagination(embedder.output_size, config, "backward_imagination")
        backward.build()
        _initialize(backward, config)
    return MMINTrainer(
        model, teacher.embedder, backward, loss_config, clip_norm=clip_norm, finetune_encoders=finetune_encoders,
        absent_modalities=absent_modalities,
    )


def build_mctn(
    modalities,
    num_classes: int,
    condition: str,
    config: ModelConfig,
    mctn: MCTNConfig,
    normalization=None,
) -> MCTN:
    """The served MCTN of one missing-modality `condition` (e.g. "at"): one `TranslationEncoder`
    per missing modality, the pooling and the classifier, initialised by `config.initialization`."""
    target_count = len(modalities) - len(modalities_lib.parse_condition(condition, modalities).name)
    cudnn = _CUDNN[config.use_cudnn]
    model = MCTN(
        modalities,
        condition,
        [TranslationEncoder(mctn.hidden_size, use_cudnn=cudnn, name=f"encoder_{level + 1}")
         for level in range(target_count)],
        RecurrentAttentionPooling(mctn.hidden_size, use_cudnn=cudnn, name="pooling"),
        ClassifierHead(num_classes, config.classifier_hidden_sizes, config.classifier_dropout, name="classifier"),
        steps=mctn.steps,
        normalization=normalization,
        name="mctn",
    )
    model.build()
    _initialize(model, config)
    return model


def build_mctn_trainer(
    model: MCTN, config: ModelConfig, mctn: MCTNConfig, classification_weight: float, clip_norm: float
) -> MCTNTrainer:
    """`model`'s trainer with its training-only decoders (level 1: `model.translation_width`
    features, for the translation and the back translation; then each further missing modality)."""
    widths = [model.translation_width] + [spec.feature_dim for spec in model.target_specs[1:]]
    decoders = []
    for level, width in enumerate(widths):
        decoder = AttentionDecoder(width, model.steps, mctn.hidden_size, name=f"decoder_{level + 1}")
        decoder.build((None, model.steps, model.encoders[level].hidden_size))
        _initialize(decoder, config)
        decoders.append(decoder)
    return MCTNTrainer(model, decoders, mctn, classification_weight=classification_weight, clip_norm=clip_norm)
