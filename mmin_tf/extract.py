"""Extracts the paper's features (§4.2) from media files into a dataset directory.

    python -m mmin_tf.extract --media_manifest=media.csv --out=data/mine \
        --bert_preset=models/bert_large_en_uncased --face_model=models/face.keras

The media manifest (`mmin_tf/data/media_manifest.py`, docs/features.md) lists each utterance's
audio, transcript and video. The dataset has the modalities whose column the manifest has (or
`--extract_modalities`): acoustic (openSMILE ComParE LLDs + deltas, 130 per 100 ms), visual
(Denseface features of the detected faces, 342 per face frame) and text (BERT last-layer vectors,
1024 per word piece with BERT-large). The extraction is an Apache Beam pipeline, by default the
DirectRunner with one worker process per core; every flag this command does not define goes to
Beam (e.g. `--direct_num_workers=4`, or `--runner=FlinkRunner --flink_master=...`). The dataset
appears only when complete; bad media stop the run with an error naming every utterance and file,
leaving nothing behind (`--skip_bad_media`: left out and listed in DIR/skipped.csv).
"""

import json
import os

from absl import flags, logging

from mmin_tf import cli, seeding
from mmin_tf.data import media_manifest
from mmin_tf.extraction import flags as extraction_flags
from mmin_tf.extraction import media_dataset

_MANIFEST = flags.DEFINE_string("media_manifest", None, "Media manifest CSV (docs/features.md).", required=True)
_OUT = flags.DEFINE_string("out", None, "Dataset directory to create (must not exist).", required=True)
_NAME = flags.DEFINE_string("name", "media", "Corpus name stored in dataset.json.")
_LABEL_NAMES = flags.DEFINE_list("label_names", None, "Class names in label order (default: the manifest's labels, sorted).")
_PER_SHARD = flags.DEFINE_integer("utterances_per_shard", 256, "Records per shard, the unit of parallel work.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed (extraction draws nothing at random; every entry point takes one).")


def main(argv):
    seeding.set_seed(_SEED.value)
    records = list(media_manifest.read_media_manifest(_MANIFEST.value))
    columns = media_manifest.read_header(_MANIFEST.value)
    available = [name for name, column in media_dataset.COLUMN_OF.items() if column in columns]
    summary = extraction_flags.extract_from_flags(
        records, _OUT.value, available, name=_NAME.value, label_names=_LABEL_NAMES.value,
        utterances_per_shard=_PER_SHARD.value, beam_options=argv[1:],
        source={"importer": "extract", "media_manifest": os.path.abspath(_MANIFEST.value)},
    )
    logging.info("Dataset %s: %s", _OUT.value, json.dumps(summary))


def _parse_flags(argv):
    """absl parses its flags; every other argument is a Beam pipeline option."""
    return [argv[0]] + flags.FLAGS(argv, known_only=True)[1:]


def run():
    cli.run_main(main, "mmin_tf.extract", flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
