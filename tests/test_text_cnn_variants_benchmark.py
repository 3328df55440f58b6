"""benchmarks/text_cnn_variants.py: its fused TextCNN variants compute what `TextCNN.pool` does."""

import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers.text_cnn import TextCNN
from tests.benchmark_loader import load_benchmark

text_cnn_variants = load_benchmark("text_cnn_variants")


@pytest.mark.parametrize("variant", ["one_matmul", "one_convolution"])
def test_a_fused_variant_equals_the_three_convolutions(variant):
    tf.random.set_seed(0)
    layer = TextCNN(channels=4, kernel_sizes=(2, 3, 4), embedding_size=8)
    features = tf.random.normal((3, 9, 7))
    lengths = tf.constant([9, 6, 4])  # one text exactly as long as the widest kernel
    layer(features, lengths)
    expected = layer.pool(features, lengths)
    fused = getattr(text_cnn_variants, variant)(layer, features, lengths)
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-5)
