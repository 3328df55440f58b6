"""Shared pytest fixtures: small data built once per test session."""

import pytest

from mmin_tf import modalities as modalities_lib


@pytest.fixture(scope="session")
def tiny_modalities():
    """Acoustic 3 / visual 4 / text 5: every dim different, so a mix-up changes a shape."""
    return (
        modalities_lib.ModalitySpec("acoustic", "a", 3, modalities_lib.EncoderKind.LSTM),
        modalities_lib.ModalitySpec("visual", "v", 4, modalities_lib.EncoderKind.LSTM),
        modalities_lib.ModalitySpec("text", "t", 5, modalities_lib.EncoderKind.TEXT_CNN),
    )


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, tiny_modalities):
    """A 40-utterance synthetic dataset (5 sessions x 2 speakers, 10 folds) in 5 shards.

    Mean lengths acoustic 20 / visual 8 / text 6 frames: long enough that acoustic spreads over
    several length buckets. Written once per session; tests must not modify it.

    Returns:
        (data_dir, DatasetInfo).
    """
    from mmin_tf.data import synthetic
    from mmin_tf.data.writer import DatasetWriter

    data_dir = str(tmp_path_factory.mktemp("tiny_dataset") / "data")
    config = synthetic.SyntheticConfig(
        num_utterances=40,
        modalities=tiny_modalities,
        mean_lengths=(("acoustic", 20), ("visual", 8), ("text", 6)),
        seed=0,
    )
    with DatasetWriter(
        data_dir, name="tiny", modalities=tiny_modalities,
        label_names=synthetic.IEMOCAP_LABEL_NAMES, utterances_per_shard=8,
    ) as writer:
        for utterance in synthetic.generate(config):
            writer.write(utterance)
        info = writer.finish()
    return data_dir, info


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """A finished tiny MMIN run (its teacher trained first), shared by the export and serving tests."""
    from mmin_tf import configs
    from mmin_tf.training import run_training
    from tests import tiny_runs

    root = tmp_path_factory.mktemp("mmin_run")
    tiny_runs.write_dataset(root / "data")
    output_dir = root / "mmin"
    run_training(tiny_runs.tiny_config(root / "data", output_dir, kind=configs.ModelKind.MMIN))
    return str(output_dir)


@pytest.fixture(scope="session")
def exported(run_dir, tmp_path_factory):
    """`run_dir` exported as version 1 of a TF Serving model base path."""
    from mmin_tf import export

    return export.export_run(run_dir, str(tmp_path_factory.mktemp("saved_models") / "mmin"))
