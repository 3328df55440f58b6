"""Tests for `mmin_tf.models.construction`: served models and trainers from typed configs."""

import keras
import numpy as np
import pytest

from mmin_tf.configs import EncoderRows, LossConfig, ModelKind
from mmin_tf.layers import (
    CascadeResidualAutoencoder,
    ModalityEmbedder,
    PlainAutoencoder,
    SequenceEncoder,
    TextCNN,
)
from mmin_tf.models import construction
from mmin_tf.models.mmin import MMIN
from mmin_tf.models.trainer import MMINTrainer
from mmin_tf.models.utterance_fusion import UtteranceFusion
from tests import layer_checks
from tests.layer_checks import variable_ids

MODALITIES = layer_checks.TINY_MODALITIES
NUM_CLASSES = 4
NORMALIZATION = {"acoustic": {"mean": [0.5, -1.0, 2.0], "std": [1.5, 0.5, 2.0]}}
_config = layer_checks.tiny_model_config


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _trainer(kind=ModelKind.MMIN, **overrides):
    config = _config(kind, **overrides)
    return layer_checks.build_teacher_and_trainer(MODALITIES, NUM_CLASSES, config, NORMALIZATION)


def test_build_encoder_follows_modality_kind_and_config():
    config = _config(text_cnn_dropout=0.25)

    acoustic = construction.build_encoder(MODALITIES[0], config)
    text = construction.build_encoder(MODALITIES[2], config)

    assert isinstance(acoustic, SequenceEncoder)
    assert (acoustic.hidden_size, acoustic.use_cudnn, acoustic.name) == (8, False, "acoustic_encoder")
    assert isinstance(text, TextCNN)
    assert (text.channels, text.kernel_sizes, text.embedding_size, text.dropout) == (4, (2, 3), 8, 0.25)


def test_build_embedder_is_built_with_normalization():
    embedder = construction.build_embedder(MODALITIES, _config(), NORMALIZATION)

    assert isinstance(embedder, ModalityEmbedder) and embedder.built
    assert embedder.output_size == 3 * 8
    assert embedder.normalization == NORMALIZATION
    assert set(embedder.normalizers) == {"acoustic"}


@pytest.mark.parametrize("encoder_rows", list(EncoderRows))
def test_build_embedder_follows_encoder_rows(encoder_rows):
    embedder = construction.build_embedder(MODALITIES, _config(encoder_rows=encoder_rows), NORMALIZATION)

    assert embedder.encoder_rows is encoder_rows


def test_model_config_rejects_encoder_rows_that_are_no_choice():
    with pytest.raises(TypeError, match=r"`encoder_rows` must be an EncoderRows. Received: 'all'"):
        _config(encoder_rows="all")


@pytest.mark.parametrize("dropout, expected", [(None, 0.3), (0.1, 0.1)])
def test_build_utterance_fusion_classifier_dropout(dropout, expected):
    model = construction.build_utterance_fusion(
        MODALITIES, NUM_CLASSES, _config(ModelKind.BASELINE, classifier_dropout=0.3), classifier_dropout=dropout
    )

    assert isinstance(model, UtteranceFusion) and model.built
    assert model.classifier.dropout == expected
    assert model.classifier.num_classes == NUM_CLASSES
    assert model.classifier.hidden_sizes == (8,)


def test_build_imagination_is_a_cascade_for_mmin():
    imagination = construction.build_imagination(24, _config(ModelKind.MMIN), "forward_imagination")

    assert isinstance(imagination, CascadeResidualAutoencoder)
    assert (imagination.input_dim, imagination.num_blocks, imagination.hidden_sizes) == (24, 2, (8, 4))
    assert imagination.use_transition and imagination.latent_dim == 2 * 4
    assert imagination.name == "forward_imagination"


