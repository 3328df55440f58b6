"""Per-modality encoders with normalization and the paper's missing-modality embedding."""

import enum

import keras
import numpy as np
import tensorflow as tf

from mmin_tf import modalities as modalities_lib

class EncoderRows(enum.Enum):
    """Which rows of a batch reach the encoders (see `ModalityEmbedder`)."""

    AUTO = "auto"  # ALL where TensorFlow sees a GPU, else PRESENT
    PRESENT = "present"  # the rows where the modality is present, plus one shared zero row
    ALL = "all"  # every row, zeros where the modality is missing


def encoder_rows_from(value) -> EncoderRows:
    """`value`, an `EncoderRows` or its string value, as an `EncoderRows`."""
    try:
        return EncoderRows(value)
    except ValueError:
        names = [choice.value for choice in EncoderRows]
        raise ValueError(f"`encoder_rows` must be one of {names}. Received: {value!r}") from None


def resolve_encoder_rows(encoder_rows) -> EncoderRows:
    """`PRESENT` or `ALL`: `encoder_rows` with `AUTO` resolved by whether TensorFlow sees a GPU here."""
    encoder_rows = encoder_rows_from(encoder_rows)
    if encoder_rows is not EncoderRows.AUTO:
        return encoder_rows
    return EncoderRows.ALL if tf.config.list_physical_devices("GPU") else EncoderRows.PRESENT


