r"""End-to-end CPU latency of raw-media prediction at batch 1, split into each extractor and the model.

One IEMOCAP-like utterance (`benchmarks/iemocap_media.py`): 4.5 s of 16 kHz audio, a 14-word
transcript, and 4.5 s of 30 fps 720 x 480 split-screen video with a real face on the right half.
The models have random weights and the real sizes: BERT-large (BERT-base with `--quick`),
Denseface-100, and an MMIN at the paper's sizes (acoustic 130, visual 342, text 1024; the default
ModelConfig; `benchmarks/served_model.py`). The MMIN is written with `mmin_tf.export.export_model`
into a temporary directory. The export carries the extraction record that a dataset extracted with
these two models would have (`extraction_record`: the default ExtractionSettings and the models'
SHA-256). The MMIN is loaded back with `tf.saved_model.load`, and the server's `MediaFrontEnd` is
built from the export's `assets.extra/extraction.json`. Everything runs in-process: no server, no
network, no JSON or base64.

Timed at batch 1, `--requests` rounds after `--warmup` untimed ones:

- `stage=end_to_end`: the work of one raw-media request, as the server does it. That is
  `MediaFrontEnd.inputs([request])` (writing the media to a temporary directory, probing their
  durations, decoding, the three extractors, padding), then the `serving_default` call and
  reading its probabilities back. It is timed for the full request (`request=avt`: audio,
  transcript and video) and for audio and transcript only (`request=at`).
- Each stage alone, on the same media, with the front end's own extractors:
  - `acoustic`: decoding the wav and openSMILE ComParE.
  - `text`: tokenizing and BERT.
  - `face_detection`: decoding the video, sampling frames, the Haar cascade and cropping.
  - `face_encoding`: Denseface on those crops.
  - `model`: tensors from the full request's features, the `serving_default` call, and reading
    the probabilities.

Each round runs every series once, in shuffled order, so all series see the same machine load.
Not timed: making the media and the models, exporting and loading, and reading the media files
into a request's bytes. The last line gives each stage's p50 as a share of the full request's
end-to-end p50. `other` is what is left: the front end's file handling and padding, plus the
difference between a p50 of sums and a sum of p50s. With 30 requests, p99 is close to the
slowest request.

    python benchmarks/media_serving_latency.py --quick    # BERT-base, 5 requests: a smoke run
    python benchmarks/media_serving_latency.py            # BERT-large, 30 requests

Each measurement prints one line, and the shares print last:

    media stage=end_to_end request=avt batch=1 p50_ms=... p99_ms=... mean_ms=...
    media stage=acoustic request=a batch=1 p50_ms=... p99_ms=... mean_ms=...
    media share_of_end_to_end_p50 acoustic=...% text=...% ... other=...%
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import iemocap_media  # noqa: E402
from benchmarks.served_model import Timing, build_random_mmin  # noqa: E402
from mmin_tf import modalities as modalities_lib  # noqa: E402
from mmin_tf.configs import ModelConfig, ModelKind  # noqa: E402
from mmin_tf.data import synthetic  # noqa: E402
from mmin_tf.data.media_manifest import FaceRegion  # noqa: E402
from mmin_tf.export import SERVING_SIGNATURE, export_model  # noqa: E402
from mmin_tf.extraction import media_dataset  # noqa: E402
from mmin_tf.features import media as media_lib  # noqa: E402
from mmin_tf.features.settings import ExtractionSettings  # noqa: E402
from mmin_tf.serving.media_inputs import MediaFrontEnd, MediaRequest, read_extraction  # noqa: E402

_REQUESTS = flags.DEFINE_integer("requests", 30, "Timed rounds: one call of every series each.", lower_bound=2)
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed rounds before timing.", lower_bound=1)
_QUICK = flags.DEFINE_bool("quick", False, "BERT-base-sized text and 5 requests, whatever the flags say: a smoke run.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the MMIN's weights and of the order of the series.")

QUICK_REQUESTS = 5
MEDIA_MODALITIES = ("acoustic", "visual", "text")
END_TO_END = "end_to_end"
STAGES = ("acoustic", "text", "face_detection", "face_encoding", "model")


@dataclasses.dataclass(frozen=True)
class Media:
    """One utterance's media: the audio and video files, the transcript, where the face is."""

    audio: str
    transcript: str
    video: str
    face_region: FaceRegion

    def request(self, video: bool = True) -> MediaRequest:
        """The request a caller sends (the files' bytes), with or without the video."""

        def read(path):
            with open(path, "rb") as f:
                return f.read()

        return MediaRequest(audio=read(self.audio), transcript=self.transcript,
                            video=read(self.video) if video else None, face_region=str(self.face_region))


