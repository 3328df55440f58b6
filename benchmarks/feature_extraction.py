"""Feature extraction speed on CPU at IEMOCAP-like sizes, with the real model sizes.

    python benchmarks/feature_extraction.py [--utterances=16] [--quick]

Per extractor, utterances per second (median of `--repeats` timed calls after a warm-up):
openSMILE ComParE on 4.5 s of 16 kHz audio; BERT-large (random weights, 24 layers, 1024 wide,
a synthetic 30522-piece vocabulary) on a 14-word transcript; Denseface-100 (random weights) on
the faces of 4.5 s of 30 fps 720 x 480 split-screen video (face detection and encoding timed
apart). Then the whole Beam pipeline (`mmin_tf.extraction.media_dataset.extract_dataset`) on
`--utterances` such utterances with 1 and 2 DirectRunner worker processes, its scaling ratio, and
the projected hours for IEMOCAP's 5531 utterances on this machine. `--quick` uses BERT-base-sized
text and fewer utterances (a smoke run, not the measurement).
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import iemocap_media  # noqa: E402
from benchmarks.iemocap_media import SECONDS, TRANSCRIPT  # noqa: E402
from mmin_tf.data.media_manifest import MediaRecord  # noqa: E402
from mmin_tf.extraction import media_dataset  # noqa: E402
from mmin_tf.features import acoustic, media, text, visual  # noqa: E402

_UTTERANCES = flags.DEFINE_integer("utterances", 16, "Utterances through the whole pipeline.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per extractor.")
_QUICK = flags.DEFINE_bool("quick", False, "Small text model, few utterances: a smoke run.")

IEMOCAP_UTTERANCES = 5531


def _median_seconds(function, repeats):
    function()  # warm-up: tracing, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv):
    del argv
    work = tempfile.mkdtemp(prefix="feature_extraction_")
    try:
        quick = _QUICK.value
        wav = iemocap_media.audio(os.path.join(work, "audio.wav"))
        video = iemocap_media.video(os.path.join(work, "video.avi"))
        preset, bert_parameters = iemocap_media.bert_preset(os.path.join(work, "bert"), quick)
        face_model, face_parameters = iemocap_media.face_model(os.path.join(work, "face.keras"))
        region = iemocap_media.FACE_REGION
        print(f"models: BERT {bert_parameters / 1e6:.0f} M parameters, Denseface {face_parameters / 1e3:.0f} k")

        acoustic_extractor = acoustic.AcousticExtractor()
        samples = media.read_audio(wav, 16000)
        text_extractor = text.TextExtractor(preset)
        visual_extractor = visual.VisualExtractor(face_model)
        faces, frames = visual_extractor.faces(video, region=region)
        print(f"one utterance: {SECONDS} s audio -> {len(acoustic_extractor.extract(samples))} acoustic frames; "
              f"{len(TRANSCRIPT.split())} words -> {len(text_extractor.extract_batch([TRANSCRIPT])[0])} pieces; "
              f"{frames} video frames -> {len(faces)} faces")
        repeats = _REPEATS.value
        seconds = {
            "audio_read": _median_seconds(lambda: media.read_audio(wav, 16000), repeats),
            "acoustic": _median_seconds(lambda: acoustic_extractor.extract(samples), repeats),
            "text": _median_seconds(lambda: text_extractor.extract_batch([TRANSCRIPT]), repeats),
            "text_batch16_per_utterance": _median_seconds(
                lambda: text_extractor.extract_batch([TRANSCRIPT] * 16), max(1, repeats // 2)) / 16,
            "face_detection": _median_seconds(lambda: visual_extractor.faces(video, region=region), repeats),
            "face_encoding": _median_seconds(lambda: visual_extractor.encode(faces), repeats),
        }
        for name, value in seconds.items():
            print(f"extractor {name}: {value:.4f} s per utterance = {1 / value:.2f} utterances/s")

        count = 4 if quick else _UTTERANCES.value
        records = [
            MediaRecord(f"S{index % 2}{'FM'[index // 2 % 2]}_{index}", f"S{index % 2}{'FM'[index // 2 % 2]}",
                        f"S{index % 2}", ("happy", "sad")[index // 2 % 2], audio=wav, transcript=TRANSCRIPT,
                        video=video, face_region=region, source=f"benchmark {index}")
            for index in range(count)
        ]
        pipeline = {}
        for workers in (1, 2):
            out = os.path.join(work, f"data_{workers}")
            start = time.perf_counter()
            media_dataset.extract_dataset(
                records, out, modalities=("acoustic", "visual", "text"), bert_preset=preset, face_model=face_model,
                utterances_per_shard=max(1, count // 4), beam_options=[
                    "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"])
            pipeline[workers] = time.perf_counter() - start
            print(f"pipeline workers={workers}: {count} utterances in {pipeline[workers]:.1f} s = "
                  f"{count / pipeline[workers]:.3f} utterances/s (model loading in every worker included)")
        per_utterance = pipeline[2] / count
        print(f"pipeline_scaling_2_vs_1_workers={pipeline[1] / pipeline[2]:.2f}")
        print(f"projected IEMOCAP ({IEMOCAP_UTTERANCES} utterances) with 2 workers on this machine, from the "
              f"pipeline run (model loading in every worker counted as if per {count} utterances): "
              f"{IEMOCAP_UTTERANCES * per_utterance / 3600:.1f} h")
        in_one = sum(seconds[name] for name in ("audio_read", "acoustic", "text", "face_detection", "face_encoding"))
        print(f"projected IEMOCAP from the extractors' per-utterance times, shared by 2 worker processes "
              f"(model loading once): {IEMOCAP_UTTERANCES * in_one / 2 / 3600:.1f} h")
        shares = {name: seconds[name] / in_one for name in ("acoustic", "text", "face_detection", "face_encoding")}
        print("share of one utterance's extraction time: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    app.run(main)
