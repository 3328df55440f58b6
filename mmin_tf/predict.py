"""Emotion of one recording: raw media through the exported model, with the training's extractors.

    python -m mmin_tf.predict --model_dir=saved_models/mmin --audio=x.wav --transcript="Excuse me." \
        --video=x.avi [--start=1.5 --end=4.0] --bert_preset=models/bert --face_model=models/face.keras

Any subset of audio, transcript and video; what is absent, and a video without a face, is a
missing modality. `--model_dir` is a TF Serving model base path (its newest version is used) or a
version directory. The export must record its training data's extraction settings, and the BERT
preset and face model must be the files they were extracted with (checked by SHA-256). Prints the
class probabilities, the predicted class and the condition used (e.g. `at` when no face was found).
"""

import json
import os

from absl import app, flags

from mmin_tf import cli, seeding
from mmin_tf.export import saved_model
from mmin_tf.serving import media_inputs

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Exported model: base path or version directory.", required=True)
_AUDIO = flags.DEFINE_string("audio", None, "A wav or flac file.")
_TRANSCRIPT = flags.DEFINE_string("transcript", None, "The transcript text.")
_VIDEO = flags.DEFINE_string("video", None, "A video file.")
_START = flags.DEFINE_float("start", None, "Span start in the audio and video, seconds.")
_END = flags.DEFINE_float("end", None, "Span end, seconds.")
_FACE_REGION = flags.DEFINE_string("face_region", None, "Where the face is, left:top:right:bottom fractions.")
_BERT_PRESET = flags.DEFINE_string("bert_preset", None, "The BERT preset the training text was extracted with.")
_FACE_MODEL = flags.DEFINE_string("face_model", None, "The face model the training faces were encoded with.")
_MAX_SECONDS = flags.DEFINE_float("max_media_seconds", 600.0, "Longest audio or video accepted.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed (prediction draws nothing at random; every entry point takes one).")


def version_dir(model_dir: str) -> str:
    """`model_dir` itself when it is a SavedModel, else its newest version."""
    if os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        return model_dir
    found = saved_model.versions(model_dir)
    if not found:
        raise FileNotFoundError(f"{model_dir!r} is neither a SavedModel nor a base path with version directories")
    return os.path.join(model_dir, str(max(found)))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import tensorflow as tf

    seeding.set_seed(_SEED.value)
    directory = version_dir(_MODEL_DIR.value)
    front_end = media_inputs.MediaFrontEnd(
        media_inputs.read_extraction(directory), _BERT_PRESET.value, _FACE_MODEL.value,
        media_inputs.MediaLimits(max_seconds=_MAX_SECONDS.value))
    media = {}
    for field, holder in (("audio", _AUDIO), ("video", _VIDEO)):
        if holder.value is not None:
            with open(holder.value, "rb") as f:
                media[field] = f.read()
    request = media_inputs.MediaRequest(
        transcript=_TRANSCRIPT.value, start=_START.value, end=_END.value, face_region=_FACE_REGION.value, **media)
    inputs, [missing] = front_end.inputs([request])
    signature = tf.saved_model.load(directory).signatures[saved_model.SERVING_SIGNATURE]
    outputs = {key: value.numpy()[0] for key, value in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
    names = saved_model.read_label_names(directory)
    result = {
        "class_name": outputs["class_name"].decode(),
        "condition": outputs["condition"].decode(),
        "probabilities": {name: round(float(p), 6) for name, p in zip(names, outputs["probabilities"])},
        "missing_modalities": missing,
    }
    print(json.dumps(result, indent=2))


def run():
    cli.run_main(main, "mmin_tf.predict", cli.USER_ERRORS + (media_inputs.MediaInputError, OSError))


if __name__ == "__main__":
    run()