@dataclasses.dataclass(frozen=True)
class Series:
    """One timed series: `run()` does the work of one request.

    Attributes:
        stage: `end_to_end` or one of `STAGES`.
        request: the condition of the modalities the work covers (`avt`, `at`, `a`, ...).
        run: the work, called once per round.
    """

    stage: str
    request: str
    run: Callable[[], object]


def extraction_record(bert_preset: str, face_model: str):
    """The modalities and the `extraction.json` record of a dataset extracted with these models.

    The record matches what training carries into its exports: the settings that
    `media_dataset.extract_dataset` records (the default `ExtractionSettings`, with the models'
    names and SHA-256) and the dataset's modalities. `MediaFrontEnd` accepts exactly these model
    files.

    Returns:
        `(modalities, record)`: the `ModalitySpec`s (text as wide as the preset) and
        `{"extraction", "modalities"}`.
    """
    modalities, models = media_dataset.dataset_modalities(MEDIA_MODALITIES, bert_preset, face_model)
    extraction = ExtractionSettings(models=models).to_json()
    return modalities, {"extraction": extraction, "modalities": [spec.to_json() for spec in modalities]}


def serve_media(model, modalities, record, label_names, export_dir: str, bert_preset: str, face_model: str):
    """Exports `model` with `record` (no TF Serving warm-up file) and loads what a server loads.

    Returns:
        `(loaded, front_end)`: the loaded SavedModel and a `MediaFrontEnd` built from the export's
        `extraction.json`.
    """
    version_dir = export_model(model, modalities, label_names, export_dir, warmup=False, extraction=record)
    return tf.saved_model.load(version_dir), MediaFrontEnd(read_extraction(version_dir), bert_preset, face_model)


def call_model(signature, inputs) -> np.ndarray:
    """`serving_default` on numpy inputs, as the server calls it; the probabilities read back."""
    return signature(**{key: tf.constant(value) for key, value in inputs.items()})["probabilities"].numpy()


def predict(front_end: MediaFrontEnd, signature, request: MediaRequest) -> np.ndarray:
    """One raw-media request end to end: features, the signature call, the probabilities."""
    inputs, _ = front_end.inputs([request])
    return call_model(signature, inputs)


def media_series(front_end: MediaFrontEnd, signature, media: Media) -> tuple[list[Series], dict]:
    """The end-to-end series (full request and audio + transcript) and every stage on the same media.

    Returns:
        `(series, inputs)`: the series in `end_to_end`, `STAGES` order, and the full request's
        `serving_default` inputs (what the `model` stage is timed on).

    Raises:
        RuntimeError: the full request misses a modality (no face found in the video), so it
            would not time the full request.
    """
    full, audio_text = media.request(), media.request(video=False)
    inputs, [missing] = front_end.inputs([full])
    if missing:
        raise RuntimeError(f"The full request misses modalities, so it cannot be timed: {missing}")
    extractor = front_end.extractor
    sample_rate = extractor.settings.acoustic.sample_rate
    faces, _ = extractor.visual.faces(media.video, region=media.face_region)
    modalities = front_end.modalities
    code = {spec.name: spec.code for spec in modalities}
    full_name = modalities_lib.full_condition(modalities).name
    audio_text_name = modalities_lib.condition([spec.name != "visual" for spec in modalities], modalities).name
    series = [
        Series(END_TO_END, full_name, lambda: predict(front_end, signature, full)),
        Series(END_TO_END, audio_text_name, lambda: predict(front_end, signature, audio_text)),
        Series("acoustic", code["acoustic"],
               lambda: extractor.acoustic.extract(media_lib.read_audio(media.audio, sample_rate))),
        Series("text", code["text"], lambda: extractor.text.extract_batch([media.transcript])),
        Series("face_detection", code["visual"], lambda: extractor.visual.faces(media.video, region=media.face_region)),
        Series("face_encoding", code["visual"], lambda: extractor.visual.encode(faces)),
        Series("model", full_name, lambda: call_model(signature, inputs)),
    ]
    return series, inputs


