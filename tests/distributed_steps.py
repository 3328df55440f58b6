"""Training steps under MirroredStrategy on 2 logical CPU devices against the same steps on one device.

    python -m tests.distributed_steps

Run in a process of its own (the logical devices must be configured before TensorFlow
initialises); prints one JSON object: per trainer, the largest absolute difference of the weights
and of the loss tracker after the steps. Used by tests/test_distribution.py.
"""

import dataclasses
import json

from mmin_tf import distribution

distribution.configure_logical_cpus(2)

import keras  # noqa: E402  (after the devices are configured)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mmin_tf import configs  # noqa: E402
from mmin_tf.data.pipeline import AVAILABILITY, CONDITION_MASK  # noqa: E402
from mmin_tf.models import construction  # noqa: E402
from mmin_tf.models.trainer import ClassifierTrainer  # noqa: E402
from tests import tiny_runs  # noqa: E402

MODALITIES = tiny_runs.MODALITIES
CONDITIONS = np.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], bool)
UTTERANCES = 5  # split 3 + 2 between the replicas: unequal shares
CLIP_NORM = 0.05  # small enough that every step clips


def _model_config():
    return dataclasses.replace(tiny_runs.tiny_config("d", "o").model, text_cnn_dropout=0.0, classifier_dropout=0.0)


def _baseline():
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(_model_config(), kind=configs.ModelKind.BASELINE)
    return ClassifierTrainer(construction.build_utterance_fusion(MODALITIES, 4, config), clip_norm=CLIP_NORM)


def _mmin():
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(_model_config(), kind=configs.ModelKind.MMIN)
    teacher = construction.build_utterance_fusion(
        MODALITIES, 4, dataclasses.replace(config, kind=configs.ModelKind.BASELINE))
    return construction.build_mmin_trainer(teacher, 4, config, configs.LossConfig(), CLIP_NORM, True)


def _batch(kind):
    """One batch of `UTTERANCES`: full availability ("full", the baseline), a missing condition
    per utterance ("random"), or every utterance's six conditions ("grouped", MMIN's rows)."""
    rng = np.random.default_rng(0)
    inputs = {}
    for spec in MODALITIES:
        inputs[spec.name] = rng.normal(size=(UTTERANCES, 6, spec.feature_dim)).astype(np.float32)
        inputs[spec.length_key] = rng.integers(2, 7, size=UTTERANCES).astype(np.int32)
    if kind == "grouped":
        inputs[AVAILABILITY] = np.repeat(CONDITIONS[None], UTTERANCES, axis=0)
        inputs[CONDITION_MASK] = np.ones((UTTERANCES, len(CONDITIONS)), bool)
    elif kind == "random":
        inputs[AVAILABILITY] = CONDITIONS[:UTTERANCES]
    else:
        inputs[AVAILABILITY] = np.ones((UTTERANCES, len(MODALITIES)), bool)
    labels = rng.integers(0, 4, size=UTTERANCES).astype(np.int32)
    return tf.data.Dataset.from_tensors((inputs, labels)).repeat()


def _train(build, dataset, strategy, initial_weights, steps=2):
    with strategy.scope():
        trainer = build()
        batch = next(iter(dataset))[0]
        trainer({key: value for key, value in batch.items() if key not in (AVAILABILITY, CONDITION_MASK)})
        trainer.compile(optimizer=keras.optimizers.SGD(0.5))
        trainer.optimizer.build(trainer.trainable_variables)
    if initial_weights is not None:
        trainer.set_weights(initial_weights)
    initial = trainer.get_weights()
    iterator = iter(strategy.experimental_distribute_dataset(dataset))

    @tf.function
    def step():
        strategy.run(trainer.train_step, args=(next(iterator),))

    for _ in range(steps):
        step()
    return initial, trainer.get_weights(), float(trainer.loss_tracker.result())


def main():
    one_device = tf.distribute.get_strategy()
    mirrored = distribution.make_strategy(distribution.StrategyKind.MIRRORED)
    assert mirrored.num_replicas_in_sync == 2, mirrored.num_replicas_in_sync
    report = {}
    for name, build, kind in (("baseline", _baseline, "full"), ("mmin_grouped", _mmin, "grouped"),
                              ("mmin_random", _mmin, "random")):
        dataset = _batch(kind)
        initial, single, single_loss = _train(build, dataset, one_device, None)
        _, replicated, replicated_loss = _train(build, dataset, mirrored, initial)
        report[name] = {
            "max_weight_difference": max(float(np.max(np.abs(a - b))) for a, b in zip(single, replicated)),
            "max_weight_change": max(float(np.max(np.abs(a - b))) for a, b in zip(single, initial)),
            "loss_difference": abs(single_loss - replicated_loss),
            "loss": single_loss,
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
