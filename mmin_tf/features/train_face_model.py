"""Trains the Denseface model (MMIN's visual feature extractor) on FER+.

    python -m mmin_tf.features.train_face_model --ferplus_dir=DIR --output=face.keras \
        [--epochs=100 --batch_size=64 --learning_rate=0.001 --seed=0 --layers_per_block=16]

DIR holds `fer2013.csv` (Kaggle's FER2013) and `fer2013new.csv` (Microsoft's FER+ labels);
`--fer2013_csv` / `--ferplus_csv` name files elsewhere. Labels are FER+'s majority votes (see
`mmin_tf.features.ferplus`). The defaults are the original's recipe, read from MMIN's
preprocess/tools/denseface/vision_network/:
- run_dense_net.py, `train_params_ferplus`: 100 epochs, batch 64, learning rate 0.001 divided by
  10 at epochs 50 and 75, shuffled every epoch, data augmentation on; its argument defaults:
  weight decay 1e-4, Nesterov momentum 0.9, and (MMIN's denseface_extractor.py) DenseNet-BC
  depth 100, growth rate 12, 3 blocks, reduction 0.5.
- models/dense_net.py: `MomentumOptimizer(use_nesterov=True)` on cross-entropy +
  weight_decay * sum of `tf.nn.l2_loss` over every trainable variable; each epoch runs
  floor(train images / batch) full batches.
- data_providers/fer.py `augment_image`: see `augment_image` below.
Two departures: validation and test accuracy count every image without augmentation (the
original scored full batches only and augmented its validation batches), and the saved model is
the epoch of best validation accuracy (the original kept every epoch; its extractor loads epoch
200).

Writes OUTPUT, the `Denseface` of the best epoch (takes raw 0..255 grayscale
`(batch, 64, 64, 1)`; `keras.models.load_model` after importing `mmin_tf.features.denseface`), then
OUTPUT.json: the config, per-epoch metrics, the best epoch, test accuracy and each split's label
counts and exclusions. Each appears only when complete; the metrics file, written last, marks a
finished run. `--seed` makes a CPU run repeat exactly.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from mmin_tf import atomic_files, cli, losses, seeding
from mmin_tf.features import ferplus
from mmin_tf.features.denseface import Denseface

PAD = 8  # fer.py: augment_image(..., pad=8)
MAX_ANGLE = 15  # fer.py: np.random.randint(-15, 16) degrees

_FERPLUS_DIR = flags.DEFINE_string("ferplus_dir", None, "Directory holding fer2013.csv and fer2013new.csv.")
_FER2013_CSV = flags.DEFINE_string("fer2013_csv", None, "FER2013's pixel CSV (default: FERPLUS_DIR/fer2013.csv).")
_FERPLUS_CSV = flags.DEFINE_string("ferplus_csv", None, "FER+'s label CSV (default: FERPLUS_DIR/fer2013new.csv).")
_OUTPUT = flags.DEFINE_string("output", None, "The trained model, a .keras file; metrics go to OUTPUT.json.")
_EPOCHS = flags.DEFINE_integer("epochs", 100, "Training epochs (original: n_epochs 100).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Training batch size (original: 64).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Initial learning rate (original: 0.001).")
_DECAY_EPOCHS = flags.DEFINE_list(
    "learning_rate_decay_epochs", ["50", "75"],
    "Epochs (counted from 1) from which the learning rate is divided by 10 once more (original: 50,75).")
_MOMENTUM = flags.DEFINE_float("momentum", 0.9, "Nesterov momentum (original: 0.9).")
_WEIGHT_DECAY = flags.DEFINE_float(
    "weight_decay", 1e-4, "Factor of the L2 term sum(v**2) / 2 over all trainable variables (original: 1e-4).")
_AUGMENT = flags.DEFINE_bool("augment", True, "Pad-crop, flip and rotate training images (original: on).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialisation, shuffling and augmentation.")
_LAYERS_PER_BLOCK = flags.DEFINE_integer(
    "layers_per_block", 16, "Bottleneck layers per dense block (original: 16, from depth 100).")
_GROWTH_RATE = flags.DEFINE_integer("growth_rate", 12, "Channels added per bottleneck layer (original: 12).")
_NUM_BLOCKS = flags.DEFINE_integer("num_blocks", 3, "Dense blocks (original: total_blocks 3).")
_COMPRESSION = flags.DEFINE_float("compression", 0.5, "Channels kept by a transition layer (original: reduction 0.5).")


@dataclasses.dataclass(frozen=True)
class FaceTrainingConfig:
    """Everything a face-model run depends on; the defaults are the original recipe (see module)."""

    fer2013_csv: str
    ferplus_csv: str
    output: str
    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 1e-3
    learning_rate_decay_epochs: tuple[int, ...] = (50, 75)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: bool = True
    seed: int = 0
    layers_per_block: int = 16
    growth_rate: int = 12
    num_blocks: int = 3
    compression: float = 0.5

    def __post_init__(self):
        if not self.output.endswith(".keras"):
            raise ValueError(f"`output` must be a .keras file. Received: output={self.output!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}")
        if any(epoch < 1 for epoch in self.learning_rate_decay_epochs):
            raise ValueError(
                "`learning_rate_decay_epochs` are counted from 1. "
                f"Received: learning_rate_decay_epochs={self.learning_rate_decay_epochs}"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={self.weight_decay}")

    def learning_rate_at(self, epoch: int) -> float:
        """The rate of 0-based `epoch`: divided by 10 at each decay epoch reached (epochs from 1)."""
        decays = sum(epoch + 1 >= decay_epoch for decay_epoch in self.learning_rate_decay_epochs)
        return self.learning_rate * 0.1**decays

    def build_model(self) -> Denseface:
        return Denseface(
            layers_per_block=self.layers_per_block, growth_rate=self.growth_rate,
            num_blocks=self.num_blocks, compression=self.compression, num_classes=len(ferplus.EMOTIONS),
        )


# Augmentation and datasets ----------------------------------------------------------------------


def transform_image(image, row_offset, column_offset, flip, angle, fill_value):
    """The original's augmentation with its random draws given (fer.py `augment_image`).

    Pads `PAD` pixels of `fill_value` on every side, crops back to the image's size at
    (`row_offset`, `column_offset`) in the padded image, mirrors left-right if `flip`, then rotates
    by `angle` degrees (counter-clockwise on screen) about the point (x, y) = (width, height):
    the original's `cv2.getRotationMatrix2D((img_size, img_size), angle, 1.)`, the bottom-right
    corner rather than the centre, kept as it was. Bilinear, `fill_value` outside. The original
    ran on images already normalised, where its zeros were the mean pixel: `fill_value` is that.

    Args:
        image: float32 `(height, width, 1)`.
        row_offset, column_offset: int scalars in [0, 2 * PAD).
        flip: bool scalar.
        angle: scalar, degrees.
        fill_value: float.

    Returns:
        float32 `(height, width, 1)`.
    """
    height, width = image.shape[0], image.shape[1]
    padded = tf.pad(image, [[PAD, PAD], [PAD, PAD], [0, 0]], constant_values=fill_value)
    cropped = tf.slice(padded, tf.stack([row_offset, column_offset, 0]), [height, width, 1])
    cropped = tf.cond(flip, lambda: tf.reverse(cropped, axis=[1]), lambda: cropped)
    radians = tf.cast(angle, tf.float32) * (math.pi / 180.0)
    cos, sin = tf.cos(radians), tf.sin(radians)
    center_x, center_y = float(width), float(height)
    # Output (x, y) reads input (x', y'): the inverse rotation (cv2.warpAffine's convention).
    transform = tf.stack([
        cos, -sin, (1.0 - cos) * center_x + sin * center_y,
        sin, cos, -sin * center_x + (1.0 - cos) * center_y,
        0.0, 0.0,
    ])
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=cropped[tf.newaxis], transforms=transform[tf.newaxis], output_shape=[height, width],
        fill_value=fill_value, interpolation="BILINEAR", fill_mode="CONSTANT",
    )
    return rotated[0]


def augment_image(image, seed, fill_value):
    """`transform_image` with the original's draws, from a stateless `seed` `(2,)`: offsets in
    [0, 2 * PAD), a fair coin for the flip, an integer angle in [-MAX_ANGLE, MAX_ANGLE]."""
    seeds = tf.random.split(seed, 4)
    draw = lambda index, low, high: tf.random.stateless_uniform([], seeds[index], low, high, tf.int32)
    return transform_image(
        image, draw(0, 0, 2 * PAD), draw(1, 0, 2 * PAD), draw(2, 0, 2) == 1,
        draw(3, -MAX_ANGLE, MAX_ANGLE + 1), fill_value,
    )


def training_dataset(images, labels, batch_size, seed, augment, fill_value) -> tf.data.Dataset:
    """Shuffled every epoch, augmented if `augment` (new draws every epoch), full batches only."""
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda example, pair: (augment_image(example[0], pair, fill_value), example[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
        )
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(images, labels, batch_size) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


# Training ---------------------------------------------------------------------------------------


def weight_penalty(variables, weight_decay):
    """The original's L2 term: `weight_decay * sum(tf.nn.l2_loss(v))`, i.e. sum(v**2) / 2."""
    return weight_decay * tf.add_n([tf.nn.l2_loss(variable) for variable in variables])


