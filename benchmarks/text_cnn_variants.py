"""The TextCNN's pooled features three ways, on CPU: are its three convolutions worth fusing?

    python benchmarks/text_cnn_variants.py [--batch=128] [--rounds=30]

`TextCNN.pool` (three `Conv1D`s, widths 3/4/5, 128 channels each, over 1024-wide word pieces)
against two equivalents that compute all three in one kernel call with the same weights:
`one_matmul` (the five shifted copies of the input stacked, one matmul with the three kernels
zero-padded to width 5) and `one_convolution` (one width-5 convolution with those padded kernels,
384 channels). Both do 15/12 of the convolutions' multiply-adds. Each is timed forward, and
forward plus the kernels' gradients, as `tf.function`s on `--batch` texts of `--time` pieces,
interleaved round by round; medians in milliseconds. The maximum absolute difference of each
variant's pooled features from `TextCNN.pool` is printed first.
"""

import os
import sys
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmin_tf.layers.masking import masked_max_over_time  # noqa: E402
from mmin_tf.layers.text_cnn import TextCNN  # noqa: E402

_BATCH = flags.DEFINE_integer("batch", 128, "Texts per call.", lower_bound=1)
_TIME = flags.DEFINE_integer("time", 22, "Word pieces per text (IEMOCAP-like).", lower_bound=5)
_ROUNDS = flags.DEFINE_integer("rounds", 30, "Timed rounds.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the weights and inputs.")


def padded_kernels(layer: TextCNN) -> tuple[tf.Tensor, tf.Tensor]:
    """The three kernels zero-padded to the widest, concatenated: `(width, dim, channels * 3)`, and the biases."""
    width = layer.minimum_length
    kernels = [tf.pad(conv.kernel, [[0, width - size], [0, 0], [0, 0]])
               for size, conv in zip(layer.kernel_sizes, layer.convolutions)]
    return tf.concat(kernels, -1), tf.concat([conv.bias for conv in layer.convolutions], 0)


def pooled(layer: TextCNN, activations, lengths):
    """Per kernel width, the max over its valid windows of its channels of `activations`."""
    return tf.concat([
        masked_max_over_time(activations[..., index * layer.channels:(index + 1) * layer.channels],
                             tf.maximum(lengths - size + 1, 1))
        for index, size in enumerate(layer.kernel_sizes)], -1)


def one_matmul(layer: TextCNN, features, lengths):
    width = layer.minimum_length
    time_steps = tf.shape(features)[1]
    padded = tf.pad(features, [[0, 0], [0, width - 1], [0, 0]])
    shifted = tf.concat([padded[:, shift:shift + time_steps, :] for shift in range(width)], -1)
    kernel, bias = padded_kernels(layer)
    activations = tf.nn.relu(tf.einsum("btk,kc->btc", shifted, tf.reshape(kernel, (-1, kernel.shape[-1]))) + bias)
    return pooled(layer, activations, lengths)


def one_convolution(layer: TextCNN, features, lengths):
    padded = tf.pad(features, [[0, 0], [0, layer.minimum_length - min(layer.kernel_sizes)], [0, 0]])
    kernel, bias = padded_kernels(layer)
    return pooled(layer, tf.nn.relu(tf.nn.conv1d(padded, kernel, 1, "VALID") + bias), lengths)


def main(argv):
    del argv
    tf.random.set_seed(_SEED.value)
    layer = TextCNN()
    features = tf.random.normal((_BATCH.value, _TIME.value, 1024))
    lengths = tf.fill([_BATCH.value], _TIME.value)
    layer(features, lengths)
    variants = {"three_convolutions": layer.pool,
                "one_matmul": lambda f, l: one_matmul(layer, f, l),
                "one_convolution": lambda f, l: one_convolution(layer, f, l)}
    kernels = [conv.kernel for conv in layer.convolutions]
    calls = {}
    for name, function in variants.items():
        calls[f"{name} forward"] = tf.function(function)

        def with_gradients(f, l, function=function):
            with tf.GradientTape() as tape:
                total = tf.reduce_sum(function(f, l))
            return tape.gradient(total, kernels)
        calls[f"{name} forward+gradients"] = tf.function(with_gradients)
    reference = layer.pool(features, lengths)
    for name in ("one_matmul", "one_convolution"):
        difference = float(tf.reduce_max(tf.abs(variants[name](features, lengths) - reference)))
        print(f"text_cnn {name} max_abs_difference={difference:.2e}")
    times = {name: [] for name in calls}
    for call in calls.values():
        call(features, lengths)  # tracing
    for _ in range(_ROUNDS.value):
        for name, call in calls.items():
            start = time.perf_counter()
            tf.nest.map_structure(lambda value: value.numpy(), call(features, lengths))
            times[name].append(time.perf_counter() - start)
    base = {kind: np.median(times[f"three_convolutions {kind}"]) for kind in ("forward", "forward+gradients")}
    for name, values in times.items():
        kind = name.split(" ")[1]
        print(f"text_cnn {name} batch={_BATCH.value} median_ms={1000 * np.median(values):.2f} "
              f"vs_three_convolutions={np.median(values) / base[kind]:.2f}")


if __name__ == "__main__":
    app.run(main)
