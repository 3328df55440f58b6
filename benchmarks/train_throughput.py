"""Training throughput of the baseline and MMIN, against the original implementation's computation.

    python benchmarks/train_throughput.py [--quick] [--seed=0]
    python benchmarks/train_throughput.py --strategy=mirrored [--logical_cpus=2] [--quick]

For each data setting -- `fixed` (every utterance acoustic 150 x 130, visual 50 x 342, text
22 x 1024, the shapes the original's release pads to) and `iemocap` (log-normal lengths around
those, sigma 0.35, correlated across an utterance's modalities as its duration drives them all)
-- it trains, in this process and on the same data:

  baseline   UtteranceFusion on full-modality data (the teacher);
  mmin       MMINTrainer as `mmin_tf.train` runs it (`--encoder_rows`, default auto): the frozen
             teacher's embeddings computed once per utterance; the student encoders only on rows
             where a modality is present (on CPUs) or on every row, zeros where missing (on GPUs);
  mmin_all_rows / mmin_present_rows  the same with the other `encoder_rows` choice, so that
             each run shows what the automatic choice buys on its machine;
  reference  ReferenceMMINTrainer: the same losses computed as the original code does (every
             student encoder on every example with zeroed inputs, the teacher on every example's
             complementary view, every step), on batches drawn at random and padded to their
             longest utterance (the original's `collate_fn`); tests/models/test_reference.py
             checks the losses are equal.
  mmin_mixed_bfloat16 (with --mixed_precision)  `mmin` under Keras's mixed_bfloat16 policy
             (bfloat16 compute, float32 weights); its FLOPs are counted as `mmin`'s, its
             fraction of peak against the float32 matmul's.
  mmin_unbucketed (variable lengths only)  MMINTrainer on the reference's batches: separates what
             length bucketing buys from what skipping the encoders' work buys.

and in the paper's six-conditions regime (`--condition_mode=all`: every utterance under all six
missing conditions), in utterance-conditions per second:

  mmin_all_conditions       MMINTrainer's grouped step: each utterance's six conditions in one
             batch, each present modality encoded once per utterance (`compute_grouped_losses`);
  reference_all_conditions  ReferenceMMINTrainer on the six expanded rows of each utterance:
             every encoder on every row, the teacher every step, random batches (the original's
             computation of that regime).

and prints utterances/second per epoch in steady state, the process's peak resident memory (and the
GPU allocator's peak), the time split of one MMIN step (encoders / imagination + classifier /
optimizer and the rest) beside the reference's whole step, each input pipeline's time for one epoch
on its own, an epoch of `fit` on batches replayed from memory (no input pipeline), analytic FLOPs per training utterance and the fraction of this machine's peak they reach
(peak = a large float32 matmul measured in the same run).

Training feeds each model as `mmin_tf.train` does: one dataset repeats epoch after epoch, so the next
epoch's first batches are prepared while the current epoch's last ones train. After a warm-up epoch
per model (tracing), each round fits every model for two epochs and times the second: the first
carries the iterator start-up that every `fit` call has, a training run has it once. Rounds
alternate the models, so that load changes on this shared machine hit all alike. The last two
lines are `speedup_all_conditions_vs_reference=<ratio>` (the six-conditions regime, the
IEMOCAP-like setting; with `--quick` the fixed shapes) and `speedup_vs_reference=<mmin
utterances/s / reference utterances/s>` (the random-condition regime), the smaller of the settings
run (with `--quick`: the fixed shapes).

With `--strategy=mirrored` it measures instead how MMIN's training (random-condition regime,
IEMOCAP-like lengths; with `--quick` fewer utterances) scales over replicas: one device (Keras
`fit`, as `mmin_tf.train` runs it) against `MirroredStrategy` (the loop `mmin_tf.train
--strategy=mirrored` runs) over this machine's GPUs, or without GPUs over `--logical_cpus` logical
CPU devices, each epoch on the same global batches; the last line is
`scaling_replicas_N_vs_1=<utterances/s with N replicas / with one device>`.
"""

import dataclasses
import os
import resource
import statistics
import sys
import tempfile
import time

