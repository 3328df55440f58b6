"""An LSTM over a sequence pooled by attention: MCTN's prediction network before its output layer."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mmin_tf")
class RecurrentAttentionPooling(keras.layers.Layer):
    """LSTM states weighted by a softmax over steps of tanh scores, summed over time.

        s_t = LSTM(E)_t,   a = softmax_t(tanh(w s_t + b)),   r = sum_t a_t s_t

    The public MCTN code's prediction network (`models/regression_model.py`) up to its output
    layer, which here is a `ClassifierHead`. The sequences it reads have a fixed number of steps,
    all valid (`SequenceResampler`), so no mask is needed.

    Args:
        hidden_size: LSTM units = width of `r`.
        use_cudnn: passed to `keras.layers.LSTM` ("auto", True or False).

    Call arguments:
        sequence: float `(batch, steps, dim)`.

    Returns:
        `(batch, hidden_size)`.
    """

    def __init__(self, hidden_size=32, use_cudnn="auto", **kwargs):
        super().__init__(**kwargs)
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"`hidden_size` must be a positive int. Received: hidden_size={hidden_size!r}")
        self.hidden_size = hidden_size
        self.use_cudnn = use_cudnn
        self.lstm = keras.layers.LSTM(hidden_size, return_sequences=True, use_cudnn=use_cudnn, name="lstm")
        self.score = keras.layers.Dense(1, activation="tanh", name="score")

    @property
    def output_size(self):
        return self.hidden_size

    def build(self, sequence_shape):
        if not self.lstm.built:
            self.lstm.build(tuple(sequence_shape))
        if not self.score.built:
            self.score.build((None, None, self.hidden_size))
        self.built = True

    def call(self, sequence):
        states = self.lstm(sequence)  # (B, N, H)
        weights = tf.nn.softmax(self.score(states), axis=1)  # (B, N, 1)
        return tf.reduce_sum(weights * states, axis=1)

    def compute_output_shape(self, sequence_shape):
        return (sequence_shape[0], self.hidden_size)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, use_cudnn=self.use_cudnn)
        return config
