"""Imports a corpus into the mmin_tf dataset format.

    python -m mmin_tf.prepare --source=synthetic --out=data/synthetic [--num_utterances=N --seed=S]
    python -m mmin_tf.prepare --source=manifest --manifest=corpus.csv --out=data/mine
    python -m mmin_tf.prepare --source=mmin_features --features_dir=IEMOCAP_features --out=data/iemocap

The output directory appears only when the import is complete; bad input stops the import with an
error naming the utterance and the file, and leaves nothing behind.
"""

import enum

from absl import app, flags, logging

from mmin_tf import cli
from mmin_tf.data import manifest, mmin_features, synthetic
from mmin_tf.data.writer import DatasetWriter


class Source(enum.Enum):
    SYNTHETIC = "synthetic"
    MANIFEST = "manifest"
    MMIN_FEATURES = "mmin_features"


_SOURCE = flags.DEFINE_enum_class("source", Source.SYNTHETIC, Source, "Where the corpus comes from.", case_sensitive=False)
_OUT = flags.DEFINE_string("out", None, "Dataset directory to create (must not exist).", required=True)
_NAME = flags.DEFINE_string("name", None, "Corpus name stored in dataset.json (default: the source).")
_MODALITIES = flags.DEFINE_list(
    "modalities", [], "Modalities as name:code:feature_dim:encoder (encoder: lstm or text_cnn). "
    "Default: acoustic:a:130:lstm,visual:v:342:lstm,text:t:1024:text_cnn.")
_LABEL_NAMES = flags.DEFINE_list(
    "label_names", None, "Class names, in label-index order. Default: the synthetic corpus's "
    "happy,anger,sadness,neutral; for mmin_features anger,happy,neutral,sadness.")
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
_FEATURE_FILES = flags.DEFINE_list(
    "feature_files", [], "For --source=mmin_features: modality:path.h5 entries (relative to "
    "--features_dir) overriding acoustic:A/comparE.h5,visual:V/denseface.h5,text:L/bert_large.h5; "
    "MSP-IMPROV needs acoustic:A/comparE_raw.h5.")


def main(argv):
    del argv
    modalities = cli.parse_modalities(_MODALITIES.value)
    source = _SOURCE.value
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
        if not _MANIFEST.value or not _LABEL_NAMES.value:
            raise app.UsageError("--source=manifest needs --manifest and --label_names")
        label_names = _LABEL_NAMES.value
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


def _parse_feature_files(entries):
    feature_files = {}
    for entry in entries:
        name, _, path = entry.partition(":")
        if not name or not path:
            raise app.UsageError(f"--feature_files entries are modality:path.h5. Received: {entry!r}")
        feature_files[name] = path
    return feature_files


def run():
    cli.run_main(main, "mmin_tf.prepare")


if __name__ == "__main__":
    run()
