"""The extraction pipeline on Apache Beam: chunks of media records -> one TFRecord file per chunk.

Wiring only (the extractors know nothing of Beam):

    chunks of consecutive records  --Reshuffle-->  ExtractChunk (models load once per worker in
    `setup`; records extracted in batches, validated, serialized, one TFRecord file per chunk)
    --> one JSON report per chunk (its utterances, failures and no-face ids)

Chunks are the unit of parallelism and become the dataset's shards; each is extracted in fixed
batches of consecutive records, so the output is the same whatever the runner and the number of
workers. A chunk's file is written under a temporary name and renamed when complete, so a retried
bundle rewrites it whole. `mmin_tf.extraction.media_dataset` drives it.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Optional, Sequence

import apache_beam as beam
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from mmin_tf import modalities as modalities_lib
from mmin_tf.data.format import DataError, serialize_utterance, validate_utterance
from mmin_tf.data.writer import WrittenUtterance
from mmin_tf.features.settings import ExtractionSettings

_REPORTS = "extraction-reports"  # inside the job's directory, removed after the run


@dataclasses.dataclass(frozen=True)
class ExtractionJob:
    """What every worker needs (picklable: settings, paths and names, no models).

    Attributes:
        settings: the extraction settings.
        modalities: the dataset's modalities, in order.
        label_names: class names; a record's label indexes them.
        directory: where the chunk files are written (the writer's hidden directory).
        bert_preset, face_model: model paths (for text / visual).
        batch_size: records extracted together.
    """

    settings: ExtractionSettings
    modalities: tuple[modalities_lib.ModalitySpec, ...]
    label_names: tuple[str, ...]
    directory: str
    bert_preset: Optional[str] = None
    face_model: Optional[str] = None
    batch_size: int = 16


def chunk_file(index: int) -> str:
    return f"chunk-{index:05d}.tfrecord"


class ExtractChunk(beam.DoFn):
    """Extracts one chunk `(index, [(row, MediaRecord), ...])` and writes its records.

    Yields one report per chunk: `{"chunk", "file" (None when no record succeeded),
    "utterances" (WrittenUtterance fields, in file order), "failures" [{"row", "utterance_id",
    "source", "error"}], "no_face" [ids]}`.
    """

    def __init__(self, job: ExtractionJob):
        self.job = job
        self.extractor = None

    def setup(self):
        from mmin_tf.features.extractor import MediaExtractor

        job = self.job
        self.extractor = MediaExtractor(
            job.settings, [spec.name for spec in job.modalities], job.bert_preset, job.face_model)

    def process(self, chunk):
        index, rows = chunk
        job = self.job
        label_index = {name: position for position, name in enumerate(job.label_names)}
        report = {"chunk": index, "file": None, "utterances": [], "failures": [], "no_face": []}
        serialized = []
        for begin in range(0, len(rows), job.batch_size):
            batch = rows[begin:begin + job.batch_size]
            for (row, record), extracted in zip(batch, self.extractor.extract([record for _, record in batch])):
                if extracted.no_face:
                    report["no_face"].append(record.utterance_id)
                error = extracted.error
                if error is None:
                    utterance = extracted.utterance(label_index)
                    try:
                        validate_utterance(utterance, job.modalities, len(job.label_names))
                    except DataError as invalid:
                        error = str(invalid)
                if error is not None:
                    report["failures"].append(
                        {"row": row, "utterance_id": record.utterance_id, "source": record.source, "error": error})
                    continue
                serialized.append(serialize_utterance(utterance, job.modalities))
                report["utterances"].append(list(WrittenUtterance(
                    utterance.utterance_id, utterance.speaker, utterance.group, utterance.label,
                    {spec.name: len(utterance.features.get(spec.name, ())) for spec in job.modalities}, utterance.source)))
        if serialized:
            report["file"] = chunk_file(index)
            path = os.path.join(job.directory, report["file"])
            temporary = f"{path}.{os.getpid()}.incomplete"
            with tf.io.TFRecordWriter(temporary) as writer:
                for record in serialized:
                    writer.write(record)
            os.replace(temporary, path)
        yield json.dumps(report)


def run_pipeline(chunks: Sequence[tuple[int, list]], job: ExtractionJob, beam_options: Sequence[str] = ()) -> list[dict]:
    """Extracts `chunks` (`(index, [(row, MediaRecord), ...])`) into `job.directory`; returns the
    chunks' reports (see `ExtractChunk`) in chunk order.

    `beam_options`: Beam pipeline options, e.g. `--runner=FlinkRunner ...`; without a `--runner`,
    the DirectRunner with one worker process per core.
    """
    reports_prefix = os.path.join(job.directory, _REPORTS, "report")
    with beam.Pipeline(options=pipeline_options(beam_options)) as pipeline:
        _ = (
            pipeline
            | "Chunks" >> beam.Create(chunks)
            | "Distribute" >> beam.Reshuffle()
            | "Extract" >> beam.ParDo(ExtractChunk(job))
            | "Reports" >> beam.io.WriteToText(reports_prefix, file_name_suffix=".jsonl")
        )
    reports = sorted(_read_reports(reports_prefix), key=lambda report: report["chunk"])
    tf.io.gfile.rmtree(os.path.dirname(reports_prefix))
    if [report["chunk"] for report in reports] != [index for index, _ in chunks]:
        raise RuntimeError(f"The pipeline reported chunks {[r['chunk'] for r in reports]} of {len(chunks)}")
    return reports


def pipeline_options(beam_options: Sequence[str]) -> PipelineOptions:
    """Beam's options from `beam_options`; without a runner, the DirectRunner with one worker
    process per core (unless `--direct_num_workers` says otherwise)."""
    beam_options = list(beam_options)
    if not any(option.startswith("--runner") for option in beam_options):
        beam_options.insert(0, "--direct_running_mode=multi_processing")
        if not any(option.startswith("--direct_num_workers") for option in beam_options):
            beam_options.insert(0, f"--direct_num_workers={os.cpu_count() or 1}")
    return PipelineOptions(flags=beam_options)


def _read_reports(prefix: str):
    for path in sorted(glob.glob(f"{prefix}*")):
        with open(path) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
