"""Typed, frozen configuration. Flags are parsed into these in `train.py`; nothing reads FLAGS here.

Every config validates itself in `__post_init__`, so a bad setting fails before data is read.
Defaults follow the original code's IEMOCAP scripts (`CAP_utt_fusion.sh`, `CAP_mmin.sh`); the
paper's Table 3 settings are in `pipelines/iemocap_paper.flags`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Optional

from mmin_tf.data.pipeline import ConditionMode
from mmin_tf.layers.modality_embedder import EncoderRows


class Initialization(enum.Enum):
    """How the trained networks' weights are drawn before training."""

    KERAS = "keras"  # Keras's defaults (Glorot uniform, orthogonal recurrent kernels)
    ORIGINAL = "original"  # the original PyTorch code's (`mmin_tf.models.initialization`)


class ModelKind(enum.Enum):
    """What `python -m mmin_tf.train --model=...` trains."""

    BASELINE = "baseline"  # full-modality utterance fusion (also MMIN's teacher)
    AUGMENTED = "augmented"  # utterance fusion on full + all missing conditions
    MATCHED = "matched"  # utterance fusion trained on one condition (Table 7)
    MMIN = "mmin"
    MMIN_AE = "mmin_ae"  # plain autoencoder instead of the CRA (Table 6)
    MMIN_NOCYCLE = "mmin_nocycle"  # no backward imagination / cycle loss (Table 6)
    MCTN = "mctn"  # Pham et al. 2019, one model per missing condition (Table 5's MCTN row)

    @property
    def is_mmin(self) -> bool:
        return self in (ModelKind.MMIN, ModelKind.MMIN_AE, ModelKind.MMIN_NOCYCLE)

    @property
    def has_condition(self) -> bool:
        """Trained for one condition (`--condition`): the matched baselines and MCTN."""
        return self in (ModelKind.MATCHED, ModelKind.MCTN)


class SelectionMetric(enum.Enum):
    """Validation metric that picks the best epoch (IEMOCAP: UA; MSP-IMPROV: macro F1)."""

    UA = "ua"
    WA = "wa"
    F1 = "f1"


class ImaginationReduction(enum.Enum):
    """How the imagination losses (Eq. 6) reduce over embedding dimensions."""

    MEAN = "mean"  # mean over batch and dimensions: the original code (torch MSELoss)
    SUM = "sum"  # squared L2 norm per example, mean over batch: the paper's Eq. 6


def _positive(name, value):
    if value <= 0:
        raise ValueError(f"`{name}` must be positive. Received: {name}={value}")


def _rate(name, value):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data, which fold, how it is batched.

    Attributes:
        data_dir: dataset directory (`python -m mmin_tf.prepare`).
        fold: fold name in the dataset's `folds.json` ("1", "2", ...).
        batch_size: utterances per batch (conditions expanded count as utterances).
        normalize: modalities normalized with the training split's per-dimension statistics
            (the original normalizes acoustic only).
        bucket_by_length: batch utterances of similar acoustic length (`pipeline.Batching`'s
            sorted windows); False: batches in shuffled order, as the original.
    """

    data_dir: str
    fold: str
    batch_size: int = 128
    normalize: tuple[str, ...] = ("acoustic",)
    bucket_by_length: bool = True

    def __post_init__(self):
        if not self.data_dir:
            raise ValueError("`data_dir` is required")
        _positive("batch_size", self.batch_size)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture; sizes default to the original code (Table 3 where they agree).

    Attributes:
        kind: the model to train.
        embedding_size: utterance embedding per modality (LSTM hidden / TextCNN output).
        text_cnn_channels: filters per TextCNN kernel size.
        text_cnn_kernel_sizes: TextCNN window widths.
        text_cnn_dropout: dropout inside the TextCNN (the original fixes 0.5).
        classifier_hidden_sizes: classifier widths before the logits.
        classifier_dropout: dropout after each classifier hidden layer.
        autoencoder_hidden_sizes: each residual autoencoder's encoder widths (last = latent).
        num_blocks: residual autoencoders in the CRA.
        use_transition: the original code's transition MLP after the CRA.
        share_autoencoders: backward imagination shares the forward network's weights
            (the original's MSP-IMPROV script).
        use_cudnn: LSTM kernel choice on GPUs ("auto", "true", "false").
        encoder_rows: which rows the encoders run on (`EncoderRows`; see `ModalityEmbedder`):
            PRESENT skips the rows of missing modalities (fastest on CPUs), ALL encodes every
            row, zeros where missing (fastest on GPUs); AUTO picks by device.
        initialization: how the networks trained from scratch are initialised (`Initialization`):
            Keras's defaults or the original code's Kaiming-normal / PyTorch-LSTM scheme.
    """

    kind: ModelKind
    embedding_size: int = 128
    text_cnn_channels: int = 128
    text_cnn_kernel_sizes: tuple[int, ...] = (3, 4, 5)
    text_cnn_dropout: float = 0.5
    classifier_hidden_sizes: tuple[int, ...] = (128, 128)
    classifier_dropout: float = 0.3
    autoencoder_hidden_sizes: tuple[int, ...] = (256, 128, 64)
    num_blocks: int = 5
    use_transition: bool = True
    share_autoencoders: bool = False
    use_cudnn: str = "auto"
    encoder_rows: EncoderRows = EncoderRows.AUTO
    initialization: Initialization = Initialization.KERAS

    def __post_init__(self):
        if not isinstance(self.kind, ModelKind):
            raise TypeError(f"`kind` must be a ModelKind. Received: {self.kind!r}")
        _positive("embedding_size", self.embedding_size)
        _positive("num_blocks", self.num_blocks)
        _rate("classifier_dropout", self.classifier_dropout)
        _rate("text_cnn_dropout", self.text_cnn_dropout)
        if not self.text_cnn_kernel_sizes or min(self.text_cnn_kernel_sizes) < 1:
            raise ValueError(
                f"`text_cnn_kernel_sizes` must be positive. Received: {self.text_cnn_kernel_sizes}"
            )
        if not self.autoencoder_hidden_sizes:
            raise ValueError("`autoencoder_hidden_sizes` must be non-empty")
        if self.use_cudnn not in ("auto", "true", "false"):
            raise ValueError(f"`use_cudnn` must be auto, true or false. Received: {self.use_cudnn}")
        if not isinstance(self.encoder_rows, EncoderRows):
            raise TypeError(f"`encoder_rows` must be an EncoderRows. Received: {self.encoder_rows!r}")
        if not isinstance(self.initialization, Initialization):
            raise TypeError(f"`initialization` must be an Initialization. Received: {self.initialization!r}")