import keras
import tensorflow as tf
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmin_tf import configs, distributed_fit, distribution, seeding  # noqa: E402
from mmin_tf.callbacks import EpochTimer  # noqa: E402
from mmin_tf import modalities as modalities_lib  # noqa: E402
from mmin_tf.data import pipeline, synthetic  # noqa: E402
from mmin_tf.data.writer import DatasetWriter  # noqa: E402
from mmin_tf.layers.modality_embedder import EncoderRows, resolve_encoder_rows  # noqa: E402
from mmin_tf.models import construction  # noqa: E402
from mmin_tf.models.reference import ReferenceMMINTrainer  # noqa: E402
from mmin_tf.models.trainer import ClassifierTrainer  # noqa: E402
from mmin_tf.training import batching_for, dtype_policy, teacher_embeddings  # noqa: E402

_QUICK = flags.DEFINE_bool("quick", False, "Small data and one setting: about a minute.")
_SEED = flags.DEFINE_integer("seed", 0, "Data and initialisation seed.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Timed epochs per model (one per round; see above).")
_TRAIN_UTTERANCES = flags.DEFINE_integer("train_utterances", 600, "Training utterances (fold 1).")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Batch size.")
_LENGTH_SPREAD = flags.DEFINE_float(
    "length_spread", 0.12, "`iemocap` setting: log-normal sigma of each modality's own length factor.")
_DURATION_SPREAD = flags.DEFINE_float(
    "duration_spread", 0.33,
    "`iemocap` setting: log-normal sigma of the utterance's duration, shared by its modalities "
    "(with the default 0.12 each length has sigma 0.35, log-lengths correlate 0.88).")
_JIT = flags.DEFINE_bool("jit_compile", False, "Compile the baseline and MMIN steps with XLA (the reference never).")
_USE_CUDNN = flags.DEFINE_enum(
    "use_cudnn", "auto", ["auto", "true", "false"],
    "LSTM kernel on GPUs, as `mmin_tf.train --use_cudnn`: the cuDNN LSTM disables XLA for the whole "
    "model, so compare `--jit_compile --use_cudnn=false` against the defaults.")
_ENCODER_ROWS = flags.DEFINE_enum_class(
    "encoder_rows", EncoderRows.AUTO, EncoderRows,
    "Rows our MMIN's student encoders run on, as `mmin_tf.train --encoder_rows`; the other choice "
    "runs too, as mmin_<choice>_rows.", case_sensitive=False)
_COMPARE_BOUNDARIES = flags.DEFINE_bool(
    "compare_boundaries", False,
    "Variable lengths: also run our step on batches padded to length boundaries (a few fixed "
    "shapes, as for XLA), as mmin_boundaries: more padded steps, fewer distinct shapes (GPU kernels "
    "such as cuDNN's RNN are planned per shape).")
_MIXED_PRECISION = flags.DEFINE_bool(
    "mixed_precision", False,
    "Also run our MMIN under Keras's mixed_bfloat16 policy (as `mmin_tf.train --mixed_precision`), "
    "as mmin_mixed_bfloat16; the reference stays float32.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", "default", ["default", "mirrored"],
    "mirrored: measure the scaling from one device to MirroredStrategy's replicas instead (see above).")
_LOGICAL_CPUS = flags.DEFINE_integer(
    "logical_cpus", 2, "--strategy=mirrored without GPUs: replicas on this many logical CPU devices.", lower_bound=2)
_OP_DETERMINISM = flags.DEFINE_bool(
    "op_determinism", True,
    "Deterministic TF ops, as `mmin_tf.train` runs (always off with --jit_compile). On GPUs this "
    "places scatter ops on the CPU.")


def dataset(directory, train_utterances, spreads, seed):
    """The synthetic corpus at its default (the issue's) mean lengths; `spreads`: (per-modality
    length spread, per-utterance duration spread) of the log-normal lengths."""
    # Fold 1 trains on 8 of the 10 speakers.
    total = int(round(train_utterances * 10 / 8))
    config = synthetic.SyntheticConfig(
        num_utterances=total, length_spread=spreads[0], duration_spread=spreads[1], seed=seed
    )
    with DatasetWriter(directory, name="bench", modalities=config.modalities,
                       label_names=synthetic.IEMOCAP_LABEL_NAMES) as writer:
        for utterance in synthetic.generate(config):
            writer.write(utterance)
        return writer.finish()