class _FaceTrainer(keras.Model):
    """Trains a `Denseface` on its logits: cross-entropy + `weight_penalty`; never saved.

    Metrics: `loss` (training only), `cross_entropy` and `accuracy` (averaged over images).
    """

    def __init__(self, model, weight_decay, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.weight_decay = weight_decay
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.cross_entropy = keras.metrics.Mean(name="cross_entropy")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.cross_entropy, self.accuracy]

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)["logits"]

    def train_step(self, data):
        images, labels = data
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)["logits"]
            cross_entropy = losses.classification_loss(labels, logits)
            loss = cross_entropy + weight_penalty(variables, self.weight_decay)
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.loss_tracker.update_state(loss)
        self.cross_entropy.update_state(cross_entropy)
        self.accuracy.update_state(labels, logits)
        return {metric.name: metric.result() for metric in self.metrics}

    def test_step(self, data):
        images, labels = data
        logits = self.model(images, training=False)["logits"]
        self.cross_entropy.update_state(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))
        )
        self.accuracy.update_state(labels, logits)
        return {"cross_entropy": self.cross_entropy.result(), "accuracy": self.accuracy.result()}


class _BestEpoch(keras.callbacks.Callback):
    """Logs each epoch and keeps the weights of the first epoch of highest validation accuracy."""

    def __init__(self, face_model, config):
        super().__init__()
        self.face_model = face_model
        self.config = config
        self.epochs = []
        self.best_epoch = None
        self.best_accuracy = -1.0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        record = {
            "epoch": epoch + 1,
            "learning_rate": self.config.learning_rate_at(epoch),
            "train_loss": float(logs["loss"]),
            "train_accuracy": float(logs["accuracy"]),
            "validation_cross_entropy": float(logs["val_cross_entropy"]),
            "validation_accuracy": float(logs["val_accuracy"]),
        }
        self.epochs.append(record)
        logging.info(
            "Epoch %d/%d: train loss %.4f, accuracy %.4f; validation accuracy %.4f",
            epoch + 1, self.config.epochs, record["train_loss"], record["train_accuracy"],
            record["validation_accuracy"],
        )
        if record["validation_accuracy"] > self.best_accuracy:
            self.best_epoch, self.best_accuracy = epoch + 1, record["validation_accuracy"]
            self.best_weights = self.face_model.get_weights()


