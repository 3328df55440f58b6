"""Imports a corpus into the mmin_tf dataset format.

    python -m mmin_tf.prepare --source=synthetic --out=data/synthetic [--num_utterances=N --seed=S]
    python -m mmin_tf.prepare --source=manifest --manifest=corpus.csv --out=data/mine
    python -m mmin_tf.prepare --source=mmin_features --features_dir=IEMOCAP_features --out=data/iemocap
    python -m mmin_tf.prepare --source=iemocap --corpus_dir=IEMOCAP_full_release --out=data/iemocap \
        --bert_preset=models/bert_large_en_uncased --face_model=models/face.keras
    python -m mmin_tf.prepare --source=msp_improv --corpus_dir=MSP-IMPROV --out=data/msp_improv ...

`iemocap` and `msp_improv` read the raw release (`mmin_tf/corpora/`, docs/corpora.md) and extract
its features as `python -m mmin_tf.extract` does (its flags apply, Beam options included);
`--media_manifest_only` writes the release's media manifest to `--out` (a CSV) instead, for
extraction elsewhere. The output appears only when the import is complete; bad input stops the
import with an error naming the utterance and the file, and leaves nothing behind.
"""

import enum
import os

from absl import app, flags, logging

from mmin_tf import cli
from mmin_tf.corpora import iemocap, msp_improv
from mmin_tf.data import manifest, media_manifest, mmin_features, synthetic
from mmin_tf.data.writer import DatasetWriter
from mmin_tf.extraction import flags as extraction_flags

ALL_MODALITIES = ("acoustic", "visual", "text")


class Source(enum.Enum):
    SYNTHETIC = "synthetic"
    MANIFEST = "manifest"
    MMIN_FEATURES = "mmin_features"
    IEMOCAP = "iemocap"
    MSP_IMPROV = "msp_improv"


_SOURCE = flags.DEFINE_enum_class("source", Source.SYNTHETIC, Source, "Where the corpus comes from.", case_sensitive=False)
_OUT = flags.DEFINE_string("out", None, "Dataset directory to create (must not exist).", required=True)
_NAME = flags.DEFINE_string("name", None, "Corpus name stored in dataset.json (default: the source).")
_MODALITIES = flags.DEFINE_list(
    "modalities", [], "Modalities as name:code:feature_dim:encoder (encoder: lstm or text_cnn). "
    "Default: acoustic:a:130:lstm,visual:v:342:lstm,text:t:1024:text_cnn.")
_LABEL_NAMES = flags.DEFINE_list(
    "label_names", None, "Class names, in label-index order. Default: the synthetic corpus's and IEMOCAP's "
    "happy,anger,sadness,neutral; for mmin_features anger,happy,neutral,sadness; for a manifest its labels, sorted.")
_UTTERANCES_PER_SHARD = flags.DEFINE_integer("utterances_per_shard", 256, "Records per TFRecord shard.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the synthetic corpus.")
_SYNTHETIC_DEFAULTS = synthetic.SyntheticConfig()
_NUM_UTTERANCES = flags.DEFINE_integer(
    "num_utterances", _SYNTHETIC_DEFAULTS.num_utterances, "Synthetic corpus size.", lower_bound=1)
_MEAN_LENGTHS = flags.DEFINE_list(
    "mean_lengths", [f"{name}:{frames}" for name, frames in synthetic.DEFAULT_MEAN_LENGTHS.items()],
    "Synthetic mean frames per utterance, as modality:frames.")
_NUM_GROUPS = flags.DEFINE_integer("num_groups", _SYNTHETIC_DEFAULTS.num_groups, "Synthetic sessions (groups).")
_LENGTH_SPREAD = flags.DEFINE_float(
    "length_spread", _SYNTHETIC_DEFAULTS.length_spread,
    "Synthetic: log-normal sigma of each length, drawn per modality.", lower_bound=0)
_DURATION_SPREAD = flags.DEFINE_float(
    "duration_spread", _SYNTHETIC_DEFAULTS.duration_spread, "Synthetic: log-normal sigma of a duration factor shared by an "
    "utterance's modalities (correlated lengths); 0: independent lengths.", lower_bound=0)
