"""The extraction flags shared by `python -m mmin_tf.extract` and `python -m mmin_tf.prepare`
(`--source=iemocap|msp_improv`), and the settings they make. Only entry points import this module."""

from __future__ import annotations

from typing import Optional, Sequence

from absl import flags

from mmin_tf.features import acoustic, faces, settings as settings_lib, text, visual

_MODALITIES = flags.DEFINE_list(
    "extract_modalities", None, "Modalities to extract, among acoustic (from audio), visual (video) and text "
    "(transcripts). Default: every one the media have.")
_BERT_PRESET = flags.DEFINE_string("bert_preset", None, "Local keras-hub or Hugging Face BERT directory (text).")
_FACE_MODEL = flags.DEFINE_string(
    "face_model", None, "Face model .keras file (visual), from python -m mmin_tf.features.train_face_model.")
_FEATURE_SET = flags.DEFINE_enum_class(
    "acoustic_feature_set", acoustic.AcousticFeatureSet.COMPARE_2016, acoustic.AcousticFeatureSet,
    "openSMILE configuration: ComParE_2016 (the original code) or IS13_ComParE (the paper's name).",
    case_sensitive=False)
_DOWNSAMPLE = flags.DEFINE_integer(
    "acoustic_downsample", 10, "Resample openSMILE's 10 ms frames by 1/N along time: 10 (the original) gives "
    "one frame per 100 ms, 1 keeps 10 ms.", lower_bound=1)
_SAMPLE_RATE = flags.DEFINE_integer("sample_rate", 16000, "Audio is resampled to this rate.", lower_bound=8000)
_ALIGNMENT = flags.DEFINE_enum_class(
    "text_alignment", text.TextAlignment.PIECES, text.TextAlignment,
    "One BERT vector per word piece (the original) or per word (the mean of its pieces).", case_sensitive=False)
_FRAME_RATE = flags.DEFINE_float("frame_rate", 0.0, "Video frames sampled per second; 0: every frame.", lower_bound=0)
_DETECTION = faces.FaceDetectionSettings()
_SCALE_FACTOR = flags.DEFINE_float("face_scale_factor", _DETECTION.scale_factor, "Haar cascade pyramid step (> 1).")
_MIN_NEIGHBORS = flags.DEFINE_integer(
    "face_min_neighbors", _DETECTION.min_neighbors, "Haar cascade detections a face needs.", lower_bound=0)
_MIN_FACE = flags.DEFINE_integer("face_min_size", _DETECTION.min_face_size, "Smallest face searched, pixels.", lower_bound=1)
_NO_FACE = flags.DEFINE_enum_class(
    "no_face", settings_lib.NoFace.ABSENT, settings_lib.NoFace,
    "An utterance without a face in any sampled frame: absent (no visual modality for it), zeros (one zero "
    "frame, the original) or error.",
    case_sensitive=False)
_SKIP = flags.DEFINE_bool("skip_bad_media", False, "Leave utterances whose media fail out, listed in DIR/skipped.csv.")
_BATCH = flags.DEFINE_integer("extraction_batch_size", 16, "Utterances extracted together.", lower_bound=1)


def settings_from_flags() -> settings_lib.ExtractionSettings:
    """The extraction settings the flags give."""
    return settings_lib.ExtractionSettings(
        acoustic=acoustic.AcousticSettings(_FEATURE_SET.value, _SAMPLE_RATE.value, _DOWNSAMPLE.value),
        text=text.TextSettings(_ALIGNMENT.value),
        visual=visual.VisualSettings(
            _FRAME_RATE.value or None,
            faces.FaceDetectionSettings(_SCALE_FACTOR.value, _MIN_NEIGHBORS.value, _MIN_FACE.value),
        ),
        no_face=_NO_FACE.value,
    )


def wanted_modalities(available: Sequence[str]) -> list[str]:
    """--extract_modalities, or every one of `available` (the modalities the media have)."""
    wanted = list(available) if _MODALITIES.value is None else list(_MODALITIES.value)
    absent = [modality for modality in wanted if modality not in available]
    if absent:
        raise ValueError(f"--extract_modalities asks for {absent}; the media have {list(available)}")
    return wanted


def extract_from_flags(
    records, out_dir: str, available: Sequence[str], *, name: str, label_names: Optional[Sequence[str]],
    utterances_per_shard: int, beam_options: Sequence[str], source: dict,
) -> dict:
    """`media_dataset.extract_dataset` with the flags' settings; `available`: the modalities the
    media have (used unless --extract_modalities chooses)."""
    from mmin_tf.extraction import media_dataset  # Beam: the features extra, imported when extracting

    return media_dataset.extract_dataset(
        records, out_dir, modalities=wanted_modalities(available), settings=settings_from_flags(), bert_preset=_BERT_PRESET.value,
        face_model=_FACE_MODEL.value, label_names=label_names, name=name, skip_bad_media=_SKIP.value,
        utterances_per_shard=utterances_per_shard, batch_size=_BATCH.value, beam_options=beam_options,
        source={**source, **{holder.name: holder.value for holder in _RECORDED}},
    )


# Recorded in dataset.json's `source` (the settings are recorded in `extraction`).
_RECORDED = (_MODALITIES, _BERT_PRESET, _FACE_MODEL, _SKIP)