def metrics_path(output: str) -> str:
    return f"{output}.json"


def train_face_model(config: FaceTrainingConfig) -> dict:
    """Trains, selects the best validation epoch, writes `config.output` and its metrics file.

    Returns:
        The metrics written to `metrics_path(config.output)`.

    Raises:
        DataError: bad FER+ files (see `ferplus.read_ferplus`).
        ValueError: a split without images, or fewer training images than one batch.
    """
    seeding.set_seed(config.seed)
    model = config.build_model()
    splits = ferplus.read_ferplus(config.fer2013_csv, config.ferplus_csv)
    summary = {name: split.summary() for name, split in splits.items()}
    logging.info("FER+ images, labels and exclusions per split: %s", summary)
    empty = [name for name, split in splits.items() if not len(split.labels)]
    if empty:
        raise ValueError(f"No labelled FER+ images in the {empty} split(s) of {config.ferplus_csv}: {summary}")
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    if len(train.labels) < config.batch_size:
        raise ValueError(
            f"{len(train.labels)} training images make no full batch of `batch_size`={config.batch_size}"
        )

    model.build((None, ferplus.IMAGE_SIZE, ferplus.IMAGE_SIZE, 1))
    trainer = _FaceTrainer(model, config.weight_decay)
    trainer.compile(optimizer=keras.optimizers.SGD(config.learning_rate, momentum=config.momentum, nesterov=True))
    best = _BestEpoch(model, config)
    trainer.fit(
        training_dataset(train.images, train.labels, config.batch_size, config.seed, config.augment, model.pixel_mean),
        validation_data=evaluation_dataset(validation.images, validation.labels, config.batch_size),
        epochs=config.epochs,
        callbacks=[keras.callbacks.LearningRateScheduler(lambda epoch, rate: config.learning_rate_at(epoch)), best],
        verbose=0,
    )
    model.set_weights(best.best_weights)
    test_logs = trainer.evaluate(
        evaluation_dataset(test.images, test.labels, config.batch_size), verbose=0, return_dict=True
    )
    metrics = {
        "config": dataclasses.asdict(config),
        "best_epoch": best.best_epoch,
        "best_validation_accuracy": best.best_accuracy,
        "test_accuracy": float(test_logs["accuracy"]),
        "test_cross_entropy": float(test_logs["cross_entropy"]),
        "epochs": best.epochs,
        "label_names": list(ferplus.EMOTIONS),
        "splits": summary,
        "train_pixel_mean": float(np.mean(train.images)),
        "train_pixel_std": float(np.std(train.images)),
        "num_parameters": model.count_params(),
        "feature_dim": model.feature_dim,
    }
    os.makedirs(os.path.dirname(os.path.abspath(config.output)), exist_ok=True)
    with atomic_files.replacing(config.output, suffix=".keras") as temporary:
        model.save(temporary)
    atomic_files.write_json(metrics_path(config.output), metrics)
    logging.info(
        "Best validation accuracy %.4f at epoch %d; test accuracy %.4f; wrote %s",
        best.best_accuracy, best.best_epoch, metrics["test_accuracy"], config.output,
    )
    return metrics