@dataclasses.dataclass(frozen=True)
class OptimizationConfig:
    """One training stage's optimizer and schedule.

    The learning rate is constant for `epochs` epochs, then decays linearly for `decay_epochs`
    (epoch j trains with lr * (1 - max(0, j - epochs) / (decay_epochs + 1)), the original's
    `lr_policy=linear`). Gradients are clipped to `clip_norm` separately for every network
    (each encoder, imagination, backward imagination, classifier), as the original does.
    `epsilon` is Adam's: Keras's default 1e-7, PyTorch's (the original's) 1e-8.
    """

    epochs: int
    decay_epochs: int
    learning_rate: float
    beta_1: float
    clip_norm: float
    weight_decay: float = 0.0
    epsilon: float = 1e-7

    def __post_init__(self):
        _positive("learning_rate", self.learning_rate)
        _positive("clip_norm", self.clip_norm)
        if self.epochs < 0 or self.decay_epochs < 0 or self.epochs + self.decay_epochs < 1:
            raise ValueError(
                "`epochs` and `decay_epochs` must be >= 0 with at least one epoch in total. "
                f"Received: epochs={self.epochs}, decay_epochs={self.decay_epochs}"
            )
        if not 0.0 <= self.beta_1 < 1.0:
            raise ValueError(f"`beta_1` must be in [0, 1). Received: {self.beta_1}")
        _positive("epsilon", self.epsilon)

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.decay_epochs

    def learning_rate_at(self, epoch: int) -> float:
        """Learning rate of 0-based `epoch`."""
        decay = max(0, epoch + 1 - self.epochs) / (self.decay_epochs + 1)
        return self.learning_rate * (1.0 - decay)


