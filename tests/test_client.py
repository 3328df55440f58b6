"""The REST client's payloads: shapes, padding, lengths and errors."""

import numpy as np
import pytest

from mmin_tf import client
from tests import tiny_runs

MODALITIES = tiny_runs.MODALITIES


def _examples():
    rng = np.random.default_rng(0)
    return [
        {"acoustic": rng.normal(size=(3, 6)), "text": rng.normal(size=(5, 7))},  # visual missing
        {"visual": rng.normal(size=(2, 5)), "acoustic": None},  # only visual
    ]


def test_batch_tensors_pad_to_the_longest_and_mark_missing_with_length_zero():
    examples = _examples()
    tensors = client.batch_tensors(examples, MODALITIES)
    assert tensors["acoustic"].shape == (2, 3, 6)
    np.testing.assert_array_equal(tensors["acoustic_length"], [3, 0])
    np.testing.assert_array_equal(tensors["visual_length"], [0, 2])
    np.testing.assert_array_equal(tensors["text_length"], [5, 0])
    assert tensors["visual"].shape == (2, 2, 5)
    np.testing.assert_allclose(tensors["acoustic"][0], examples[0]["acoustic"].astype(np.float32))
    assert not tensors["acoustic"][1].any()
    assert not tensors["visual"][0].any()
    assert tensors["text"].shape == (2, 5, 7) and not tensors["text"][1].any()
    assert tensors["acoustic_length"].dtype == np.int32 and tensors["acoustic"].dtype == np.float32


def test_instances_and_inputs_payloads_carry_the_same_tensors():
    examples = _examples()
    rows = client.instances_payload(examples, MODALITIES)
    columns = client.inputs_payload(examples, MODALITIES)
    assert rows["signature_name"] == columns["signature_name"] == "serving_default"
    assert len(rows["instances"]) == 2
    for name, value in columns["inputs"].items():
        np.testing.assert_array_equal(np.asarray([row[name] for row in rows["instances"]]), np.asarray(value))


@pytest.mark.parametrize(
    "examples, message",
    [
        ([], "at least one example"),
        ([{"audio": np.zeros((2, 6))}], r"unknown modalities \['audio'\]"),
        ([{"acoustic": np.zeros((2, 5))}], r"acoustic must have shape \(time, 6\)"),
        ([{"acoustic": None}], "Example 0 has no modality with frames"),
    ],
)
def test_bad_examples_are_refused(examples, message):
    with pytest.raises(ValueError, match=message):
        client.batch_tensors(examples, MODALITIES)


def test_a_scalar_instead_of_frames_is_a_shape_error():
    with pytest.raises(ValueError, match=r"acoustic must have shape \(time, 6\); received \(\)"):
        client.batch_tensors([{"acoustic": np.float32(1)}], MODALITIES)