_MANIFEST = flags.DEFINE_string("manifest", None, "CSV for --source=manifest.")
_FEATURES_DIR = flags.DEFINE_string("features_dir", None, "Release root for --source=mmin_features.")
_CORPUS_DIR = flags.DEFINE_string(
    "corpus_dir", None, "For --source=iemocap: the IEMOCAP_full_release directory; for msp_improv: the directory "
    "holding Evalution.txt, Audio/, Video/ and All_human_transcriptions/ (ASSUMED layout, not verified on the "
    "release: the video tree mirrors Audio/ with UTD-IMPROV-<name>.avi files; recordings whose condition letter "
    "is S are the paper's Other-improvised ones; docs/corpora.md, 'Assumptions').")
_MANIFEST_ONLY = flags.DEFINE_bool(
    "media_manifest_only", False, "iemocap / msp_improv: write the media manifest CSV to --out, extract nothing.")
_SESSIONS = flags.DEFINE_list("sessions", None, "iemocap / msp_improv: session numbers to read (default: all).")
_IEMOCAP_AUDIO = flags.DEFINE_enum_class(
    "iemocap_audio", iemocap.IemocapAudio.SENTENCE, iemocap.IemocapAudio,
    "IEMOCAP audio: sentence (sentences/wav/<dialog>/<utterance>.wav, the original) or dialog (the dialog wav "
    "with the utterance's span).", case_sensitive=False)
_MOCAP_REGION = flags.DEFINE_string(
    "mocap_actor_region", str(iemocap.LEFT_HALF), "IEMOCAP: frame region (left:top:right:bottom) of the actor "
    "who wore the markers (the dialog name's letter); the MMIN lab's cutting script puts that actor left.")
_OTHER_REGION = flags.DEFINE_string(
    "other_actor_region", str(iemocap.RIGHT_HALF), "IEMOCAP: frame region of the other actor.")
_MSP_SPEAKER = flags.DEFINE_enum_class(
    "msp_speaker_rule", msp_improv.MspSpeakerRule.ACTOR_FIELD, msp_improv.MspSpeakerRule,
    "MSP-IMPROV speaker: the name's actor field (F01, as public readers) or the turn letter (ASSUMED "
    "alternative; docs/corpora.md).", case_sensitive=False)
_MSP_MIN_DURATION = flags.DEFINE_float(
    "msp_min_duration", 1.0, "MSP-IMPROV: recordings shorter than this many seconds are dropped.", lower_bound=0)
_MSP_REGION = flags.DEFINE_string("msp_face_region", None, "MSP-IMPROV: frame region (left:top:right:bottom) of the face (default: the whole "
    "frame; ASSUMED: one actor in view, not verified on the release).")
_FEATURE_FILES = flags.DEFINE_list(
    "feature_files", [], "For --source=mmin_features: modality:path.h5 entries (relative to "
    "--features_dir) overriding acoustic:A/comparE.h5,visual:V/denseface.h5,text:L/bert_large.h5; "
    "MSP-IMPROV needs acoustic:A/comparE_raw.h5.")


def main(argv):
    source = _SOURCE.value
    if source in (Source.IEMOCAP, Source.MSP_IMPROV):
        return _prepare_release(source, argv[1:])
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    modalities = cli.parse_modalities(_MODALITIES.value)
    folds = None
    if source is Source.SYNTHETIC:
        config = synthetic.SyntheticConfig(
            num_utterances=_NUM_UTTERANCES.value,
            modalities=modalities,
            mean_lengths=tuple(cli.parse_int_mapping(_MEAN_LENGTHS.value, "--mean_lengths").items()),
            num_groups=_NUM_GROUPS.value,
            length_spread=_LENGTH_SPREAD.value,
            duration_spread=_DURATION_SPREAD.value,
            seed=_SEED.value,
        )
        label_names = _LABEL_NAMES.value or synthetic.IEMOCAP_LABEL_NAMES
        utterances = synthetic.generate(config)
    elif source is Source.MANIFEST:
        if not _MANIFEST.value:
            raise app.UsageError("--source=manifest needs --manifest")
        label_names = _LABEL_NAMES.value
        if label_names is None:
            label_names = manifest.manifest_labels(_MANIFEST.value)
            logging.info("Label order (sorted manifest labels): %s", label_names)
        utterances = manifest.read_manifest(_MANIFEST.value, modalities, label_names)
    else:
        if not _FEATURES_DIR.value:
            raise app.UsageError("--source=mmin_features needs --features_dir")
        label_names = _LABEL_NAMES.value or mmin_features.DEFAULT_LABEL_NAMES
        release = mmin_features.read_release(
            _FEATURES_DIR.value, modalities, _parse_feature_files(_FEATURE_FILES.value))
        utterances, folds = release.utterances(), release.folds
    recorded = {
        Source.SYNTHETIC: (_SEED, _NUM_UTTERANCES, _MEAN_LENGTHS, _NUM_GROUPS, _LENGTH_SPREAD, _DURATION_SPREAD),
        Source.MANIFEST: (_MANIFEST,),
        Source.MMIN_FEATURES: (_FEATURES_DIR, _FEATURE_FILES),
    }[source]
    source_record = {"importer": source.value, **{holder.name: holder.value for holder in recorded}}
    with DatasetWriter(
        _OUT.value, name=_NAME.value or source.value, modalities=modalities,
        label_names=label_names, utterances_per_shard=_UTTERANCES_PER_SHARD.value,
        source=source_record,
    ) as writer:
        for utterance in utterances:
            writer.write(utterance)
        info = writer.finish(folds)
    logging.info("Dataset %s: %d utterances, folds %s", _OUT.value, info.num_utterances, list(info.fold_names))