def timed_epoch(trainer, data, steps_per_epoch):
    """Seconds of the second of two epochs of one `fit` (the first starts the iterator)."""
    history = trainer.fit(data, epochs=2, steps_per_epoch=steps_per_epoch, callbacks=[EpochTimer()], verbose=0)
    return history.history["epoch_seconds"][1]


def replayed(batches, element_spec):
    """`batches` (a list of `(inputs, labels)`) again and again, from memory."""
    return tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=element_spec).repeat()


def pipeline_epoch_seconds(data, steps_per_epoch):
    """(first batch, whole epoch) seconds of iterating one epoch of `data` alone, from a fresh iterator."""
    start = time.perf_counter()
    iterator = iter(data)
    next(iterator)
    first = time.perf_counter() - start
    for _ in range(steps_per_epoch - 1):
        next(iterator)
    return first, time.perf_counter() - start


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_gpu_mib():
    """Peak bytes TensorFlow's allocator held on the first GPU, in MiB (None without a GPU)."""
    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def matmul_peak_flops(size, repeats=20):
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    multiply = tf.function(lambda x, y: tf.matmul(x, y))
    multiply(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = multiply(a, b)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def _dense_flops(widths):
    return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))


def encoder_flops(spec, model_config, rows, time_steps):
    """Forward FLOPs of one encoder on `rows` sequences of `time_steps` frames (multiply-adds x 2)."""
    hidden = model_config.embedding_size
    if spec.encoder is modalities_lib.EncoderKind.LSTM:
        return rows * time_steps * 2 * 4 * hidden * (spec.feature_dim + hidden)
    channels = model_config.text_cnn_channels
    total = 0
    for size in model_config.text_cnn_kernel_sizes:
        positions = max(time_steps - size + 1, 1)
        total += 2 * size * spec.feature_dim * channels * positions
    return rows * (total + 2 * channels * len(model_config.text_cnn_kernel_sizes) * hidden)


def head_flops(model_config, embedding_dim, num_classes, backward):
    """Forward FLOPs per row of the CRA(s) and classifier."""
    block = _dense_flops((embedding_dim,) + model_config.autoencoder_hidden_sizes) + _dense_flops(
        model_config.autoencoder_hidden_sizes[::-1] + (embedding_dim,)
    )
    cascade = model_config.num_blocks * block + 2 * _dense_flops((embedding_dim, embedding_dim))
    latent = model_config.num_blocks * model_config.autoencoder_hidden_sizes[-1]
    classifier = _dense_flops((latent,) + model_config.classifier_hidden_sizes + (num_classes,))
    return cascade * (2 if backward else 1) + classifier


def epoch_flops_per_utterance(data, modalities, model_config, student_rows, teacher_every_step):
    """Training FLOPs per utterance over one epoch of `data` (padded steps count: they run)."""
    total, rows = 0.0, 0
    for batch in data:
        size = int(batch[1].shape[0])
        total += step_flops(batch, modalities, model_config, student_rows, teacher_every_step) * size
        rows += size
    return total / rows


def step_flops(batch, modalities, model_config, student_rows, teacher_every_step):
    """Training FLOPs per row of one MMIN step on `batch` (forward x 3 for trained parts, x 1 for the
    teacher). `student_rows`: `EncoderRows.PRESENT` (the present rows and one zero row per encoder)
    or `EncoderRows.ALL`;
    `teacher_every_step`: the teacher encodes every row (the original) instead of a cache."""
    inputs, _ = batch
    availability = inputs[pipeline.AVAILABILITY].numpy()
    rows = len(availability)
    total = 0
    for index, spec in enumerate(modalities):
        steps = inputs[spec.name].shape[1]
        present = int((availability[:, index] & (inputs[spec.length_key].numpy() > 0)).sum())
        student = rows if student_rows is EncoderRows.ALL else present + 1
        total += 3 * encoder_flops(spec, model_config, student, steps)
        if teacher_every_step:
            total += encoder_flops(spec, model_config, rows, steps)  # every row's complement
    embedding = model_config.embedding_size * len(modalities)
    total += 3 * rows * head_flops(model_config, embedding, 4, backward=True)
    return total / rows


