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


@pytest.fixture(scope="session")
def bert_preset(tmp_path_factory):
    """A tiny random keras-hub BERT preset directory (1 layer, 16 wide, 12 positions)."""
    from tests import media_fixtures

    return media_fixtures.tiny_bert_preset(tmp_path_factory.mktemp("bert") / "preset")


@pytest.fixture(scope="session")
def face_model(tmp_path_factory):
    """A tiny random Denseface (2 layers per block) saved as .keras."""
    from tests import media_fixtures

    return media_fixtures.tiny_face_model(tmp_path_factory.mktemp("face") / "face.keras")


@pytest.fixture(scope="session")
def face_video(tmp_path_factory):
    """An MJPG video at 10 fps, 256 x 512 split screen: 5 frames with the astronaut's face on the
    right half, then 3 frames without a face."""
    from tests import media_fixtures as fixtures

    frames = [fixtures.side_by_side(fixtures.blank_frame(), fixtures.face_image()) for _ in range(5)]
    frames += [fixtures.side_by_side(fixtures.blank_frame(), fixtures.blank_frame()) for _ in range(3)]
    return fixtures.write_video(tmp_path_factory.mktemp("video") / "face.avi", frames, fps=10)


@pytest.fixture(scope="session")
def media_export(tmp_path_factory, bert_preset, face_model, face_video):
    """A tiny MMIN trained on features extracted from media and exported: `(version_dir, records)`."""
    from mmin_tf import configs, export
    from mmin_tf.extraction import media_dataset
    from mmin_tf.training import run_training
    from tests import media_fixtures, tiny_runs

    root = tmp_path_factory.mktemp("media_run")
    records = media_fixtures.media_records(root, face_video)
    data_dir = str(root / "data")
    media_dataset.extract_dataset(
        records, data_dir, modalities=("acoustic", "visual", "text"), bert_preset=bert_preset,
        face_model=face_model, utterances_per_shard=6,
        beam_options=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    run_training(tiny_runs.tiny_config(data_dir, root / "mmin", kind=configs.ModelKind.MMIN,
                                       data=configs.DataConfig(data_dir=data_dir, fold="1", batch_size=4)))
    return export.export_run(str(root / "mmin"), str(root / "saved_models" / "mmin")), records
