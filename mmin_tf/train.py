"""Trains one model on one fold.

    python -m mmin_tf.train --flagfile=pipelines/iemocap.flags --data_dir=DATA --fold=1 \
        --model=mmin --output_dir=runs/mmin/fold1

`--model`: baseline | augmented | matched (with --condition=at, ...) | mmin | mmin_ae |
mmin_nocycle | mctn (with --condition=at, ...: one MCTN per missing condition, tested under it
only). MMIN models use `--pretrained_dir` (a baseline run of the same fold) as their
teacher, or train that baseline first into OUTPUT_DIR/teacher. Re-running an interrupted command
continues from the last finished epoch; re-running a finished one does nothing.
"""

import json
import os
import sys

import tensorflow as tf
from absl import app, flags, logging

from mmin_tf import cli
from mmin_tf import atomic_files, configs, distribution
from mmin_tf.data.pipeline import ConditionMode
from mmin_tf.training import run_training

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Dataset directory (python -m mmin_tf.prepare).")
_FOLD = flags.DEFINE_string("fold", "1", "Fold name (1..10 on IEMOCAP, 1..12 on MSP-IMPROV).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Run directory.")
_MODEL = flags.DEFINE_enum_class("model", configs.ModelKind.MMIN, configs.ModelKind, "Model to train.", case_sensitive=False)
_CONDITION = flags.DEFINE_string(
    "condition", None, "Training condition of --model=matched and --model=mctn, e.g. 'at' (MCTN: a missing "
    "condition, the one it is also tested under).")
_CONDITION_MODE = flags.DEFINE_enum_class(
    "condition_mode", None, ConditionMode,
    "MMIN's training conditions: random (one missing condition per utterance per epoch, the "
    "original code; default) or all (every missing condition, the paper). Ignored by the "
    "utterance-fusion models, whose conditions follow --model.", case_sensitive=False)
