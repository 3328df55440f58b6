"""The Multimodal Cyclic Translation Network baseline as served: one model per missing condition."""

import keras
import numpy as np
import tensorflow as tf

import mmin_tf.layers  # noqa: F401  (registers the layers for deserialization)
from mmin_tf import modalities as modalities_lib
from mmin_tf.layers.sequence_resampler import SequenceResampler


@keras.saving.register_keras_serializable(package="mmin_tf")
class MCTN(keras.Model):
    """MCTN (Pham, Liang, Manzini, Morency, Poczos. AAAI 2019), inference path, for one condition.

    MCTN learns a joint representation by translating the source modality into a target one; at
    test time only the source is needed. MMIN's Table 5 trains one MCTN per missing-modality
    condition: the condition's available modalities are the source, its missing ones the targets.
    With one modality missing, the bimodal MCTN; with more, the hierarchical MCTN, one translation
    level per missing modality (in configured order):

        X_S = concat of the available modalities' sequences, per step (one modality: itself)
        E_1 = f_1(X_S)                      joint representation E_{S<->T1} (level 1, cyclic)
        E_k = f_k(E_{k-1}), k = 2..K        E_{(S<->T1)->Tk}: the hierarchical levels
        y^  = softmax(classifier(pool(E_K)))

    The decoders `g_k` (X^_Tk = g_k(E_k)), the back translation (X^_S = g_1(f_1(X^_T1))) and the
    losses are training-only and live in `MCTNTrainer`. As the public code
    (github.com/hainow/MCTN: `seq2seq/mctn_models.py` reuses `encoder` and `decoder` for the back
    translation; `utils/data_loader.py` zero-pads every modality's features to one width "for the
    cyclic loss"), level 1's encoder reads sequences of the source and of the first target
    modality alike, both zero-padded to `translation_width` = max(source width, target width).

    Frame rates differ between modalities (acoustic 100 ms frames, video frames, word pieces), so
    every sequence is first normalized (`normalization`, the training split's statistics) and then
    resampled to `steps` steps by linear interpolation over its valid frames (`SequenceResampler`:
    padding excluded, nothing truncated). The sources are concatenated per step after that.

    The inputs are those of every other model (`serving_default`: per-modality features and
    lengths); the missing modalities' inputs are never read, so any values (or none: length 0)
    give the same output. A source modality an utterance lacks (length 0) is a zero sequence.

    Args:
        modalities: tuple of `ModalitySpec` (or their JSON dicts, as in `get_config`).
        condition: the condition's name, e.g. "at": its modalities are the source; not the full
            condition (nothing would be missing to translate into).
        encoders: one `TranslationEncoder` per missing modality: level 1 reads
            `(batch, steps, translation_width)`, level k the previous level's output.
        pooling: `RecurrentAttentionPooling` on the last level's sequence.
        classifier: `ClassifierHead` on the pooled representation.
        steps: the common number of steps of every resampled sequence.
        normalization: dict modality name -> {"mean": list, "std": list} for the modalities to
            normalize; others are used as they are.

    Call arguments:
        inputs: dict with, per modality, `name` float `(batch, time, feature_dim)` and
            `name_length` int `(batch,)`; only the condition's modalities are read.
        training: enables dropout.

    Returns:
        Dict with `logits` `(batch, num_classes)`, `source` (X_S, `(batch, steps, source_width)`),
        `levels` (tuple of E_1 .. E_K, each `(batch, steps, hidden)`) and `joint` (E_K).
    """

    def __init__(self, modalities, condition, encoders, pooling, classifier, steps=20, normalization=None, **kwargs):
        super().__init__(**kwargs)
        deserialize = lambda layer: keras.layers.deserialize(layer) if isinstance(layer, dict) else layer
        self._modalities = modalities_lib.validate_modalities(
            spec if isinstance(spec, modalities_lib.ModalitySpec) else modalities_lib.ModalitySpec.from_json(spec)
            for spec in modalities
        )
        parsed = modalities_lib.parse_condition(condition, self._modalities)
        if parsed.is_full:
            raise ValueError(
                "MCTN translates the available modalities into the missing ones: the full condition "
                f"has none missing. Received: condition={condition!r}"
            )
        self.condition = parsed.name
        self.source_specs = tuple(spec for spec, on in zip(self._modalities, parsed.available) if on)
        self.target_specs = tuple(spec for spec, on in zip(self._modalities, parsed.available) if not on)
        self.encoders = [deserialize(encoder) for encoder in encoders]
        if len(self.encoders) != len(self.target_specs):
            raise ValueError(
                f"MCTN needs one encoder per missing modality ({[s.name for s in self.target_specs]}). "
                f"Received: {len(self.encoders)} encoders"
            )
        self.pooling = deserialize(pooling)
        self.classifier = deserialize(classifier)
        self.steps = steps
        self.resampler = SequenceResampler(steps, name="resampler")
        self.source_width = sum(spec.feature_dim for spec in self.source_specs)
        self.translation_width = max(self.source_width, self.target_specs[0].feature_dim)
        self.normalization = {
            name: {"mean": [float(v) for v in stats["mean"]], "std": [float(v) for v in stats["std"]]}
            for name, stats in (normalization or {}).items()
        }
        specs = {spec.name: spec for spec in self._modalities}
        unknown = sorted(set(self.normalization) - set(specs))
        if unknown:
            raise ValueError(f"`normalization` names unknown modalities {unknown}; known: {sorted(specs)}")
        self.normalizers = {}
        for name, stats in self.normalization.items():
            if len(stats["mean"]) != specs[name].feature_dim or len(stats["std"]) != specs[name].feature_dim:
                raise ValueError(
                    f"Normalization statistics of {name!r} must have {specs[name].feature_dim} values. "
                    f"Received: {len(stats['mean'])} means, {len(stats['std'])} stds"
                )
            self.normalizers[name] = keras.layers.Normalization(
                axis=-1, mean=np.asarray(stats["mean"], np.float32),
                variance=np.square(np.asarray(stats["std"], np.float32)), name=f"{name}_normalization",
            )

    @property
    def modalities(self):
        return self._modalities

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.source_specs)

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.target_specs)

    def build(self, input_shape=None):
        for spec in self._modalities:
            if spec.name in self.normalizers and not self.normalizers[spec.name].built:
                self.normalizers[spec.name].build((None, None, spec.feature_dim))
        width = self.translation_width
        for encoder in self.encoders:
            if not encoder.built:
                encoder.build((None, self.steps, width))
            width = encoder.hidden_size
        if not self.pooling.built:
            self.pooling.build((None, self.steps, width))
        if not self.classifier.built:
            self.classifier.build((None, self.pooling.output_size))
        self.built = True

    def resampled(self, inputs, names):
        """Each named modality normalized and resampled: dict name -> `(batch, steps, feature_dim)`.

        The trainer takes its translation targets from here, so targets and sources are prepared
        the same way.
        """
        sequences = {}
        for name in names:
            features = inputs[name]
            if name in self.normalizers:
                features = self.normalizers[name](features)
            sequences[name] = self.resampler(features, inputs[f"{name}_length"])
        return sequences

    def pad_to_translation_width(self, sequence):
        """`(batch, steps, width)` zero-padded on the feature axis to `translation_width`."""
        return tf.pad(sequence, [[0, 0], [0, 0], [0, self.translation_width - sequence.shape[-1]]])

    def call(self, inputs, training=None):
        sources = self.resampled(inputs, self.source_names)
        source = tf.concat([sources[name] for name in self.source_names], axis=-1)  # (B, N, S)
        levels = [self.encoders[0](self.pad_to_translation_width(source))]  # E_1: (B, N, H)
        for encoder in self.encoders[1:]:
            levels.append(encoder(levels[-1]))
        pooled = self.pooling(levels[-1])  # (B, H_p)
        return {
            "logits": self.classifier(pooled, training=training),
            "source": source,
            "levels": tuple(levels),
            "joint": levels[-1],
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            modalities=[spec.to_json() for spec in self._modalities],
            condition=self.condition,
            encoders=[keras.layers.serialize(encoder) for encoder in self.encoders],
            pooling=keras.layers.serialize(self.pooling),
            classifier=keras.layers.serialize(self.classifier),
            steps=self.steps,
            normalization=self.normalization,
        )
        return config
