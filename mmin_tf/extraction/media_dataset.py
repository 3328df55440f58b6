"""From media records to a dataset directory: checks, the Beam pipeline, the dataset writer.

    records --check (ids, labels, media files, before any model loads)--> chunks of consecutive
    records --Beam (mmin_tf.extraction.pipeline)--> one TFRecord file per chunk --> the chunks
    become the shards, in manifest order, of the same `DatasetWriter` as `python -m mmin_tf.prepare`,
    which writes dataset.json (with the extraction settings) and folds.json and renames the
    directory into place.

Everything is written inside the writer's hidden directory, which is deleted if anything fails:
nothing partial is left. A modality whose media a record lacks (an empty manifest cell), or its
visual modality when no face is found (`NoFace.ABSENT`, the default), is absent for that
utterance in the dataset. A record that cannot be extracted (a media file that is missing,
unreadable, corrupt, empty or shorter than its span; no face with `NoFace.ERROR`; non-finite
features; no modality at all) fails the run with every failure listed (missing files before extraction starts, the others after the
pipeline has run); with `skip_bad_media` it is left out and listed in `DIR/skipped.csv` and the
log instead.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Optional, Sequence

from absl import logging

from mmin_tf import modalities as modalities_lib
from mmin_tf.data import media_manifest
from mmin_tf.data.format import DataError
from mmin_tf.data.media_manifest import MediaRecord
from mmin_tf.data.writer import DatasetWriter, WrittenUtterance
from mmin_tf.extraction.pipeline import ExtractionJob, run_pipeline
from mmin_tf.features import acoustic, text, visual
from mmin_tf.features.settings import (
    AUDIO_MODALITY, TEXT_MODALITY, VIDEO_MODALITY, ExtractionSettings, ModelFile)

SKIPPED_FILENAME = "skipped.csv"
# Dataset modality -> the media manifest column it is extracted from, in the dataset's order.
COLUMN_OF = {AUDIO_MODALITY: media_manifest.AUDIO, VIDEO_MODALITY: media_manifest.VIDEO,
             TEXT_MODALITY: media_manifest.TRANSCRIPT}
CODE_OF = {AUDIO_MODALITY: "a", VIDEO_MODALITY: "v", TEXT_MODALITY: "t"}
_LISTED = 20  # failures quoted in an error message


def label_names_of(records: Sequence[MediaRecord], label_names: Optional[Sequence[str]] = None) -> list[str]:
    """`label_names`, checked against every record's label; by default the records' labels, sorted."""
    if label_names is None:
        labels = sorted({record.label for record in records})
        logging.info("Label order (sorted manifest labels): %s", labels)
        return labels
    known = set(label_names)
    for record in records:
        if record.label not in known:
            raise DataError(f"{record.where}: unknown label {record.label!r}; the label names are {list(label_names)}")
    return list(label_names)


def dataset_modalities(
    names: Sequence[str], bert_preset: Optional[str] = None, face_model: Optional[str] = None,
) -> tuple[tuple[modalities_lib.ModalitySpec, ...], dict[str, ModelFile]]:
    """The dataset's modality specs for the modality `names`, and the models that will encode them.

    Dims: acoustic 130; text the BERT preset's width; visual the face model's features.
    """
    unknown = sorted(set(names) - set(COLUMN_OF))
    if unknown or not names:
        raise ValueError(f"The modalities to extract are among {list(COLUMN_OF)}. Received: {list(names)}")
    dims, models = {AUDIO_MODALITY: acoustic.AcousticExtractor.feature_dim}, {}
    if TEXT_MODALITY in names:
        if not bert_preset:
            raise ValueError("Extracting text (transcripts) needs a BERT preset directory (--bert_preset)")
        dims[TEXT_MODALITY] = text.preset_hidden_dim(bert_preset)
        models[TEXT_MODALITY] = ModelFile.of(text.preset_weights_file(bert_preset))
    if VIDEO_MODALITY in names:
        if not face_model:
            raise ValueError("Extracting visual features (videos) needs a face model (--face_model)")
        dims[VIDEO_MODALITY] = visual.face_model_feature_dim(face_model)
        models[VIDEO_MODALITY] = ModelFile.of(face_model)
    specs = tuple(
        modalities_lib.ModalitySpec(
            name, CODE_OF[name], dims[name],
            modalities_lib.EncoderKind.TEXT_CNN if name == TEXT_MODALITY else modalities_lib.EncoderKind.LSTM)
        for name in COLUMN_OF if name in names)
    return specs, models


def check_media(records: Sequence[MediaRecord], names: Sequence[str]) -> tuple[list[MediaRecord], list[dict]]:
    """Splits `records` into those whose media files exist and that have the media of at least one
    modality in `names` (what a record lacks is an absent modality), and the problems of the
    others (`{"utterance_id", "source", "error"}`).

    Raises:
        DataError: a repeated utterance id.
    """
    kept, problems, seen = [], [], {}
    for record in records:
        if record.utterance_id in seen:
            raise DataError(
                f"Duplicate utterance id {record.utterance_id!r}: in {seen[record.utterance_id]} and in {record.source}")
        seen[record.utterance_id] = record.source
        problem = None
        given = [name for name in names if getattr(record, COLUMN_OF[name]) is not None]
        if not given:
            problem = f"{record.where}: no {' / '.join(COLUMN_OF[name] for name in names)}: no modality to extract"
        for name in given:
            column = COLUMN_OF[name]
            if column != media_manifest.TRANSCRIPT and not os.path.isfile(getattr(record, column)):
                problem = f"{record.where}: {column} file {getattr(record, column)} not found"
                break
        if problem is None:
            kept.append(record)
        else:
            problems.append({"utterance_id": record.utterance_id, "source": record.source, "error": problem})
    return kept, problems


def _failure_error(failures: Sequence[dict], total: int, what: str) -> DataError:
    listed = "\n".join(f"  {failure['error']}" for failure in failures[:_LISTED])
    more = f"\n  ... and {len(failures) - _LISTED} more" if len(failures) > _LISTED else ""
    return DataError(
        f"{len(failures)} of {total} utterances {what} (nothing was written; --skip_bad_media leaves them "
        f"out and lists them in {SKIPPED_FILENAME}):\n{listed}{more}")


def extract_dataset(
    records: Sequence[MediaRecord],
    out_dir: str,
    *,
    modalities: Sequence[str],
    settings: ExtractionSettings = ExtractionSettings(),
    bert_preset: Optional[str] = None,
    face_model: Optional[str] = None,
    label_names: Optional[Sequence[str]] = None,
    name: str = "media",
    skip_bad_media: bool = False,
    utterances_per_shard: int = 256,
    batch_size: int = 16,
    beam_options: Sequence[str] = (),
    source: Optional[dict] = None,
) -> dict:
    """Extracts `modalities` of `records` (in this order) into the dataset `out_dir`.

    Args:
        records: media records, e.g. `media_manifest.read_media_manifest(path)` or a corpus reader's.
        out_dir: the dataset directory to create (must not exist).
        modalities: names among acoustic (from audio), visual (video) and text (transcript).
        settings: extraction settings; the models' fingerprints are added, and all of it is
            recorded in `dataset.json`'s `extraction`.
        bert_preset, face_model: model paths (text / visual).
        label_names: class names in label order (default: the records' labels, sorted).
        name, source, utterances_per_shard: as `DatasetWriter`'s; a shard is a chunk of work.
        skip_bad_media: leave the records that fail out (listed in `skipped.csv`) instead of failing.
        batch_size: records extracted together.
        beam_options: Beam pipeline options (see `pipeline.run_pipeline`).

    Returns:
        `{"utterances", "skipped", "no_face", "shards"}` counts.

    Raises:
        DataError: naming every utterance and file that failed (without `skip_bad_media`), a
            repeated id, an unknown label, or no record left; nothing is left behind.
    """
    records = list(records)
    if not records:
        raise DataError("No media records to extract")
    label_names = label_names_of(records, label_names)
    specs, models = dataset_modalities(modalities, bert_preset, face_model)
    settings = dataclasses.replace(settings, models=models)
    kept, skipped = check_media(records, [spec.name for spec in specs])
    if skipped and not skip_bad_media:
        raise _failure_error(skipped, len(records), "lack media")
    if not kept:
        raise DataError("No utterance has the media of every extracted modality")
    chunks = [
        (index, [(row, kept[row]) for row in range(begin, min(begin + utterances_per_shard, len(kept)))])
        for index, begin in enumerate(range(0, len(kept), utterances_per_shard))
    ]
    with DatasetWriter(
        out_dir, name=name, modalities=specs, label_names=label_names,
        utterances_per_shard=utterances_per_shard, source=source,
    ) as writer:
        job = ExtractionJob(settings=settings, modalities=specs, label_names=tuple(label_names),
                            directory=writer.directory, bert_preset=bert_preset, face_model=face_model,
                            batch_size=batch_size)
        reports = run_pipeline(chunks, job, beam_options)
        failures = sorted((failure for report in reports for failure in report["failures"]), key=lambda f: f["row"])
        if failures and not skip_bad_media:
            raise _failure_error(failures, len(records), "could not be extracted")
        shards = 0
        for report in reports:
            if report["file"] is None:
                continue
            os.replace(os.path.join(writer.directory, report["file"]),
                       os.path.join(writer.directory, writer.shard_name(shards)))
            writer.add_shard([WrittenUtterance(*fields) for fields in report["utterances"]])
            shards += 1
        left_out = skipped + [{key: failure[key] for key in ("utterance_id", "source", "error")} for failure in failures]
        if left_out:
            _write_skipped(os.path.join(writer.directory, SKIPPED_FILENAME), left_out)
            for entry in left_out:
                logging.warning("Skipped %s", entry["error"])
        no_face = [utterance_id for report in reports for utterance_id in report["no_face"]]
        if no_face:
            logging.warning(
                "%d utterances had no face in any sampled frame (no_face=%s): %s", len(no_face),
                settings.no_face.value, ", ".join(no_face[:_LISTED]) + (" ..." if len(no_face) > _LISTED else ""))
        writer.extraction = {**settings.to_json(), "no_face_count": len(no_face), "no_face_utterances": no_face,
                             "skipped_count": len(left_out)}
        writer.finish()
    return {"utterances": sum(len(report["utterances"]) for report in reports), "skipped": len(left_out),
            "no_face": len(no_face), "shards": shards}


def _write_skipped(path: str, entries: Sequence[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["utterance_id", "source", "error"])
        writer.writeheader()
        writer.writerows(entries)