_PRETRAINED_DIR = flags.DEFINE_string("pretrained_dir", None, "Baseline run of the same fold: MMIN's teacher.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialisation, shuffling and condition draws.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Batch size.")
_NORMALIZE = flags.DEFINE_list("normalize", ["acoustic"], "Modalities normalized with training-split statistics.")
_BUCKET = flags.DEFINE_bool("bucket_by_length", True, "Batches of similar acoustic lengths (sorted windows of 8 batches); off: batches in shuffled order, as the original.")
# The trained model's optimization; unset values take the original scripts' (by --model).
_EPOCHS = flags.DEFINE_integer("epochs", None, "Epochs at constant learning rate (niter).")
_DECAY_EPOCHS = flags.DEFINE_integer("decay_epochs", None, "Epochs of linear decay (niter_decay).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "Adam learning rate.")
_BETA1 = flags.DEFINE_float("beta1", None, "Adam beta_1 (original: 0.9 baselines, 0.5 MMIN).")
_CLIP_NORM = flags.DEFINE_float("clip_norm", None, "Per-network gradient clipping norm.")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", 0.0, "AdamW weight decay (0: Adam, as the original).")
# The teacher stage (MMIN without --pretrained_dir).
_TEACHER_EPOCHS = flags.DEFINE_integer("teacher_epochs", None, "Teacher epochs at constant lr.")
_TEACHER_DECAY_EPOCHS = flags.DEFINE_integer("teacher_decay_epochs", None, "Teacher decay epochs.")
_TEACHER_LEARNING_RATE = flags.DEFINE_float("teacher_learning_rate", None, "Teacher learning rate.")
_TEACHER_BETA1 = flags.DEFINE_float("teacher_beta1", None, "Teacher Adam beta_1.")
_TEACHER_CLIP_NORM = flags.DEFINE_float("teacher_clip_norm", None, "Teacher clipping norm.")
_TEACHER_DROPOUT = flags.DEFINE_float("teacher_dropout", 0.3, "Teacher classifier dropout.")
# Architecture.
_EMBEDDING_SIZE = flags.DEFINE_integer("embedding_size", 128, "Per-modality embedding size.")
_TEXT_CNN_CHANNELS = flags.DEFINE_integer("text_cnn_channels", 128, "TextCNN filters per kernel size.")
_TEXT_CNN_KERNELS = flags.DEFINE_list("text_cnn_kernel_sizes", ["3", "4", "5"], "TextCNN kernel sizes.")
_TEXT_CNN_DROPOUT = flags.DEFINE_float("text_cnn_dropout", 0.5, "Dropout inside the TextCNN.")
_CLASSIFIER_SIZES = flags.DEFINE_list("classifier_hidden_sizes", ["128", "128"], "Classifier hidden sizes.")
_CLASSIFIER_DROPOUT = flags.DEFINE_float("classifier_dropout", None, "Classifier dropout (original: 0.3 baselines, 0.5 MMIN).")
_AE_SIZES = flags.DEFINE_list("autoencoder_hidden_sizes", ["256", "128", "64"], "Residual autoencoder encoder sizes.")
_NUM_BLOCKS = flags.DEFINE_integer("num_blocks", 5, "Residual autoencoders in the CRA.")
_USE_TRANSITION = flags.DEFINE_bool("use_transition", True, "The original code's MLP after the CRA.")
_SHARE = flags.DEFINE_bool("share_autoencoders", False, "Backward imagination shares the forward weights.")
_USE_CUDNN = flags.DEFINE_enum("use_cudnn", "auto", ["auto", "true", "false"], "cuDNN LSTM on GPUs.")
_ENCODER_ROWS = flags.DEFINE_enum_class(
    "encoder_rows", configs.EncoderRows.AUTO, configs.EncoderRows,
    "Rows the encoders run on: present (skip missing modalities; fastest on CPUs), all (every row, "
    "zeros where missing; fastest on GPUs), auto (all if a GPU is visible, else present).",
    case_sensitive=False)
_INITIALIZATION = flags.DEFINE_enum_class(
    "initialization", configs.Initialization.KERAS, configs.Initialization,
    "Weights before training: keras (Keras's defaults) or original (the original code's Kaiming-normal "
    "Dense/Conv kernels, zero biases and PyTorch's LSTM initialisation).", case_sensitive=False)
_ADAM_EPSILON = flags.DEFINE_float("adam_epsilon", 1e-7, "Adam's epsilon, both stages (Keras 1e-7; PyTorch, the original: 1e-8).")
# MCTN (Pham et al. 2019); defaults: the public code's configs/mctn.yaml.
_MCTN_STEPS = flags.DEFINE_integer(
    "mctn_steps", 20, "MCTN: every modality's sequence is resampled to this many steps (linear interpolation "
    "over its valid frames), so modalities of different frame rates share one time axis.")
_MCTN_HIDDEN = flags.DEFINE_integer("mctn_hidden_size", 32, "MCTN: units of its encoders, decoders and prediction LSTM.")
_MCTN_TRANSLATION = flags.DEFINE_float("mctn_translation_weight", 0.1, "MCTN: translation loss weight (lambda_t).")
_MCTN_CYCLE = flags.DEFINE_float("mctn_cycle_weight", 0.1, "MCTN: cycle (back translation) loss weight (lambda_c).")
_MCTN_SECOND = flags.DEFINE_float(
    "mctn_second_translation_weight", 0.1, "MCTN: the hierarchical translation losses' weight (two missing modalities).")
# MMIN losses.
_CE_WEIGHT = flags.DEFINE_float("ce_weight", 1.0, "Classification loss weight (MMIN; also MCTN's prediction loss).")
_FORWARD_WEIGHT = flags.DEFINE_float("forward_weight", 4.0, "Forward imagination loss weight (lambda_1).")
_BACKWARD_WEIGHT = flags.DEFINE_float("backward_weight", 2.0, "Backward imagination loss weight (lambda_2).")
_REDUCTION = flags.DEFINE_enum_class(
    "imagination_reduction", configs.ImaginationReduction.MEAN, configs.ImaginationReduction,
    "mean: over elements (original code); sum: squared L2 per example (paper Eq. 6).", case_sensitive=False)
_FINETUNE = flags.DEFINE_bool("finetune_encoders", True, "Train MMIN's encoders (code) or freeze them (paper).")
_SELECTION = flags.DEFINE_enum_class(
    "selection_metric", configs.SelectionMetric.UA, configs.SelectionMetric,
    "Validation metric of the best epoch (IEMOCAP: ua, MSP-IMPROV: f1).", case_sensitive=False)
_JIT = flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"], "XLA (auto: off; true also turns TF op determinism off, which Keras requires for XLA).")
_STRATEGY = flags.DEFINE_enum_class(
    "strategy", distribution.StrategyKind.DEFAULT, distribution.StrategyKind,
    "tf.distribute strategy: default (one device), mirrored (this machine's GPUs, or --logical_cpus CPU "
    "devices), multi_worker (the processes in TF_CONFIG; each runs this command, all see --output_dir, "
    "the chief writes). The batch size is the global batch. See docs/training.md.", case_sensitive=False)
_LOGICAL_CPUS = flags.DEFINE_integer(
    "logical_cpus", 0, "--strategy=mirrored without GPUs: replicas on this many logical CPU devices.", lower_bound=0)
_COLLECTIVE_TIMEOUT = flags.DEFINE_float(
    "collective_timeout", None, "--strategy=multi_worker: seconds a collective waits for the other workers "
    "before failing (default: no timeout; a worker that dies is found by the strategy's health check).",
    lower_bound=0)
_MIXED = flags.DEFINE_bool("mixed_precision", False, "bfloat16 compute, float32 weights (Keras mixed_bfloat16). On this project's 2-core AVX512-BF16 CPU MMIN trained 1.08-1.17x faster (benchmarks/README.md); accuracy not measured.")
_PROFILE = flags.DEFINE_list("profile_batch", [], "start,stop batches to trace for TensorBoard's profiler.")
# Incomplete data.
_TRAIN_MISSING = flags.DEFINE_list(
    "train_missing_rate", [], "modality:rate entries: each training utterance loses each listed modality with that "
    "probability, fixed by --seed, at least one kept (e.g. acoustic:0.2,visual:0.3,text:0.1; RedCore's setting).")
_MISSING_RATES = flags.DEFINE_list(
    "missing_rates", [], "Also test with each modality of each test utterance dropped at these rates, at least one "
    "kept (the missing-rate protocol of GCNet and later work), e.g. 0.1,0.2,0.3,0.4,0.5,0.6,0.7.")
_MISSING_RATE_SEED = flags.DEFINE_integer(
    "missing_rate_seed", 0, "Seed of the --missing_rates test masks (with the utterance, it fixes them for every run).")


def _ints(values):
    return tuple(int(value) for value in values)


def _float_mapping(entries, what):
    pairs = []
    for entry in entries:
        name, _, value = entry.partition(":")
        try:
            pairs.append((name, float(value)))
        except ValueError:
            raise ValueError(f"{what} entries are modality:rate. Received: {entry!r}") from None
        if not name:
            raise ValueError(f"{what} entries are modality:rate. Received: {entry!r}")
    return pairs


def _optimization(default, epochs, decay, learning_rate, beta1, clip_norm, weight_decay=0.0):
    """The stage's `OptimizationConfig`: `default`'s values where the flags are unset."""
    pick = lambda flag, value: value if flag.value is None else flag.value
    return configs.OptimizationConfig(
        epochs=pick(epochs, default.epochs),
        decay_epochs=pick(decay, default.decay_epochs),
        learning_rate=pick(learning_rate, default.learning_rate),
        beta_1=pick(beta1, default.beta_1),
        clip_norm=pick(clip_norm, default.clip_norm),
        weight_decay=weight_decay,
        epsilon=_ADAM_EPSILON.value,
    )


def config_from_flags() -> configs.TrainConfig:
    kind = _MODEL.value
    stage = configs.MMIN_OPTIMIZATION if kind.is_mmin else configs.CLASSIFIER_OPTIMIZATION
    if kind is configs.ModelKind.MCTN:
        stage = configs.MCTN_OPTIMIZATION
    dropout = _CLASSIFIER_DROPOUT.value
    if dropout is None:
        dropout = 0.5 if kind.is_mmin else 0.3
    return configs.TrainConfig(
        output_dir=_OUTPUT_DIR.value,
        data=configs.DataConfig(
            data_dir=os.path.abspath(_DATA_DIR.value), fold=_FOLD.value, batch_size=_BATCH_SIZE.value,
            normalize=tuple(_NORMALIZE.value), bucket_by_length=_BUCKET.value,
        ),
        model=configs.ModelConfig(
            kind=kind, embedding_size=_EMBEDDING_SIZE.value, text_cnn_channels=_TEXT_CNN_CHANNELS.value,
            text_cnn_kernel_sizes=_ints(_TEXT_CNN_KERNELS.value), text_cnn_dropout=_TEXT_CNN_DROPOUT.value,
            classifier_hidden_sizes=_ints(_CLASSIFIER_SIZES.value), classifier_dropout=dropout,
            autoencoder_hidden_sizes=_ints(_AE_SIZES.value), num_blocks=_NUM_BLOCKS.value,
            use_transition=_USE_TRANSITION.value, share_autoencoders=_SHARE.value, use_cudnn=_USE_CUDNN.value,
            encoder_rows=_ENCODER_ROWS.value, initialization=_INITIALIZATION.value,
        ),
        optimization=_optimization(stage, _EPOCHS, _DECAY_EPOCHS, _LEARNING_RATE, _BETA1, _CLIP_NORM, _WEIGHT_DECAY.value),
        teacher_optimization=_optimization(
            configs.CLASSIFIER_OPTIMIZATION, _TEACHER_EPOCHS, _TEACHER_DECAY_EPOCHS,
            _TEACHER_LEARNING_RATE, _TEACHER_BETA1, _TEACHER_CLIP_NORM),
        teacher_classifier_dropout=_TEACHER_DROPOUT.value,
        losses=configs.LossConfig(_CE_WEIGHT.value, _FORWARD_WEIGHT.value, _BACKWARD_WEIGHT.value, _REDUCTION.value),
        condition_mode=_CONDITION_MODE.value if kind.is_mmin else None,
        matched_condition=_CONDITION.value,
        finetune_encoders=_FINETUNE.value,
        pretrained_dir=os.path.abspath(_PRETRAINED_DIR.value) if _PRETRAINED_DIR.value else None,
        selection_metric=_SELECTION.value,
        seed=_SEED.value,
        jit_compile={"auto": None, "true": True, "false": False}[_JIT.value],
        mixed_precision=_MIXED.value,
        profile_batch=_ints(_PROFILE.value) if _PROFILE.value else None,
        train_missing_rates=tuple(_float_mapping(_TRAIN_MISSING.value, "--train_missing_rate")),
        evaluation_missing_rates=tuple(float(rate) for rate in _MISSING_RATES.value),
        missing_rate_seed=_MISSING_RATE_SEED.value,
        mctn=configs.MCTNConfig(
            steps=_MCTN_STEPS.value, hidden_size=_MCTN_HIDDEN.value, translation_weight=_MCTN_TRANSLATION.value,
            cycle_weight=_MCTN_CYCLE.value, second_translation_weight=_MCTN_SECOND.value),
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not _DATA_DIR.value or not _OUTPUT_DIR.value:
        raise app.UsageError("--data_dir and --output_dir are required")
    config = config_from_flags()
    if not os.path.isdir(config.data.data_dir):
        raise FileNotFoundError(f"--data_dir {config.data.data_dir!r} does not exist")
    if (_STRATEGY.value is not distribution.StrategyKind.DEFAULT and config.jit_compile
            and not tf.config.list_physical_devices("GPU")):
        raise app.UsageError("--jit_compile=true with --strategy=" + _STRATEGY.value.value + " needs GPUs: "
                             "TensorFlow's XLA has no collectives on CPU devices")
    try:  # first: TensorFlow must not have run anything before a strategy other than the default
        strategy = distribution.make_strategy(_STRATEGY.value, _LOGICAL_CPUS.value, _COLLECTIVE_TIMEOUT.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    os.makedirs(config.output_dir, exist_ok=True)
    if distribution.is_chief(strategy):
        atomic_files.write_text(os.path.join(config.output_dir, "flags.txt"), flags.FLAGS.flags_into_string())
    try:
        result = run_training(config, strategy=strategy)
    except Exception as error:  # noqa: BLE001  (every error ends a worker the same way)
        if _STRATEGY.value is not distribution.StrategyKind.MULTI_WORKER:
            raise
        # A worker that fails (or whose peer was lost: TensorFlow names it) must end: TensorFlow's
        # shutdown would wait for the lost worker without end. What it wrote is already whole.
        logging.error("This worker of --strategy=multi_worker failed; rerun every worker's command to "
                      "resume from the last backup: %s", error, exc_info=True)
        logging.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    logging.info("Test metrics: %s", json.dumps(result))


def run():
    cli.run_main(main, "mmin_tf.train")


if __name__ == "__main__":
    run()