def _region(text):
    return media_manifest.FaceRegion.parse(text) if text else None


def _prepare_release(source, beam_options):
    """Reads a raw release (IEMOCAP, MSP-IMPROV) and extracts it, or writes its media manifest."""
    if not _CORPUS_DIR.value:
        raise app.UsageError(f"--source={source.value} needs --corpus_dir")
    wanted = extraction_flags.wanted_modalities(ALL_MODALITIES)
    sessions = {} if _SESSIONS.value is None else {"sessions": tuple(int(value) for value in _SESSIONS.value)}
    if source is Source.IEMOCAP:
        settings = iemocap.IemocapSettings(
            **sessions, audio=_IEMOCAP_AUDIO.value if "acoustic" in wanted else None,
            include_video="visual" in wanted, include_transcript="text" in wanted,
            mocap_actor_region=_region(_MOCAP_REGION.value), other_actor_region=_region(_OTHER_REGION.value),
            **({"label_names": tuple(_LABEL_NAMES.value)} if _LABEL_NAMES.value else {}))
        reading = iemocap.read_iemocap(_CORPUS_DIR.value, settings)
    else:
        defaults = msp_improv.MspImprovSettings()
        settings = msp_improv.MspImprovSettings(
            **sessions, min_duration_s=_MSP_MIN_DURATION.value, speaker_rule=_MSP_SPEAKER.value,
            video_dir=defaults.video_dir if "visual" in wanted else None,
            transcript_dir=defaults.transcript_dir if "text" in wanted else None,
            face_region=_region(_MSP_REGION.value),
            **({"label_names": tuple(_LABEL_NAMES.value)} if _LABEL_NAMES.value else {}))
        reading = msp_improv.read_msp_improv(_CORPUS_DIR.value, settings)
    if _MANIFEST_ONLY.value:
        if os.path.exists(_OUT.value):
            raise FileExistsError(f"--out {_OUT.value!r} already exists; choose another or delete it first")
        count = media_manifest.write_media_manifest(_OUT.value, reading.records)
        logging.info("Wrote the media manifest of %d utterances to %s", count, _OUT.value)
        return
    summary = extraction_flags.extract_from_flags(
        reading.records, _OUT.value, ALL_MODALITIES, name=_NAME.value or source.value,
        label_names=settings.label_names, utterances_per_shard=_UTTERANCES_PER_SHARD.value,
        beam_options=beam_options,
        source={"importer": source.value, "corpus_dir": os.path.abspath(_CORPUS_DIR.value),
                "corpus_counts": reading.counts.summary()},
    )
    logging.info("Dataset %s: %s", _OUT.value, summary)


def _parse_feature_files(entries):
    feature_files = {}
    for entry in entries:
        name, _, path = entry.partition(":")
        if not name or not path:
            raise app.UsageError(f"--feature_files entries are modality:path.h5. Received: {entry!r}")
        feature_files[name] = path
    return feature_files


def _parse_flags(argv):
    """absl parses its flags; the rest are Beam options (for iemocap / msp_improv) or an error."""
    return [argv[0]] + flags.FLAGS(argv, known_only=True)[1:]


def run():
    cli.run_main(main, "mmin_tf.prepare", flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