def measure(series: Sequence[Series], requests: int, warmup: int, seed: int) -> list[Timing]:
    """Runs every series once per round in shuffled order. The first `warmup` rounds are untimed.

    Returns:
        One batch-1 `Timing` per series, in `series` order, with `requests` times each. Its
        `signature` holds the stage and its `condition` holds the request.
    """
    rng = np.random.default_rng(seed)
    seconds = [[] for _ in series]
    for round_index in range(warmup + requests):
        for index in rng.permutation(len(series)):
            start = time.perf_counter()
            series[index].run()
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                seconds[index].append(elapsed)
    return [Timing(item.stage, item.request, 1, tuple(values)) for item, values in zip(series, seconds)]


def line(timing: Timing) -> str:
    """`media stage=<stage> request=<request> batch=1 p50_ms=... p99_ms=... mean_ms=...`."""
    return (f"media stage={timing.signature} request={timing.condition} batch=1 p50_ms={timing.p50_ms:.2f} "
            f"p99_ms={timing.p99_ms:.2f} mean_ms={timing.mean_ms:.2f}")


def shares(timings: Sequence[Timing], full_request: str) -> dict[str, float]:
    """Each stage's p50 over the end-to-end p50 of `full_request`, and `other`: 1 - their sum."""
    end_to_end = next(t for t in timings if t.signature == END_TO_END and t.condition == full_request).p50_ms
    result = {t.signature: t.p50_ms / end_to_end for t in timings if t.signature != END_TO_END}
    result["other"] = 1.0 - sum(result.values())
    return result


def main(argv):
    del argv
    requests = QUICK_REQUESTS if _QUICK.value else _REQUESTS.value
    with tempfile.TemporaryDirectory() as work:
        media = Media(audio=iemocap_media.audio(os.path.join(work, "audio.wav")),
                      transcript=iemocap_media.TRANSCRIPT,
                      video=iemocap_media.video(os.path.join(work, "video.avi")),
                      face_region=iemocap_media.FACE_REGION)
        bert_preset, bert_parameters = iemocap_media.bert_preset(os.path.join(work, "bert"), _QUICK.value)
        face_model, face_parameters = iemocap_media.face_model(os.path.join(work, "face.keras"))
        modalities, record = extraction_record(bert_preset, face_model)
        keras.utils.set_random_seed(_SEED.value)
        model = build_random_mmin(modalities, ModelConfig(kind=ModelKind.MMIN), len(synthetic.IEMOCAP_LABEL_NAMES))
        print("media setup weights=random_untrained dims=" + "/".join(str(spec.feature_dim) for spec in modalities)
              + f" bert_parameters={bert_parameters / 1e6:.0f}M denseface_parameters={face_parameters / 1e3:.0f}k "
              f"mmin_parameters={model.count_params() / 1e6:.2f}M audio_seconds={iemocap_media.SECONDS} "
              f"video=720x480@30fps transcript_words={len(iemocap_media.TRANSCRIPT.split())} requests={requests} "
              f"warmup={_WARMUP.value} cpu_count={os.cpu_count()} load_average={os.getloadavg()[0]:.2f}")
        start = time.perf_counter()
        loaded, front_end = serve_media(model, modalities, record, synthetic.IEMOCAP_LABEL_NAMES,
                                        os.path.join(work, "mmin"), bert_preset, face_model)
        print(f"media stage=export_and_load seconds={time.perf_counter() - start:.1f}")
        series, inputs = media_series(front_end, loaded.signatures[SERVING_SIGNATURE], media)
        print("media full_request frames " + " ".join(
            f"{spec.name}={int(inputs[spec.length_key][0])}" for spec in modalities))
        timings = measure(series, requests, _WARMUP.value, _SEED.value)
    for timing in timings:
        print(line(timing))
    full_request = modalities_lib.full_condition(modalities).name
    print("media share_of_end_to_end_p50 " + " ".join(
        f"{name}={value:.0%}" for name, value in shares(timings, full_request).items()))
    print(f"media done load_average={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    app.run(main)