def time_split(trainer, batch, repeats):
    """Median seconds of: student encoders fwd+bwd, imagination+classifier+backward fwd+bwd, full step."""
    inputs, labels = batch
    visible = pipeline.apply_availability(inputs, inputs[pipeline.AVAILABILITY], trainer.model.modalities)
    embedder, model = trainer.model.embedder, trainer.model

    @tf.function
    def encoders():
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(embedder(visible, training=True))
        return tape.gradient(total, embedder.trainable_variables)

    embeddings = embedder(visible, training=False)
    head_variables = (model.imagination.trainable_variables + model.classifier.trainable_variables
                      + trainer.backward.trainable_variables)

    @tf.function
    def heads():
        with tf.GradientTape() as tape:
            imagined = model.imagination(embeddings)
            total = tf.reduce_sum(model.classifier(imagined["latents"], training=True))
            total += tf.reduce_sum(trainer.backward(imagined["reconstruction"])["reconstruction"])
        return tape.gradient(total, head_variables)

    encoder_time, head_time = median_seconds(encoders, repeats), median_seconds(heads, repeats)
    step_time = step_seconds(trainer, batch, repeats)
    return encoder_time, head_time, max(step_time - encoder_time - head_time, 0.0), step_time


def step_seconds(trainer, batch, repeats):
    """Median seconds of one training step (forward, backward, update) on `batch`."""
    return median_seconds(tf.function(lambda: trainer.train_step(batch)), repeats)