@pytest.mark.parametrize("use_transition", [True, False])
def test_build_imagination_is_a_matched_plain_autoencoder_for_mmin_ae(use_transition):
    config = _config(ModelKind.MMIN_AE, use_transition=use_transition)
    cascade = construction.build_imagination(24, _config(ModelKind.MMIN, use_transition=use_transition), "c")
    cascade.build()

    imagination = construction.build_imagination(24, config, "forward_imagination")
    imagination.build()

    assert isinstance(imagination, PlainAutoencoder)
    assert imagination.latent_dim == cascade.latent_dim == 2 * 4
    assert imagination.input_dim == 24
    assert imagination.hidden_sizes == (
        PlainAutoencoder.matched_hidden_size(24, cascade.latent_dim, cascade.count_params()),
    )
    # Closest single width: within one width-step of parameters of the cascade.
    step = PlainAutoencoder.parameter_count(24, 8, (2,)) - PlainAutoencoder.parameter_count(24, 8, (1,))
    assert abs(imagination.count_params() - cascade.count_params()) <= step / 2


def test_build_mmin_trainer_rejects_non_mmin_kind():
    teacher = construction.build_utterance_fusion(MODALITIES, NUM_CLASSES, _config(ModelKind.BASELINE))
    with pytest.raises(ValueError, match=r"Not an MMIN model kind: augmented"):
        construction.build_mmin_trainer(
            teacher, NUM_CLASSES, _config(ModelKind.AUGMENTED), LossConfig(), 1.0, True
        )


def test_build_mmin_trainer_wires_model_teacher_and_backward():
    teacher, trainer = _trainer(ModelKind.MMIN)

    assert isinstance(trainer, MMINTrainer) and isinstance(trainer.model, MMIN)
    assert trainer.model.built
    assert trainer.teacher is teacher.embedder and not trainer.teacher.trainable
    assert isinstance(trainer.model.imagination, CascadeResidualAutoencoder)
    assert trainer.model.classifier.num_classes == NUM_CLASSES
    assert trainer.model.embedder is not teacher.embedder


def test_nocycle_has_no_backward_network():
    _, trainer = _trainer(ModelKind.MMIN_NOCYCLE)

    assert trainer.backward is None


def test_shared_autoencoders_make_backward_the_forward_network():
    _, trainer = _trainer(ModelKind.MMIN, share_autoencoders=True)

    assert trainer.backward is trainer.model.imagination


@pytest.mark.parametrize(
    "kind, imagination_class",
    [(ModelKind.MMIN, CascadeResidualAutoencoder), (ModelKind.MMIN_AE, PlainAutoencoder)],
)
def test_backward_is_a_distinct_network_by_default(kind, imagination_class):
    _, trainer = _trainer(kind)
    forward, backward = trainer.model.imagination, trainer.backward

    assert isinstance(backward, imagination_class) and backward is not forward
    assert backward.built and backward.count_params() == forward.count_params()
    assert not variable_ids(backward.variables) & variable_ids(forward.variables)
    assert backward.get_config()["name"] == "backward_imagination"


def test_student_encoders_start_from_teacher_weights_in_new_variables():
    teacher, trainer = _trainer()
    student = trainer.model.embedder

    assert student.normalization == teacher.embedder.normalization
    teacher_weights = teacher.embedder.get_weights()
    student_weights = student.get_weights()
    assert len(student_weights) == len(teacher_weights) > 0
    for student_array, teacher_array in zip(student_weights, teacher_weights):
        np.testing.assert_array_equal(student_array, teacher_array)
    assert not variable_ids(student.variables) & variable_ids(teacher.embedder.variables)

    for variable in student.trainable_variables:
        variable.assign(variable + 1.0)

    for teacher_array, teacher_variable in zip(teacher_weights, teacher.embedder.weights):
        np.testing.assert_array_equal(teacher_variable.numpy(), teacher_array)


def test_student_embedder_outputs_equal_teacher_before_training():
    teacher, trainer = _trainer()
    rng = np.random.default_rng(0)
    inputs = {}
    for spec in MODALITIES:
        inputs[spec.name] = rng.normal(size=(3, 4, spec.feature_dim)).astype(np.float32)
        inputs[spec.length_key] = np.array([4, 0, 2], np.int32)

    np.testing.assert_allclose(
        trainer.model.embedder(inputs).numpy(), teacher.embedder(inputs).numpy(), atol=1e-6
    )
