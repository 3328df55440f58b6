"""Tests for `SequenceResampler` (MCTN's common time axis for modalities of different frame rates)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import SequenceResampler
from tests import layer_checks

DIM = 3


def _reference(frames, steps):
    """Linear interpolation at the centres of `steps` equal intervals of `len(frames)` frames."""
    length = len(frames)
    if length == 0:
        return np.zeros((steps, frames.shape[1]), np.float32)
    positions = np.clip((np.arange(steps) + 0.5) * length / steps - 0.5, 0, length - 1)
    return np.stack([np.interp(positions, np.arange(length), frames[:, d]) for d in range(frames.shape[1])], axis=1)


@pytest.mark.parametrize("steps", [1, 4, 7])
def test_matches_the_interpolation_reference_and_never_reads_padding(steps):
    lengths = [5, 1, 0, 2, 7]
    features, lengths = layer_checks.random_padded_features(np.random.default_rng(0), lengths, 7, DIM, padding=1e6)
    resampler = SequenceResampler(steps)

    eager = resampler(features, lengths).numpy()
    graph = tf.function(resampler)(tf.constant(features), tf.constant(lengths, tf.int64)).numpy()

    expected = np.stack([_reference(features[row, :n], steps) for row, n in enumerate(lengths)])
    np.testing.assert_allclose(eager, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(graph, eager, atol=1e-6)
    assert eager.shape == (5, steps, DIM) and eager.dtype == np.float32
    np.testing.assert_array_equal(eager[2], 0.0)  # a missing modality: zeros
    np.testing.assert_allclose(eager[1], np.repeat(features[1, :1], steps, axis=0))  # one frame: repeated


def test_down_and_upsampling_keep_the_ends_and_a_linear_ramp():
    ramp = np.arange(8, dtype=np.float32)[None, :, None]  # frame i has value i
    down = SequenceResampler(4)(ramp, np.array([8])).numpy()[0, :, 0]
    up = SequenceResampler(16)(ramp[:, :4], np.array([4])).numpy()[0, :, 0]
    np.testing.assert_allclose(down, [0.5, 2.5, 4.5, 6.5])  # interval centres of 2 frames each
    np.testing.assert_allclose(up[[0, 1, -2, -1]], [0.0, 0.0, 3.0, 3.0])  # clipped at the ends
    np.testing.assert_allclose(np.diff(up[2:-2]), 0.25)


def test_an_empty_time_axis_gives_zeros_and_symbolic_shapes():
    resampler = SequenceResampler(5)
    empty = resampler(tf.zeros([2, 0, DIM]), tf.zeros([2], tf.int32))
    np.testing.assert_array_equal(empty.numpy(), np.zeros((2, 5, DIM)))
    symbolic = resampler(keras.Input((None, DIM)), keras.Input((), dtype="int32"))
    assert tuple(symbolic.shape) == (None, 5, DIM)


def test_config_round_trip_and_bad_steps():
    features, lengths = layer_checks.random_padded_features(np.random.default_rng(1), [3, 2], 3, DIM)
    config, _ = layer_checks.assert_config_round_trip(SequenceResampler(6), features, lengths)
    assert config["steps"] == 6
    for steps in (0, 2.5, True):
        with pytest.raises(ValueError, match="`steps` must be a positive int"):
            SequenceResampler(steps)