@keras.saving.register_keras_serializable(package="mmin_tf")
class ModalityEmbedder(keras.layers.Layer):
    """Encodes every modality and concatenates the utterance embeddings (paper Eq. 1).

    For each modality, in configured order: the frames are normalized with the training split's
    statistics, padding is zeroed, and the encoder runs on the rows where the modality is present
    (`length > 0`) only. A missing modality's embedding is the encoder's output on an all-zero
    input (`h_miss` in Eq. 1): the costly part of the encoder (`pool`) runs once per batch on
    `encoder.minimum_length` zero frames and is shared by every row where the modality is
    missing, so it depends neither on padding nor on the other rows of the batch, and no encoder
    time is spent on inputs without signal. The per-row part (`project`, which holds TextCNN's
    dropout) runs on every row, so in training each missing row draws its own dropout mask, as
    when the original encodes every row's zeros.

    `encoder_rows` (`EncoderRows`) chooses how the rows reach the encoders; the embeddings are the
    same either way (up to float rounding; under dropout, equal in distribution):
      - "present": only the rows where the modality is present, gathered, plus the one shared
        all-zero row, scattered back. The work falls with every missing modality: fastest on CPUs.
      - "all": every row, its input zeroed (and given `minimum_length` frames) where the modality
        is missing, as the original code encodes. No data-dependent shapes, so no gather /
        scatter and no device-to-host sync per encoder: on a GPU, which runs an LSTM's rows in
        parallel, skipping rows saves little and those costs dominate.
      - "auto": "all" when TensorFlow sees a GPU where the call is traced, else "present".
    "auto" is resolved when the graph is traced, so an exported SavedModel keeps the choice of
    the machine that exported it (`python -m mmin_tf.export --encoder_rows` overrides it).

    Args:
        modalities: tuple of `ModalitySpec` (or their JSON dicts, as in `get_config`).
        encoders: dict modality name -> encoder layer with `pool(features, lengths)` ->
            `(batch, pooled)`, `project(pooled, training)` -> `(batch, output_size)` (its call is
            `project(pool(...))`), an `output_size` and a `minimum_length`.
        normalization: dict modality name -> {"mean": list, "std": list} for the modalities to
            normalize; others are used as they are.
        encoder_rows: an `EncoderRows` or its value, "auto", "present" or "all" (see above).

    Call arguments:
        inputs: dict with, per modality, `name` float `(batch, time, feature_dim)` and
            `name_length` int `(batch,)`; length 0 = missing. Other keys are ignored.
        training: passed to the encoders (dropout).

    Returns:
        `(batch, sum of encoder output sizes)`.
    """

    def __init__(self, modalities, encoders, normalization=None, encoder_rows=EncoderRows.AUTO, **kwargs):
        super().__init__(**kwargs)
        self.encoder_rows = encoder_rows
        self.modalities = tuple(
            spec if isinstance(spec, modalities_lib.ModalitySpec)
            else modalities_lib.ModalitySpec.from_json(spec)
            for spec in modalities
        )
        modalities_lib.validate_modalities(self.modalities)
        names = [spec.name for spec in self.modalities]
        if set(encoders) != set(names):
            raise ValueError(
                f"`encoders` must have one encoder per modality {names}. Received: {sorted(encoders)}"
            )
        self.encoders = {
            name: keras.layers.deserialize(encoder) if isinstance(encoder, dict) else encoder
            for name, encoder in encoders.items()
        }
        self.normalization = {
            name: {"mean": [float(v) for v in stats["mean"]], "std": [float(v) for v in stats["std"]]}
            for name, stats in (normalization or {}).items()
        }
        unknown = sorted(set(self.normalization) - set(names))
        if unknown:
            raise ValueError(f"`normalization` names unknown modalities {unknown}; known: {names}")
        self.normalizers = {}
        for spec in self.modalities:
            if spec.name not in self.normalization:
                continue
            stats = self.normalization[spec.name]
            if len(stats["mean"]) != spec.feature_dim or len(stats["std"]) != spec.feature_dim:
                raise ValueError(
                    f"Normalization statistics of {spec.name!r} must have {spec.feature_dim} "
                    f"values. Received: {len(stats['mean'])} means, {len(stats['std'])} stds"
                )
            self.normalizers[spec.name] = keras.layers.Normalization(
                axis=-1,
                mean=np.asarray(stats["mean"], np.float32),
                variance=np.square(np.asarray(stats["std"], np.float32)),
                name=f"{spec.name}_normalization",
            )

    @property
    def encoder_rows(self) -> EncoderRows:
        """Set before the graph is traced (see the class docstring); takes an `EncoderRows` or its value."""
        return self._encoder_rows

    @encoder_rows.setter
    def encoder_rows(self, value):
        self._encoder_rows = encoder_rows_from(value)

    @property
    def output_size(self):
        return sum(self.encoders[spec.name].output_size for spec in self.modalities)

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The inputs `call` reads: each modality's features and lengths."""
        return tuple(key for spec in self.modalities for key in (spec.name, spec.length_key))

    def build(self, input_shape=None):
        for spec in self.modalities:
            if not self.encoders[spec.name].built:
                self.encoders[spec.name].build((None, None, spec.feature_dim), (None,))
            if spec.name in self.normalizers and not self.normalizers[spec.name].built:
                self.normalizers[spec.name].build((None, None, spec.feature_dim))
        self.built = True

    def embed_modality(self, spec, features, lengths, training=None):
        """One modality's embeddings `(batch, output_size)` from `features` `(batch, time, dim)` and
        `lengths` `(batch,)` (0 = missing), by the `encoder_rows` strategy; see the class docstring."""
        if resolve_encoder_rows(self.encoder_rows) is EncoderRows.ALL:
            return self.embed_every_row(spec, features, lengths, training)
        return self.embed_present_rows(spec, features, lengths, training)

    def embed_present_rows(self, spec, features, lengths, training=None):
        """The encoder on the present rows and one shared all-zero row; `(batch, output_size)`."""
        rows, _ = self.pool_present_rows(spec, features, lengths)
        return self.encoders[spec.name].project(rows, training=training)  # (B, E): a dropout mask per row

    def pool_present_rows(self, spec, features, lengths):
        """The costly, deterministic part of `embed_present_rows`: the encoder's pooled features of
        every row `(batch, pooled)` (a missing row's are those of zeros) and of zeros `(1, pooled)`.

        `encoder.project` of a row gives its embedding; projecting the same pooled row several
        times draws a dropout mask each time, which is how a batch of utterances is encoded once for
        all its missing-modality conditions (`MMINTrainer`'s grouped step).
        """
        encoder = self.encoders[spec.name]
        batch = tf.shape(lengths)[0]
        present = tf.where(lengths > 0)[:, 0]  # (P,)
        present_features = tf.gather(features, present)  # (P, T, D)
        if spec.name in self.normalizers:
            present_features = self.normalizers[spec.name](present_features)
        # One extra all-zero row of `minimum_length` frames, first in the batch, gives the
        # missing-modality embedding in the same encoder call (and keeps the batch non-empty).
        # It goes first because slicing from the end of a dynamic batch miscompiles under XLA.
        shortfall = tf.maximum(encoder.minimum_length - tf.shape(features)[1], 0)
        present_features = tf.pad(present_features, [[1, 0], [0, shortfall], [0, 0]])
        present_lengths = tf.concat(
            [tf.fill([1], tf.cast(encoder.minimum_length, lengths.dtype)), tf.gather(lengths, present)],
            axis=0,
        )
        valid = tf.sequence_mask(present_lengths, tf.shape(present_features)[1], present_features.dtype)
        pooled = encoder.pool(present_features * valid[:, :, None], present_lengths)  # (P + 1, F)
        missing = pooled[:1]  # (1, F): the encoder's pooled features of zeros (Eq. 1)
        rows = tf.tensor_scatter_nd_update(tf.repeat(missing, batch, axis=0), present[:, None], pooled[1:])
        return rows, missing

    def embed_every_row(self, spec, features, lengths, training=None):
        """The encoder on every row, missing rows as `minimum_length` zero frames (the original's
        computation); `(batch, output_size)`."""
        encoder = self.encoders[spec.name]
        present = lengths > 0  # (B,)
        if spec.name in self.normalizers:
            features = self.normalizers[spec.name](features)
        shortfall = tf.maximum(encoder.minimum_length - tf.shape(features)[1], 0)
        features = tf.pad(features, [[0, 0], [0, shortfall], [0, 0]])
        lengths = tf.where(present, lengths, tf.cast(encoder.minimum_length, lengths.dtype))
        # Valid frames of present rows keep their values; a missing row is all zeros.
        valid = tf.logical_and(tf.sequence_mask(lengths, tf.shape(features)[1]), present[:, None])  # (B, T)
        features = features * tf.cast(valid, features.dtype)[:, :, None]
        return encoder(features, lengths, training=training)

    def call(self, inputs, training=None):
        parts = [
            self.embed_modality(spec, inputs[spec.name], inputs[spec.length_key], training)
            for spec in self.modalities
        ]
        return tf.concat(parts, axis=-1)  # (B, sum E_m)

    def compute_output_shape(self, input_shape=None):
        return (None, self.output_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            modalities=[spec.to_json() for spec in self.modalities],
            encoders={name: keras.layers.serialize(layer) for name, layer in self.encoders.items()},
            normalization=self.normalization,
            encoder_rows=self.encoder_rows.value,
        )
        return config