# Command line -----------------------------------------------------------------------------------


def config_from_flags() -> FaceTrainingConfig:
    fer2013_csv, ferplus_csv = _FER2013_CSV.value, _FERPLUS_CSV.value
    if not _FERPLUS_DIR.value and not (fer2013_csv and ferplus_csv):
        raise app.UsageError("--ferplus_dir is required unless --fer2013_csv and --ferplus_csv are given")
    if not _OUTPUT.value:
        raise app.UsageError("--output is required")
    return FaceTrainingConfig(
        fer2013_csv=fer2013_csv or os.path.join(_FERPLUS_DIR.value, "fer2013.csv"),
        ferplus_csv=ferplus_csv or os.path.join(_FERPLUS_DIR.value, "fer2013new.csv"),
        output=_OUTPUT.value,
        epochs=_EPOCHS.value,
        batch_size=_BATCH_SIZE.value,
        learning_rate=_LEARNING_RATE.value,
        learning_rate_decay_epochs=_ints(_DECAY_EPOCHS.value, "--learning_rate_decay_epochs"),
        momentum=_MOMENTUM.value,
        weight_decay=_WEIGHT_DECAY.value,
        augment=_AUGMENT.value,
        seed=_SEED.value,
        layers_per_block=_LAYERS_PER_BLOCK.value,
        growth_rate=_GROWTH_RATE.value,
        num_blocks=_NUM_BLOCKS.value,
        compression=_COMPRESSION.value,
    )


def _ints(values: Sequence[str], flag: str) -> tuple[int, ...]:
    if not all(value.strip().isdecimal() for value in values):
        raise app.UsageError(f"{flag} takes comma-separated integers. Received: {','.join(values)}")
    return tuple(int(value) for value in values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    train_face_model(config_from_flags())


def run():
    cli.run_main(main, "mmin_tf.features.train_face_model")


if __name__ == "__main__":
    run()
