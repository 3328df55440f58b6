"""MCTN's sequence-to-sequence decoder: an LSTM that attends over the encoder's sequence."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mmin_tf")
class AttentionDecoder(keras.layers.Layer):
    """Decodes an encoded sequence into `steps` frames of `output_dim` features.

    MCTN's decoder `g` (Pham et al., AAAI 2019), as the public code's `AttentionDecoderCell`
    (`seq2seq/cells.py`, from farizrahman4u/seq2seq) computes it. At every output step `t`:

        alpha_t = softmax_i(w [e_i; c_{t-1}])        attention over the encoder steps e_i
        context_t = sum_i alpha_t,i e_i
        h_t, c_t = LSTM(context_t, (h_{t-1}, c_{t-1}))   (zero initial state)
        y_t = W h_t + b

    The public code squashes `y_t` with tanh; here it is linear, because the targets (features
    normalized or not, `--normalize`) are not bounded to [-1, 1]. Its input-gate activation is
    also used as the forget gate there (a slip); `keras.layers.LSTMCell` has both.

    Args:
        output_dim: features per decoded frame.
        steps: decoded frames.
        hidden_size: LSTM units.

    Call arguments:
        encoded: float `(batch, encoder_steps, encoded_dim)`.

    Returns:
        `(batch, steps, output_dim)`.
    """

    def __init__(self, output_dim, steps=20, hidden_size=32, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("output_dim", output_dim), ("steps", steps), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        self.output_dim = output_dim
        self.steps = steps
        self.hidden_size = hidden_size
        self.encoder_score = keras.layers.Dense(1, name="encoder_score")
        self.state_score = keras.layers.Dense(1, use_bias=False, name="state_score")
        self.cell = keras.layers.LSTMCell(hidden_size, name="cell")
        self.readout = keras.layers.Dense(output_dim, name="readout")

    def build(self, encoded_shape):
        width = encoded_shape[-1]
        self.encoder_score.build((None, None, width))
        self.state_score.build((None, self.hidden_size))
        self.cell.build((None, width))
        self.readout.build((None, self.hidden_size))
        self.built = True

    def call(self, encoded):
        scores = self.encoder_score(encoded)  # (B, S, 1)
        batch = tf.shape(encoded)[0]
        hidden = tf.zeros([batch, self.hidden_size], encoded.dtype)
        memory = tf.zeros([batch, self.hidden_size], encoded.dtype)
        frames = []
        for _ in range(self.steps):
            weights = tf.nn.softmax(scores + self.state_score(memory)[:, None, :], axis=1)  # (B, S, 1)
            context = tf.reduce_sum(weights * encoded, axis=1)  # (B, E)
            hidden, (hidden, memory) = self.cell(context, [hidden, memory])
            frames.append(self.readout(hidden))
        return tf.stack(frames, axis=1)  # (B, steps, output_dim)

    def compute_output_shape(self, encoded_shape):
        return (encoded_shape[0], self.steps, self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(output_dim=self.output_dim, steps=self.steps, hidden_size=self.hidden_size)
        return config
