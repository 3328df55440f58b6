"""Tests of `python -m mmin_tf.features.train_face_model`: its pieces, then the command on tiny CSVs."""

import contextlib
import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
from unittest import mock

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import app, flags
from absl.testing import flagsaver

from mmin_tf.data.format import DataError
from mmin_tf.features import ferplus
from mmin_tf.features.denseface import Denseface
from tests.features.test_ferplus import NOT_A_FACE, TIE, UNKNOWN, write_release

MODULE = "mmin_tf.features.train_face_model"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_FLAGS = dict(layers_per_block=2, batch_size=4, epochs=2)


@pytest.fixture(scope="module")
def entry():
    """The entry point module, its flags in a private `FlagValues` (`.FLAGS`).

    Its `--seed`, `--epochs`, `--batch_size`, ... would clash with `mmin_tf.train`'s in the global
    FLAGS, which other tests import into the same process (as tests/benchmark_loader.py explains).
    """
    spec = importlib.util.find_spec(MODULE)
    module = importlib.util.module_from_spec(spec)
    private = flags.FlagValues()
    with contextlib.ExitStack() as stack:
        for attribute in dir(flags):
            if attribute.startswith("DEFINE"):
                define = functools.partial(getattr(flags, attribute), flag_values=private)
                stack.enter_context(mock.patch.object(flags, attribute, define))
        sys.modules[MODULE] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    private.mark_as_parsed()
    module.FLAGS = private
    return module


@contextlib.contextmanager
def _flags(entry, **values):
    """`flagsaver` on the module's own `FlagValues`: set `values`, restore everything after."""
    saved = flagsaver.save_flag_values(entry.FLAGS)
    try:
        for name, value in values.items():
            setattr(entry.FLAGS, name, value)
        yield
    finally:
        flagsaver.restore_flag_values(saved, entry.FLAGS)


def _run(entry, **values):
    with _flags(entry, **values):
        entry.main(["train_face_model"])
    with open(values["output"] + ".json") as f:
        return json.load(f)


def tiny_rows():
    """8 training images (plus one of each excluded kind), 4 validation and 4 test images; each
    split's labels cycle through the 8 emotions (8 votes for it, 2 for neutral)."""
    def votes(label):
        counts = [0] * 10
        counts[0] = 2
        counts[label] += 8
        return tuple(counts)

    rows = []
    for usage, count in (("Training", 8), ("PublicTest", 4), ("PrivateTest", 4)):
        rows += [(usage, f"fer{len(rows) + i:07d}.png", votes(i % 8)) for i in range(count)]
    return rows + [
        ("Training", "", NOT_A_FACE), ("Training", "tie.png", TIE), ("Training", "u.png", UNKNOWN),
        ("PublicTest", "nf.png", NOT_A_FACE),
    ]


@pytest.fixture(scope="module")
def ferplus_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("ferplus"))
    write_release(directory, tiny_rows())
    return directory


@pytest.fixture(scope="module")
def trained(entry, ferplus_dir, tmp_path_factory):
    """A finished tiny run: (output path, metrics)."""
    output = str(tmp_path_factory.mktemp("face") / "models" / "face.keras")
    return output, _run(entry, ferplus_dir=ferplus_dir, output=output, **TINY_FLAGS)


def _original_augmentation(image, row_offset, column_offset, flip, angle, fill_value):
    """MMIN's data_providers/fer.py `augment_image` with its random draws given (and its zeros,
    which were the mean of normalised images, as `fill_value`)."""
    padded = np.full((80, 80, 1), fill_value, np.float32)
    padded[8:72, 8:72] = image
    cropped = padded[row_offset:row_offset + 64, column_offset:column_offset + 64]
    if flip:
        cropped = cropped[:, ::-1, :]
    rotation = cv2.getRotationMatrix2D((64, 64), angle, 1.0)
    return cv2.warpAffine(np.ascontiguousarray(cropped), rotation, (64, 64), borderValue=fill_value)[..., None]


def _smooth_image():
    rows, columns = np.mgrid[0:64, 0:64]
    return (1.5 * rows + 2.0 * columns + 20.0 * np.sin(columns / 7.0)).astype(np.float32)[..., None]


# Pieces -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row_offset, column_offset, flip, angle",
    [(8, 8, False, 0), (3, 12, True, 0), (8, 8, False, 15), (0, 15, True, -13), (5, 2, False, 7)],
)
def test_transform_matches_the_original_augmentation(entry, row_offset, column_offset, flip, angle):
    image = _smooth_image()
    expected = _original_augmentation(image, row_offset, column_offset, flip, angle, 131.0)

    actual = entry.transform_image(
        tf.constant(image), tf.constant(row_offset), tf.constant(column_offset), tf.constant(flip),
        tf.constant(angle), 131.0,
    ).numpy()

    # cv2 quantises bilinear weights to 1/32: up to ~2 gray levels where the image meets the fill.
    np.testing.assert_allclose(actual, expected, atol=2.5)
    assert np.mean(np.abs(actual - expected)) < 0.1