def median_seconds(function, repeats):
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, function())
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run_setting(name, spreads, args, peak):
    with tempfile.TemporaryDirectory() as directory:
        data_dir = os.path.join(directory, "data")
        info = dataset(data_dir, args["train_utterances"], spreads, args["seed"])
        model_config = configs.ModelConfig(
            kind=configs.ModelKind.MMIN, classifier_dropout=0.5, use_cudnn=args["use_cudnn"])
        config = configs.TrainConfig(
            output_dir=directory,
            data=configs.DataConfig(data_dir=data_dir, fold="1", batch_size=args["batch_size"]),
            model=model_config, optimization=configs.MMIN_OPTIMIZATION,
        )
        batching = batching_for(info, config, fixed_shapes=args["jit_compile"])
        train = pipeline.read_fold_split(data_dir, info, "1", "train").cache()
        count = sum(1 for _ in train)
        modalities = info.modalities
        # Keras refuses XLA under op determinism.
        seeding.set_seed(args["seed"], op_determinism=args["op_determinism"] and not args["jit_compile"])

        # Baseline (also the teacher).
        teacher = construction.build_utterance_fusion(modalities, info.num_classes, model_config)
        baseline = ClassifierTrainer(teacher, clip_norm=0.5)
        baseline.compile(optimizer=keras.optimizers.Adam(2e-4), jit_compile=args["jit_compile"])
        full = pipeline.training_conditions(pipeline.ConditionMode.FULL, modalities)
        full_data = pipeline.repeat_epochs(pipeline.make_training_dataset(
            train, modalities, full, batching, sample_one_condition=False, seed=args["seed"]), batching)
        full_steps = pipeline.training_steps_per_epoch(count, len(full), batching, sample_one_condition=False)
        baseline.fit(full_data, epochs=1, steps_per_epoch=full_steps, verbose=0)  # warm-up: tracing
        report(name, "baseline", [count / timed_epoch(baseline, full_data, full_steps) for _ in range(args["rounds"])])

        missing = pipeline.training_conditions(pipeline.ConditionMode.RANDOM, modalities)
        steps = pipeline.training_steps_per_epoch(count, len(missing), batching, sample_one_condition=True)
        start = time.perf_counter()
        ids, values = teacher_embeddings(teacher.embedder, train, modalities, batching)
        cache_seconds = time.perf_counter() - start
        cached = pipeline.attach_per_utterance(train, pipeline.TEACHER_EMBEDDING, ids, values).cache()
        def cached_data(batching):
            return pipeline.repeat_epochs(pipeline.make_training_dataset(
                cached, modalities, missing, batching, sample_one_condition=True, seed=args["seed"],
                extra_keys=(pipeline.TEACHER_EMBEDDING,)), batching)

        ours_data = cached_data(batching)
        # The original draws batches at random and pads each to its longest utterance.
        unbucketed = pipeline.Batching(args["batch_size"])
        reference_data = pipeline.repeat_epochs(pipeline.make_training_dataset(
            train, modalities, missing, unbucketed, sample_one_condition=True, seed=args["seed"]), unbucketed)
        unbucketed_data = cached_data(unbucketed)

        chosen = resolve_encoder_rows(args["encoder_rows"])
        other = EncoderRows.PRESENT if chosen is EncoderRows.ALL else EncoderRows.ALL

        def mmin_trainer(reference=False, encoder_rows=chosen):
            trainer = construction.build_mmin_trainer(
                teacher, info.num_classes, dataclasses.replace(model_config, encoder_rows=encoder_rows),
                configs.LossConfig(), 1.0, True)
            if reference:
                trainer = ReferenceMMINTrainer.like(trainer)
            trainer.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                            jit_compile=False if reference else args["jit_compile"])
            return trainer

        runs = {
            "mmin": (mmin_trainer(), ours_data),
            f"mmin_{other.value}_rows": (mmin_trainer(encoder_rows=other), ours_data),
            "reference": (mmin_trainer(reference=True), reference_data),
        }
        if any(spreads):  # with equal lengths, bucketing changes nothing
            runs["mmin_unbucketed"] = (mmin_trainer(), unbucketed_data)
            if args["compare_boundaries"] and not args["jit_compile"]:
                runs["mmin_boundaries"] = (mmin_trainer(), cached_data(batching_for(info, config, fixed_shapes=True)))
        if args["mixed_precision"]:
            with dtype_policy(mixed_precision=True):
                runs["mmin_mixed_bfloat16"] = (mmin_trainer(), ours_data)
        ours, reference = runs["mmin"][0], runs["reference"][0]
        # Whether XLA really compiles the steps: Keras drops it silently for a model with a cuDNN LSTM.
        print(f"xla setting={name} requested={args['jit_compile']} baseline_compiled={bool(baseline.jit_compile)} "
              f"mmin_compiled={bool(ours.jit_compile)} use_cudnn={args['use_cudnn']}")
        # The six-conditions regime: (trainer, data, steps per epoch); rates count utterance-conditions.
        six = pipeline.training_conditions(pipeline.ConditionMode.ALL, modalities)
        grouped_steps = -(-count // pipeline.grouped_batching(batching, len(six)).batch_size)
        expanded_steps = -(-count * len(six) // args["batch_size"])
        all_conditions = {
            "mmin_all_conditions": (mmin_trainer(), pipeline.repeat_epochs(pipeline.make_training_dataset(
                cached, modalities, six, batching, sample_one_condition=False, seed=args["seed"],
                extra_keys=(pipeline.TEACHER_EMBEDDING,), group_conditions=True),
                pipeline.grouped_batching(batching, len(six))), grouped_steps),
            "reference_all_conditions": (mmin_trainer(reference=True), pipeline.repeat_epochs(
                pipeline.make_training_dataset(train, modalities, six, unbucketed, sample_one_condition=False,
                                               seed=args["seed"]), unbucketed), expanded_steps),
        }
        timed = {label: (trainer, data, steps) for label, (trainer, data) in runs.items()}
        timed.update(all_conditions)
        for trainer, data, epoch_steps in timed.values():  # warm-up: tracing
            trainer.fit(data, epochs=1, steps_per_epoch=epoch_steps, verbose=0)
        rates = {label: [] for label in timed}
        for _ in range(args["rounds"]):
            for label, (trainer, data, epoch_steps) in timed.items():
                per_epoch = count * (len(six) if label in all_conditions else 1)
                rates[label].append(per_epoch / timed_epoch(trainer, data, epoch_steps))
        for label in runs:
            report(name, label, rates[label], f"teacher_cache_seconds={cache_seconds:.2f}" if label == "mmin" else "")
        for label in all_conditions:
            report(name, label, rates[label], "unit=utterance_conditions")
        all_conditions_speedup = statistics.median(rates["mmin_all_conditions"]) / statistics.median(
            rates["reference_all_conditions"])
        print(f"speedup setting={name} all_conditions_over_reference={all_conditions_speedup:.2f}")

        counted = {label: (chosen, False) for label in runs}  # (student rows, teacher every step)
        counted.update({f"mmin_{other.value}_rows": (other, False), "reference": (EncoderRows.ALL, True)})
        repeats = 5 if args["quick"] else 10
        split = time_split(ours, next(iter(ours_data)), repeats)
        print(f"train_split setting={name} model=mmin encoders_ms={split[0] * 1e3:.1f} "
              f"imagination_classifier_ms={split[1] * 1e3:.1f} optimizer_and_rest_ms={split[2] * 1e3:.1f} "
              f"step_ms={split[3] * 1e3:.1f}")
        print(f"train_split setting={name} model=reference "
              f"step_ms={step_seconds(reference, next(iter(reference_data)), repeats) * 1e3:.1f}")
        for label, (_, data) in runs.items():
            first, whole = pipeline_epoch_seconds(data, steps)
            print(f"input_pipeline setting={name} model={label} first_batch_s={first:.3f} epoch_s={whole:.3f}")
        # One epoch's batches replayed from memory: what an epoch of `fit` costs with no input
        # pipeline work on the way. Each new iterator reshuffles, so this is another draw of the
        # epoch than the timed ones: compare achieved GFLOP/s where lengths vary.
        for label in ("mmin", "reference"):
            trainer, data = runs[label]
            batches = list(data.take(steps))
            seconds = timed_epoch(trainer, replayed(batches, data.element_spec), steps)
            work = epoch_flops_per_utterance(batches, modalities, model_config, *counted[label])
            print(f"fit_from_memory setting={name} model={label} steps={steps} epoch_s={seconds:.3f} "
                  f"utterances_per_second={count / seconds:.1f} gflops_per_utterance={work / 1e9:.3f} "
                  f"achieved_gflops_per_second={work * count / seconds / 1e9:.1f}")
        flops = {
            label: epoch_flops_per_utterance(runs[label][1].take(steps), modalities, model_config, *counting)
            for label, counting in counted.items()
        }
        for label, value in flops.items():
            rate = statistics.median(rates[label])
            print(f"train_flops setting={name} model={label} gflops_per_utterance={value / 1e9:.3f} "
                  f"achieved_gflops_per_second={value * rate / 1e9:.1f} fraction_of_matmul_peak={value * rate / peak:.3f}")
        gpu = peak_gpu_mib()
        print(f"train_memory setting={name} peak_rss_mib={peak_rss_mib():.0f}"
              + ("" if gpu is None else f" peak_gpu_mib={gpu:.0f}"))
        ratios = {label: statistics.median(rates[label]) / statistics.median(rates["reference"])
                  for label in runs if label != "reference"}
        ratios["all_conditions"] = all_conditions_speedup
        return ratios


def run_strategy_scaling(strategy, args):
    """Utterances/s of MMIN's training on one device and over `strategy`'s replicas; returns the ratio."""
    replicas = strategy.num_replicas_in_sync
    with tempfile.TemporaryDirectory() as directory:
        data_dir = os.path.join(directory, "data")
        info = dataset(data_dir, args["train_utterances"], (_LENGTH_SPREAD.value, _DURATION_SPREAD.value),
                       args["seed"])
        model_config = configs.ModelConfig(kind=configs.ModelKind.MMIN, classifier_dropout=0.5)
        config = configs.TrainConfig(
            output_dir=directory, data=configs.DataConfig(data_dir=data_dir, fold="1", batch_size=args["batch_size"]),
            model=model_config, optimization=configs.MMIN_OPTIMIZATION)
        batching = batching_for(info, config, fixed_shapes=False)
        train = pipeline.read_fold_split(data_dir, info, "1", "train").cache()
        count = sum(1 for _ in train)
        modalities = info.modalities
        seeding.set_seed(args["seed"], op_determinism=args["op_determinism"])
        teacher = construction.build_utterance_fusion(modalities, info.num_classes, model_config)
        ids, values = teacher_embeddings(teacher.embedder, train, modalities, batching)
        cached = pipeline.attach_per_utterance(train, pipeline.TEACHER_EMBEDDING, ids, values).cache()
        missing = pipeline.training_conditions(pipeline.ConditionMode.RANDOM, modalities)
        steps = pipeline.training_steps_per_epoch(count, len(missing), batching, sample_one_condition=True)
        data = pipeline.repeat_epochs(pipeline.make_training_dataset(
            cached, modalities, missing, batching, sample_one_condition=True, seed=args["seed"],
            extra_keys=(pipeline.TEACHER_EMBEDDING,)), batching)

        def trainer_under(scope_strategy):
            with scope_strategy.scope():
                trainer = construction.build_mmin_trainer(
                    teacher, info.num_classes, model_config, configs.LossConfig(), 1.0, True)
                trainer.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
                trainer(next(iter(data))[0])
                trainer.optimizer.build(trainer.trainable_variables)
            return trainer

        one_device = trainer_under(tf.distribute.get_strategy())
        replicated = trainer_under(strategy)

        def replicated_epoch():
            """Seconds of the second of two epochs of the distributed loop (the first starts its iterator)."""
            history = distributed_fit.fit(replicated, strategy, data, epochs=2, steps_per_epoch=steps,
                                          initial_epoch=0, callbacks=[EpochTimer()], verbose=0)
            return history.history["epoch_seconds"][1]

        timed_epoch(one_device, data, steps)  # warm-up: tracing
        replicated_epoch()
        rates = {"1": [], str(replicas): []}
        for _ in range(args["rounds"]):  # alternated, so load changes hit both alike
            rates["1"].append(count / timed_epoch(one_device, data, steps))
            rates[str(replicas)].append(count / replicated_epoch())
        for label, values in rates.items():
            report("iemocap", f"mmin_replicas_{label}", values)
        return statistics.median(rates[str(replicas)]) / statistics.median(rates["1"])


def report(setting, model, rates, extra=""):
    per_epoch = ",".join(f"{rate:.1f}" for rate in rates)
    print(f"train_throughput setting={setting} model={model} utterances_per_second={statistics.median(rates):.1f} "
          f"per_epoch={per_epoch} {extra}".rstrip())


def main(argv):
    del argv
    strategy = None
    if _STRATEGY.value == "mirrored":  # before TensorFlow initialises: the logical CPU devices
        strategy = distribution.make_strategy(
            distribution.StrategyKind.MIRRORED, 0 if tf.config.list_physical_devices("GPU") else _LOGICAL_CPUS.value)
    quick = _QUICK.value
    args = {
        "quick": quick,
        "rounds": 1 if quick else max(1, _ROUNDS.value),
        "train_utterances": 256 if quick else _TRAIN_UTTERANCES.value,
        "batch_size": _BATCH.value,
        "seed": _SEED.value,
        "jit_compile": _JIT.value,
        "op_determinism": _OP_DETERMINISM.value,
        "encoder_rows": _ENCODER_ROWS.value,
        "compare_boundaries": _COMPARE_BOUNDARIES.value,
        "mixed_precision": _MIXED_PRECISION.value,
        "use_cudnn": _USE_CUDNN.value,
    }
    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    print(f"machine cpus={os.cpu_count()} load_average={os.getloadavg()[0]:.2f} tensorflow={tf.__version__} "
          f"gpus={','.join(names) or 'none'} tf32={tf.config.experimental.tensor_float_32_execution_enabled()} jit_compile={_JIT.value} op_determinism={_OP_DETERMINISM.value} "
          f"encoder_rows={_ENCODER_ROWS.value.value}->{resolve_encoder_rows(_ENCODER_ROWS.value).value}")
    if strategy is not None:
        devices = ",".join(strategy.extended.worker_devices)
        print(f"strategy=mirrored replicas={strategy.num_replicas_in_sync} devices={devices}")
        ratio = run_strategy_scaling(strategy, args)
        print(f"scaling_replicas_{strategy.num_replicas_in_sync}_vs_1={ratio:.2f}")
        return
    # Large enough that one product runs well past launch overhead on a GPU.
    peak = matmul_peak_flops(8192 if gpus else 2048)
    print(f"matmul_peak_gflops_per_second={peak / 1e9:.1f}")
    variable = (_LENGTH_SPREAD.value, _DURATION_SPREAD.value)
    settings = [("fixed", (0.0, 0.0))] if quick else [("iemocap", variable), ("fixed", (0.0, 0.0))]
    speedups = {name: run_setting(name, spreads, args, peak) for name, spreads in settings}
    for name, ratios in speedups.items():
        print(f"speedup setting={name} " + " ".join(f"{label}_over_reference={ratio:.2f}" for label, ratio in ratios.items()))
    print(f"speedup_all_conditions_vs_reference={speedups[settings[0][0]]['all_conditions']:.2f}")
    print(f"speedup_vs_reference={min(ratios['mmin'] for ratios in speedups.values()):.2f}")


if __name__ == "__main__":
    app.run(main)
