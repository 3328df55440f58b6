"""benchmarks/train_throughput.py: the analytic FLOP counts behind its fraction-of-peak line."""

import numpy as np
import tensorflow as tf

from mmin_tf import configs
from mmin_tf.data.pipeline import AVAILABILITY
from mmin_tf.layers.modality_embedder import EncoderRows
from tests import tiny_runs
from tests.benchmark_loader import load_benchmark

train_throughput = load_benchmark("train_throughput")
MODALITIES = tiny_runs.MODALITIES
CONFIG = tiny_runs.tiny_config("d", "o", kind=configs.ModelKind.MMIN).model
PRESENT, ALL = EncoderRows.PRESENT, EncoderRows.ALL


def test_encoder_flops_match_a_hand_count():
    acoustic, _, text = MODALITIES  # 6-dim LSTM input, 7-dim TextCNN input; embedding 8
    # LSTM: per step and row, 4 gates x 8 units x (6 inputs + 8 recurrent) multiply-adds.
    assert train_throughput.encoder_flops(acoustic, CONFIG, rows=3, time_steps=5) == 3 * 5 * 2 * 4 * 8 * 14
    # TextCNN: kernels 2 and 3 over 6 frames (5 and 4 windows), 4 channels, then 8 -> 8 projection.
    windows = 2 * 2 * 7 * 4 * 5 + 2 * 3 * 7 * 4 * 4
    assert train_throughput.encoder_flops(text, CONFIG, rows=2, time_steps=6) == 2 * (windows + 2 * 4 * 2 * 8)


def test_reference_step_counts_more_than_ours_and_all_rows_in_between():
    batch = 6
    inputs = {AVAILABILITY: tf.constant(np.eye(3, dtype=bool)[np.arange(batch) % 3])}  # one modality per row
    for spec in MODALITIES:
        inputs[spec.name] = tf.zeros([batch, 5, spec.feature_dim])
        inputs[spec.length_key] = tf.fill([batch], 5)
    ours = train_throughput.step_flops((inputs, None), MODALITIES, CONFIG, PRESENT, teacher_every_step=False)
    all_rows = train_throughput.step_flops((inputs, None), MODALITIES, CONFIG, ALL, teacher_every_step=False)
    reference = train_throughput.step_flops((inputs, None), MODALITIES, CONFIG, ALL, teacher_every_step=True)
    encoders = sum(train_throughput.encoder_flops(spec, CONFIG, 1, 5) for spec in MODALITIES)
    heads = train_throughput.head_flops(CONFIG, 24, 4, backward=True)
    # Ours: each encoder on its 2 present rows + the zero row, trained (x3); on all rows: every row
    # trained; reference: every row, student trained (x3) and teacher forward (x1).
    np.testing.assert_allclose(ours * batch, 3 * 3 * encoders + 3 * batch * heads)
    np.testing.assert_allclose(all_rows * batch, 3 * batch * encoders + 3 * batch * heads)
    np.testing.assert_allclose(reference * batch, 4 * batch * encoders + 3 * batch * heads)


def test_epoch_flops_weight_batches_by_rows_and_count_padded_steps():
    def batch(rows, steps):
        inputs = {AVAILABILITY: tf.ones([rows, 3], tf.bool)}
        for spec in MODALITIES:
            inputs[spec.name] = tf.zeros([rows, steps, spec.feature_dim])
            inputs[spec.length_key] = tf.fill([rows], 2)  # shorter than the padded length
        return inputs, tf.zeros([rows], tf.int32)

    batches = [batch(4, 5), batch(2, 9)]
    per_utterance = train_throughput.epoch_flops_per_utterance(batches, MODALITIES, CONFIG, ALL, True)
    expected = (4 * train_throughput.step_flops(batches[0], MODALITIES, CONFIG, ALL, True)
                + 2 * train_throughput.step_flops(batches[1], MODALITIES, CONFIG, ALL, True)) / 6
    np.testing.assert_allclose(per_utterance, expected)
    # The 9-step batch costs more per row than the 5-step one although every row holds 2 frames.
    assert train_throughput.step_flops(batches[1], MODALITIES, CONFIG, ALL, True) > \
        train_throughput.step_flops(batches[0], MODALITIES, CONFIG, ALL, True)