def test_augmentation_draws_follow_the_seed(entry):
    image = tf.constant(_smooth_image())
    augment = lambda seed: entry.augment_image(image, tf.constant(seed, tf.int64), 131.0).numpy()

    first = augment([1, 2])

    assert first.shape == (64, 64, 1) and first.dtype == np.float32
    np.testing.assert_array_equal(augment([1, 2]), first)
    assert not np.allclose(augment([3, 4]), first)
    assert not np.allclose(first, image.numpy())


def test_training_dataset_reshuffles_and_reaugments_every_epoch_the_same_way_each_run(entry):
    images = np.stack([np.full((64, 64, 1), value, np.float32) for value in range(10)]) + _smooth_image()
    labels = np.arange(10, dtype=np.int32)
    epochs = lambda augment: [
        [batch for batch in dataset] for dataset in [entry.training_dataset(images, labels, 4, 7, augment, 131.0)] * 2
    ]

    first, second = epochs(True)
    again, _ = epochs(True)
    plain, _ = epochs(False)

    assert [tuple(images.shape) for images, _ in first] == [(4, 64, 64, 1)] * 2  # full batches only
    order = lambda epoch: np.concatenate([labels.numpy() for _, labels in epoch])
    assert not np.array_equal(order(first), order(second))
    by_label = lambda epoch: {
        int(label): image for images, labels in epoch for image, label in zip(images.numpy(), labels.numpy())
    }
    first_images, second_images = by_label(first), by_label(second)
    for label in set(first_images) & set(second_images):
        assert not np.allclose(first_images[label], second_images[label]), label
    for (images_a, labels_a), (images_b, labels_b) in zip(first, again):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    for batch_images, batch_labels in plain:  # no augmentation: the images as they were
        np.testing.assert_array_equal(batch_images.numpy(), images[batch_labels.numpy()])


def test_learning_rate_is_divided_by_ten_at_each_decay_epoch(entry):
    config = entry.FaceTrainingConfig("a.csv", "b.csv", "face.keras")

    rates = [config.learning_rate_at(epoch) for epoch in range(100)]

    assert rates[:49] == [1e-3] * 49  # epochs 1..49
    assert [math.isclose(rate, 1e-4) for rate in rates[49:74]] == [True] * 25
    assert [math.isclose(rate, 1e-5) for rate in rates[74:]] == [True] * 26


def test_weight_penalty_is_half_the_squared_norm_times_the_decay(entry):
    variables = [tf.Variable([[1.0, -2.0]]), tf.Variable([3.0])]

    assert math.isclose(float(entry.weight_penalty(variables, 1e-4)), 1e-4 * (1 + 4 + 9) / 2, rel_tol=1e-6)


def test_flag_defaults_are_the_original_recipe(entry):
    with _flags(entry, ferplus_dir="/data/ferplus", output="face.keras"):
        config = entry.config_from_flags()

    assert config == entry.FaceTrainingConfig(
        "/data/ferplus/fer2013.csv", "/data/ferplus/fer2013new.csv", "face.keras"
    )
    assert (config.epochs, config.batch_size, config.learning_rate, config.learning_rate_decay_epochs) == (
        100, 64, 1e-3, (50, 75)
    )
    assert (config.momentum, config.weight_decay, config.augment) == (0.9, 1e-4, True)
    model = config.build_model()
    assert (model.depth, model.growth_rate, model.num_blocks, model.compression, model.feature_dim) == (
        100, 12, 3, 0.5, 342
    )


def test_csv_flags_override_the_directory(entry):
    with _flags(entry, fer2013_csv="/x/pixels.csv", ferplus_csv="/y/labels.csv", output="face.keras"):
        config = entry.config_from_flags()

    assert (config.fer2013_csv, config.ferplus_csv) == ("/x/pixels.csv", "/y/labels.csv")


# The command ------------------------------------------------------------------------------------


def test_command_writes_the_best_epoch_model_and_its_metrics(trained):
    output, metrics = trained

    model = keras.models.load_model(output)
    assert isinstance(model, Denseface)
    assert model.layers_per_block == 2 and model.feature_dim == 48
    assert metrics["config"]["epochs"] == 2 and metrics["config"]["layers_per_block"] == 2
    assert [epoch["epoch"] for epoch in metrics["epochs"]] == [1, 2]
    accuracies = [epoch["validation_accuracy"] for epoch in metrics["epochs"]]
    assert metrics["best_epoch"] == 1 + accuracies.index(max(accuracies))
    assert metrics["best_validation_accuracy"] == max(accuracies)
    assert metrics["label_names"] == list(ferplus.EMOTIONS)
    assert metrics["splits"]["train"]["num_images"] == 8
    assert metrics["splits"]["train"]["label_counts"] == {name: 1 for name in ferplus.EMOTIONS}
    assert metrics["splits"]["train"]["exclusions"] == {
        "no_image_name": 1, "no_majority": 1, "unknown": 1, "not_a_face": 0
    }
    assert metrics["splits"]["validation"]["exclusions"]["not_a_face"] == 1
    assert metrics["num_parameters"] == model.count_params() and metrics["feature_dim"] == 48
    assert sorted(os.listdir(os.path.dirname(output))) == ["face.keras", "face.keras.json"]

    # The saved model is the best epoch's, and the one the test accuracy was measured on.
    splits = ferplus.read_ferplus(metrics["config"]["fer2013_csv"], metrics["config"]["ferplus_csv"])
    accuracy = lambda split: float(np.mean(np.argmax(model(split.images)["logits"].numpy(), -1) == split.labels))
    assert math.isclose(accuracy(splits["validation"]), metrics["best_validation_accuracy"], abs_tol=1e-6)
    assert math.isclose(accuracy(splits["test"]), metrics["test_accuracy"], abs_tol=1e-6)


