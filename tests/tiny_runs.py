"""Tiny datasets and training settings shared by the training, evaluation and export tests."""

from mmin_tf import configs
from mmin_tf import modalities as modalities_lib
from mmin_tf.data import synthetic
from mmin_tf.data.writer import DatasetWriter

MODALITIES = (
    modalities_lib.ModalitySpec("acoustic", "a", 6, modalities_lib.EncoderKind.LSTM),
    modalities_lib.ModalitySpec("visual", "v", 5, modalities_lib.EncoderKind.LSTM),
    modalities_lib.ModalitySpec("text", "t", 7, modalities_lib.EncoderKind.TEXT_CNN),
)

# Flags that make every model tiny and every stage two epochs (one constant, one decaying).
TINY_FLAGS = dict(
    batch_size=16,
    embedding_size=8,
    text_cnn_channels=4,
    text_cnn_kernel_sizes=["2", "3"],
    classifier_hidden_sizes=["8"],
    autoencoder_hidden_sizes=["8", "4"],
    num_blocks=2,
    epochs=1,
    decay_epochs=1,
    teacher_epochs=1,
    teacher_decay_epochs=1,
)


def write_dataset(out_dir, num_utterances=40, seed=0, modalities=MODALITIES):
    """A synthetic IEMOCAP-shaped dataset with tiny dims and lengths; returns its DatasetInfo."""
    config = synthetic.SyntheticConfig(
        num_utterances=num_utterances,
        modalities=modalities,
        mean_lengths=tuple((spec.name, 6) for spec in modalities),
        seed=seed,
    )
    with DatasetWriter(
        str(out_dir), name="tiny", modalities=modalities, label_names=synthetic.IEMOCAP_LABEL_NAMES,
        utterances_per_shard=16,
    ) as writer:
        for utterance in synthetic.generate(config):
            writer.write(utterance)
        return writer.finish()


def tiny_config(data_dir, output_dir, kind=configs.ModelKind.BASELINE, **overrides) -> configs.TrainConfig:
    """The TrainConfig equivalent of TINY_FLAGS for in-process runs."""
    stage = configs.OptimizationConfig(epochs=1, decay_epochs=1, learning_rate=1e-3, beta_1=0.9, clip_norm=1.0)
    model = configs.ModelConfig(
        kind=kind, embedding_size=8, text_cnn_channels=4, text_cnn_kernel_sizes=(2, 3),
        classifier_hidden_sizes=(8,), autoencoder_hidden_sizes=(8, 4), num_blocks=2,
    )
    settings = dict(
        output_dir=str(output_dir),
        data=configs.DataConfig(data_dir=str(data_dir), fold="1", batch_size=16),
        model=model,
        optimization=stage,
        teacher_optimization=stage,
    )
    return configs.TrainConfig(**{**settings, **overrides})
