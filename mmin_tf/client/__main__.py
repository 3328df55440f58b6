"""Sends one utterance to a served MMIN and prints the prediction.

    python -m mmin_tf.client --url=http://localhost:8501/v1/models/mmin:predict \
        --features=acoustic=utt_acoustic.npy --features=text=utt_text.npy   # visual missing
    python -m mmin_tf.client --url=... --audio=utt.wav --transcript="Excuse me." [--video=utt.avi]

Features: each `--features` flag is a `.npy` array `(time, dim)`. Raw media (`--audio`,
`--transcript`, `--video`, optional `--start`/`--end` seconds) go to the server's extractors.
Leave a modality out to send it as missing.
"""

import json

import numpy as np
from absl import app, flags

from mmin_tf import cli
from mmin_tf import client

_URL = flags.DEFINE_string("url", "http://localhost:8501/v1/models/mmin:predict", "The :predict URL.")
_MODALITIES = flags.DEFINE_list(
    "modalities", [], "Modalities as name:code:feature_dim:encoder (default acoustic/visual/text).")
_FEATURES = flags.DEFINE_multi_string(
    "features", [], "modality=path.npy, repeatable; e.g. --features=acoustic=a.npy --features=text=t.npy")
_FORMAT = flags.DEFINE_enum("format", "instances", ["instances", "inputs"], "TF Serving REST request format.")
_AUDIO = flags.DEFINE_string("audio", None, "Raw media: a wav or flac file.")
_TRANSCRIPT = flags.DEFINE_string("transcript", None, "Raw media: the transcript text.")
_VIDEO = flags.DEFINE_string("video", None, "Raw media: a video file.")
_START = flags.DEFINE_float("start", None, "Raw media: span start, seconds.")
_END = flags.DEFINE_float("end", None, "Raw media: span end, seconds.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    media = {"audio": _AUDIO.value, "transcript": _TRANSCRIPT.value, "video": _VIDEO.value,
             "start": _START.value, "end": _END.value}
    if any(media[key] is not None for key in ("audio", "transcript", "video")):
        if _FEATURES.value:
            raise app.UsageError("Send either --features or raw media (--audio/--transcript/--video), not both")
        print(json.dumps(client.predict(_URL.value, client.media_payload([media])), indent=2))
        return
    modalities = cli.parse_modalities(_MODALITIES.value)
    example = {}
    for entry in _FEATURES.value:
        name, _, path = entry.partition("=")
        if not path:
            raise app.UsageError(f"--features entries are modality=path.npy. Received: {entry!r}")
        example[name] = np.load(path)
    build = client.instances_payload if _FORMAT.value == "instances" else client.inputs_payload
    print(json.dumps(client.predict(_URL.value, build([example], modalities)), indent=2))


def run():
    cli.run_main(main, "mmin_tf.client", cli.USER_ERRORS + (client.PredictError, OSError))


if __name__ == "__main__":
    run()