def test_same_seed_same_model(entry, ferplus_dir, trained, tmp_path):
    output, metrics = trained

    again = _run(entry, ferplus_dir=ferplus_dir, output=str(tmp_path / "again.keras"), **TINY_FLAGS)

    assert again["epochs"] == metrics["epochs"]
    weights = lambda path: keras.models.load_model(path).weights
    for first, second in zip(weights(output), weights(tmp_path / "again.keras")):
        np.testing.assert_array_equal(first.numpy(), second.numpy())


def test_bad_input_exits_with_one_line_naming_the_file(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-m", MODULE, f"--ferplus_dir={tmp_path}", f"--output={tmp_path / 'face.keras'}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 1
    assert f"{MODULE}: error: {tmp_path / 'fer2013new.csv'}: no such file" in result.stderr
    assert os.listdir(tmp_path) == []


def test_data_errors_reach_the_caller_and_leave_nothing(entry, ferplus_dir, tmp_path):
    bad = str(tmp_path / "bad")
    write_release(bad, tiny_rows())
    with open(os.path.join(bad, "fer2013.csv"), "a") as f:
        f.write("0,1 2 3,Training\n")

    with pytest.raises(DataError, match=r"fer2013\.csv has more image rows"):
        _run(entry, ferplus_dir=bad, output=str(tmp_path / "out" / "face.keras"), **TINY_FLAGS)
    assert not os.path.exists(tmp_path / "out")


def test_rejects_a_split_without_images(entry, tmp_path):
    write_release(tmp_path, [row for row in tiny_rows() if row[0] != "PrivateTest"])
    with pytest.raises(ValueError, match=r"No labelled FER\+ images in the \['test'\] split"):
        _run(entry, ferplus_dir=str(tmp_path), output=str(tmp_path / "face.keras"), **TINY_FLAGS)


def test_rejects_fewer_training_images_than_a_batch(entry, ferplus_dir, tmp_path):
    with pytest.raises(ValueError, match=r"8 training images make no full batch of `batch_size`=16"):
        _run(entry, ferplus_dir=ferplus_dir, output=str(tmp_path / "face.keras"), **{**TINY_FLAGS, "batch_size": 16})


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(output="face.keras"), r"--ferplus_dir is required unless --fer2013_csv and --ferplus_csv are given"),
        (dict(fer2013_csv="a.csv", output="face.keras"), r"--ferplus_dir is required"),
        (dict(ferplus_dir="/d"), r"--output is required"),
        (dict(ferplus_dir="/d", output="face.keras", learning_rate_decay_epochs=["50", "x"]),
         r"--learning_rate_decay_epochs takes comma-separated integers. Received: 50,x"),
    ],
)
def test_usage_errors(entry, values, message):
    with _flags(entry, **values), pytest.raises(app.UsageError, match=message):
        entry.config_from_flags()


def test_rejects_positional_arguments(entry):
    with pytest.raises(app.UsageError, match=r"Unexpected arguments: \['extra'\]"):
        entry.main(["train_face_model", "extra"])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("output", "face.h5", r"`output` must be a .keras file. Received: output='face.h5'"),
        ("epochs", 0, r"`epochs` must be >= 1. Received: epochs=0"),
        ("batch_size", 0, r"`batch_size` must be >= 1. Received: batch_size=0"),
        ("learning_rate", 0.0, r"`learning_rate` must be > 0. Received: learning_rate=0.0"),
        ("learning_rate_decay_epochs", (0, 75),
         r"`learning_rate_decay_epochs` are counted from 1. Received: learning_rate_decay_epochs=\(0, 75\)"),
        ("momentum", 1.0, r"`momentum` must be in \[0, 1\). Received: momentum=1.0"),
        ("weight_decay", -1e-4, r"`weight_decay` must be >= 0. Received: weight_decay=-0.0001"),
    ],
)
def test_config_rejects_bad_settings(entry, field, value, message):
    settings = dict(fer2013_csv="a.csv", ferplus_csv="b.csv", output="face.keras")
    with pytest.raises(ValueError, match=message):
        entry.FaceTrainingConfig(**{**settings, field: value})
