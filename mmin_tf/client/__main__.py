"""Sends one utterance to a served MMIN and prints the prediction.

    python -m mmin_tf.client --url=http://localhost:8501/v1/models/mmin:predict \
        --features=acoustic=utt_acoustic.npy --features=text=utt_text.npy   # visual missing

Each modality flag is a `.npy` array `(time, dim)`; leave a modality out to send it as missing.
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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
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
