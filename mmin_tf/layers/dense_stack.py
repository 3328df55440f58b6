"""A stack of Dense layers, the building block of the autoencoders."""

import keras


def dense_stack(sizes, activation, final_activation, name):
    """Dense layers of `sizes`; `activation` between them, `final_activation` (or None) last."""
    layers = []
    for index, size in enumerate(sizes):
        last = index == len(sizes) - 1
        layers.append(
            keras.layers.Dense(
                size,
                activation=final_activation if last else activation,
                name=f"{name}_{index}",
            )
        )
    return layers


def apply_stack(layers, inputs):
    hidden = inputs
    for layer in layers:
        hidden = layer(hidden)
    return hidden


def build_stack(layers, input_dim):
    width = input_dim
    for layer in layers:
        if not layer.built:
            layer.build((None, width))
        width = layer.units
    return width


def stack_parameters(input_dim, sizes):
    """Weights + biases of a Dense stack from `input_dim` through `sizes`."""
    total, width = 0, input_dim
    for size in sizes:
        total += width * size + size
        width = size
    return total


def leaky_relu(x):
    """LeakyReLU with PyTorch's default slope 0.01, as the original autoencoders."""
    return keras.activations.leaky_relu(x, negative_slope=0.01)