# The original scripts' settings: utterance fusion (CAP_utt_fusion.sh) and MMIN (CAP_mmin.sh).
CLASSIFIER_OPTIMIZATION = OptimizationConfig(
    epochs=10, decay_epochs=10, learning_rate=2e-4, beta_1=0.9, clip_norm=0.5
)
MMIN_OPTIMIZATION = OptimizationConfig(
    epochs=30, decay_epochs=30, learning_rate=2e-4, beta_1=0.5, clip_norm=1.0
)
# MCTN: the public code's Adam (lr 1e-4, Keras's beta_1 0.9; configs/mctn.yaml); it trains up to 200
# epochs with early stopping and clips nothing. Here 30 + 30 epochs as MMIN, clipping 1.0.
MCTN_OPTIMIZATION = OptimizationConfig(
    epochs=30, decay_epochs=30, learning_rate=1e-4, beta_1=0.9, clip_norm=1.0
)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """MMIN's loss weights (Eq. 7) and reduction. Original IEMOCAP script: 1 / 4 / 2, mean."""

    classification_weight: float = 1.0
    forward_weight: float = 4.0
    backward_weight: float = 2.0
    reduction: ImaginationReduction = ImaginationReduction.MEAN

    def __post_init__(self):
        for name in ("classification_weight", "forward_weight", "backward_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class MCTNConfig:
    """MCTN's sizes and loss weights (Pham et al., AAAI 2019; `mmin_tf.models.mctn`).

    Defaults are the public code's `configs/mctn.yaml` and `configs/hierarchical_mctn.yaml`
    (github.com/hainow/MCTN): sequences of 20 steps (its `max_seq_len`), 32 units, every
    translation and cycle loss weighted 0.1 (the prediction loss: `LossConfig.classification_weight`).

    Attributes:
        steps: every modality's sequence is resampled to this many steps (`SequenceResampler`).
        hidden_size: units of the encoders and decoders of every translation level and of the
            prediction network's LSTM.
        translation_weight: lambda_t, the source -> first missing modality translation loss.
        cycle_weight: lambda_c, the cycle (back translation) loss.
        second_translation_weight: the hierarchical levels' translation losses (two or more
            missing modalities).
    """

    steps: int = 20
    hidden_size: int = 32
    translation_weight: float = 0.1
    cycle_weight: float = 0.1
    second_translation_weight: float = 0.1

    def __post_init__(self):
        _positive("steps", self.steps)
        _positive("hidden_size", self.hidden_size)
        for name in ("translation_weight", "cycle_weight", "second_translation_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs.

    Attributes:
        output_dir: run directory (created; resumed if it holds an unfinished run).
        data: data settings.
        model: architecture.
        optimization: the trained model's stage.
        teacher_optimization: the baseline stage trained first when MMIN has no
            `pretrained_dir`.
        teacher_classifier_dropout: classifier dropout of that baseline (original: 0.3).
        losses: MMIN loss weights.
        condition_mode: MMIN's training conditions, random (default) or all; the utterance-fusion
            models' are fixed (baseline full, augmented augmented, matched matched).
        matched_condition: the condition of `--model=matched` and `--model=mctn` (e.g. "at"):
            the one the model trains and, for MCTN, tests on.
        mctn: MCTN's sizes and loss weights.
        finetune_encoders: MMIN trains its encoders (the original code) instead of keeping the
            pretrained ones fixed (a reading of the paper).
        pretrained_dir: a baseline run of the same fold and modalities (MMIN's teacher).
        selection_metric: validation metric for the best epoch.
        seed: initialisation, shuffling and condition draws.
        jit_compile: XLA. None lets Keras choose, which with TF's op determinism on (every run
            but an XLA one) is off; True compiles the step and turns op determinism off (Keras
            refuses XLA with it), and batches then pad to fixed bucket lengths.
        mixed_precision: Keras's `mixed_bfloat16` policy for the models this run builds
            (bfloat16 compute, float32 weights); the caller's global policy is restored after.
            Accuracy against float32 not measured.
        profile_batch: (start, stop) batches traced for TensorBoard's profiler; None: off.
        train_missing_rates: `(modality, rate)` pairs: each training utterance loses each
            modality with that probability (drawn from `seed` and the utterance: the teacher and
            MMIN of a run lose the same ones), at least one kept (RedCore's setting).
        evaluation_missing_rates: besides the fixed conditions, the test split is scored with
            each modality of each utterance dropped at each of these rates, at least one kept
            (the missing-rate protocol of GCNet and its successors); `metrics.json["missing_rates"]`.
        missing_rate_seed: the seed of those test masks; with the utterance id alone it fixes
            them, so every model and run is scored on identical masks.
    """

    output_dir: str
    data: DataConfig
    model: ModelConfig
    optimization: OptimizationConfig
    teacher_optimization: OptimizationConfig = CLASSIFIER_OPTIMIZATION
    teacher_classifier_dropout: float = 0.3
    losses: LossConfig = LossConfig()
    condition_mode: Optional[ConditionMode] = None
    matched_condition: Optional[str] = None
    finetune_encoders: bool = True
    pretrained_dir: Optional[str] = None
    selection_metric: SelectionMetric = SelectionMetric.UA
    seed: int = 0
    jit_compile: Optional[bool] = None
    mixed_precision: bool = False
    profile_batch: Optional[tuple[int, int]] = None
    train_missing_rates: tuple[tuple[str, float], ...] = ()
    evaluation_missing_rates: tuple[float, ...] = ()
    missing_rate_seed: int = 0
    mctn: MCTNConfig = MCTNConfig()

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("`output_dir` is required")
        kind = self.model.kind
        if kind is ModelKind.MCTN and self.matched_condition is None:
            raise ValueError(
                "--model=mctn trains one model per missing-modality condition: name it with --condition "
                "(e.g. --condition=at, acoustic and text available, visual missing)")
        if kind is ModelKind.MCTN and self.evaluation_missing_rates:
            raise ValueError(
                "--model=mctn is tested under its own condition only; the missing-rate protocol "
                f"(--missing_rates) mixes conditions. Received: missing_rates={self.evaluation_missing_rates}")
        if kind.has_condition != (self.matched_condition is not None):
            raise ValueError(
                "`matched_condition` (e.g. 'at') is required by --model=matched and --model=mctn and only by them. "
                f"Received: model={kind.value}, matched_condition={self.matched_condition!r}"
            )
        if self.pretrained_dir is not None and not kind.is_mmin:
            raise ValueError(
                f"`pretrained_dir` is only used by MMIN models. Received: model={kind.value}"
            )
        mode = self.resolved_condition_mode
        fixed = _CLASSIFIER_CONDITIONS.get(kind)
        if fixed is not None and mode is not fixed:
            raise ValueError(
                f"--model={kind.value} trains on condition mode {fixed.value!r} (the condition mode "
                f"chooses MMIN's training conditions). Received: {mode.value}"
            )
        if kind.is_mmin and mode not in (ConditionMode.RANDOM, ConditionMode.ALL):
            raise ValueError(
                "MMIN learns from missing-modality conditions: condition mode must be 'random' "
                f"or 'all'. Received: {mode.value}"
            )
        if self.profile_batch is not None and not 0 < self.profile_batch[0] <= self.profile_batch[1]:
            raise ValueError(f"`profile_batch` must be (start, stop), 0 < start <= stop. Received: {self.profile_batch}")
        _rate("teacher_classifier_dropout", self.teacher_classifier_dropout)
        names = [name for name, _ in self.train_missing_rates]
        if len(set(names)) != len(names):
            raise ValueError(f"`train_missing_rates` names a modality twice. Received: {self.train_missing_rates}")
        for name, rate in self.train_missing_rates:
            _rate(f"train_missing_rates[{name!r}]", rate)
        for rate in self.evaluation_missing_rates:
            if not 0.0 < rate < 1.0:
                raise ValueError(f"`evaluation_missing_rates` must be in (0, 1). Received: {self.evaluation_missing_rates}")
        if list(self.evaluation_missing_rates) != sorted(set(self.evaluation_missing_rates)):
            raise ValueError(
                f"`evaluation_missing_rates` must be increasing and distinct. Received: {self.evaluation_missing_rates}")

    @property
    def resolved_condition_mode(self) -> ConditionMode:
        if self.condition_mode is not None:
            return self.condition_mode
        return _CLASSIFIER_CONDITIONS.get(self.model.kind, ConditionMode.RANDOM)

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=_encode))

    @classmethod
    def from_json(cls, config: dict) -> "TrainConfig":
        """The inverse of `to_json` (a run's config.json), validated again."""
        model = dict(config["model"], kind=ModelKind(config["model"]["kind"]))
        # Fields absent from runs begun before they existed take their defaults.
        if "encoder_rows" in model:
            model["encoder_rows"] = EncoderRows(model["encoder_rows"])
        if "initialization" in model:
            model["initialization"] = Initialization(model["initialization"])
        for key in ("text_cnn_kernel_sizes", "classifier_hidden_sizes", "autoencoder_hidden_sizes"):
            model[key] = tuple(model[key])
        mode = config["condition_mode"]
        return cls(**{
            **config,
            "data": DataConfig(**dict(config["data"], normalize=tuple(config["data"]["normalize"]))),
            "model": ModelConfig(**model),
            "optimization": OptimizationConfig(**config["optimization"]),
            "teacher_optimization": OptimizationConfig(**config["teacher_optimization"]),
            "losses": LossConfig(**dict(config["losses"], reduction=ImaginationReduction(config["losses"]["reduction"]))),
            "condition_mode": None if mode is None else ConditionMode(mode),
            "selection_metric": SelectionMetric(config["selection_metric"]),
            "profile_batch": None if config["profile_batch"] is None else tuple(config["profile_batch"]),
            "train_missing_rates": tuple((name, float(rate)) for name, rate in config.get("train_missing_rates", ())),
            "evaluation_missing_rates": tuple(float(rate) for rate in config.get("evaluation_missing_rates", ())),
            "mctn": MCTNConfig(**config.get("mctn", {})),
        })


_CLASSIFIER_CONDITIONS = {
    ModelKind.BASELINE: ConditionMode.FULL,
    ModelKind.AUGMENTED: ConditionMode.AUGMENTED,
    ModelKind.MATCHED: ConditionMode.MATCHED,
    ModelKind.MCTN: ConditionMode.MATCHED,
}


def _encode(value):
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"Cannot encode {value!r}")
