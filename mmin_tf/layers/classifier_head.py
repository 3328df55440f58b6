"""Fully connected emotion classifier."""

import keras


@keras.saving.register_keras_serializable(package="mmin_tf")
class ClassifierHead(keras.layers.Layer):
    """Dense-ReLU-Dropout blocks followed by a linear layer to class logits (paper Eq. 5).

    The original code's FcClassifier with `cls_layers=128,128` (the paper's Table 3 says
    128-64-C; both are a `hidden_sizes` away).

    Args:
        num_classes: number of emotion classes.
        hidden_sizes: widths of the hidden layers.
        dropout: rate after each hidden layer, in training.

    Call arguments:
        inputs: `(batch, input_dim)`.
        training: enables dropout.

    Returns:
        Logits `(batch, num_classes)`.
    """

    def __init__(self, num_classes, hidden_sizes=(128, 128), dropout=0.3, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"`num_classes` must be >= 2. Received: num_classes={num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.num_classes = num_classes
        self.hidden_sizes = tuple(int(size) for size in hidden_sizes)
        self.dropout = dropout
        self.hidden_layers = [
            keras.layers.Dense(size, activation="relu", name=f"hidden_{i}")
            for i, size in enumerate(self.hidden_sizes)
        ]
        self.dropout_layers = [keras.layers.Dropout(dropout) for _ in self.hidden_sizes]
        self.output_layer = keras.layers.Dense(num_classes, name="logits")

    def build(self, input_shape):
        width = input_shape[-1]
        for layer in self.hidden_layers:
            if not layer.built:
                layer.build((None, width))
            width = layer.units
        if not self.output_layer.built:
            self.output_layer.build((None, width))
        self.built = True

    def call(self, inputs, training=None):
        hidden = inputs
        for layer, dropout in zip(self.hidden_layers, self.dropout_layers):
            hidden = dropout(layer(hidden), training=training)
        return self.output_layer(hidden)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, hidden_sizes=self.hidden_sizes, dropout=self.dropout
        )
        return config
