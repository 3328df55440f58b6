"""Writes one fold of an mmin_tf dataset as the `.npz` that the original MMIN's harness reads.

    python benchmarks/export_peer_npz.py --data_dir=data/checking --fold=1 --out=runs/peer/fold1.npz

The harness (`../shared/peer/run_mmin_peer.py`, which runs the original PyTorch code's own scripts)
takes `A [N, Ta, 130]`, `V [N, Tv, 342]`, `L [N, Tl, 1024]` float32, zero-padded after
`A_len / V_len / L_len [N]`, `label [N]`, `speaker [N]` and the row indices `trn_idx`, `val_idx`,
`tst_idx` of the fold's splits. Features are written raw, as stored: the original normalises
acoustic with the training split's statistics itself, as `pipelines/iemocap.flags` does. So both
implementations train and test on identical utterances, splits and inputs.
"""

import os
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmin_tf.data import format as format_lib  # noqa: E402
from mmin_tf.data import pipeline  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", None, "mmin_tf dataset directory.", required=True)
_FOLD = flags.DEFINE_string("fold", "1", "Fold to export.")
_OUT = flags.DEFINE_string("out", None, "The .npz file to write.", required=True)

# The harness's names for the three modalities, in the dataset's configured order.
PEER_KEYS = {"acoustic": "A", "visual": "V", "text": "L"}


def fold_arrays(data_dir: str, fold: str) -> dict:
    """The harness's arrays for `fold` of the dataset in `data_dir` (see the module docstring)."""
    info = format_lib.load_info(data_dir)
    names = [spec.name for spec in info.modalities]
    if sorted(names) != sorted(PEER_KEYS):
        raise ValueError(f"The original code takes acoustic, visual and text; {data_dir!r} has {names}")
    examples, indices = [], {}
    for split, key in (("train", "trn_idx"), ("validation", "val_idx"), ("test", "tst_idx")):
        start = len(examples)
        examples.extend(pipeline.read_fold_split(data_dir, info, fold, split).as_numpy_iterator())
        indices[key] = np.arange(start, len(examples), dtype=np.int64)
    speakers = sorted({example[format_lib.SPEAKER] for example in examples})
    arrays = dict(indices)
    arrays["label"] = np.asarray([example[format_lib.LABEL] for example in examples], np.int64)
    arrays["speaker"] = np.asarray([speakers.index(example[format_lib.SPEAKER]) for example in examples], np.int32)
    for spec in info.modalities:
        key = PEER_KEYS[spec.name]
        lengths = np.asarray([example[spec.length_key] for example in examples], np.int32)
        padded = np.zeros((len(examples), lengths.max(), spec.feature_dim), np.float32)
        for row, (example, length) in enumerate(zip(examples, lengths)):
            padded[row, :length] = example[spec.name][:length]
        arrays[key], arrays[f"{key}_len"] = padded, lengths
    return arrays


def main(argv):
    del argv
    arrays = fold_arrays(_DATA_DIR.value, _FOLD.value)
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    np.savez(_OUT.value, **arrays)
    print(f"wrote {_OUT.value}: " + ", ".join(f"{key} {value.shape}" for key, value in arrays.items()))


if __name__ == "__main__":
    app.run(main)
