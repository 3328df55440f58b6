"""MCTN's sequence-to-sequence decoder: an LSTM that attends over the encoder's sequence."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mmin_tf")
class AttentionDecoder(keras.layers.Layer):
    """Decodes an encoded sequence into `steps` frames of `output_dim` features.

    MCTN's decoder `g` (Pham et al., AAAI 2019): an LSTM whose input at every output step is an
    attention-weighted sum of the encoder's steps, as the public code's `AttentionDecoderCell`
    (`seq2seq/cells.py`, from farizrahman4u/seq2seq). At every output step `t`:

        alpha_t = softmax_i(v . tanh(W_e e_i + W_s h_{t-1} + b))   attention over the encoder steps e_i
        context_t = sum_i alpha_t,i e_i
        h_t, c_t = LSTM(context_t, (h_{t-1}, c_{t-1}))              (zero initial state)
        y_t = W h_t + b_y

    Where this differs from the public cell: its score is linear, `w . [e_i; c_{t-1}]`, so the
    state's term is the same for every `i` and cancels in the softmax: its attention is the same
    at every output step. Here the score is additive (Bahdanau et al., ICLR 2015), so the
    attention moves with the decoder's state. The public cell squashes `y_t` with tanh; here it
    is linear, because the targets (features, normalized or not, `--normalize`) are not bounded
    to [-1, 1]. It also uses its input-gate activation as the forget gate (a slip);
    `keras.layers.LSTMCell` has both.

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
        self.encoder_projection = keras.layers.Dense(hidden_size, name="encoder_projection")
        self.state_projection = keras.layers.Dense(hidden_size, use_bias=False, name="state_projection")
        # No bias: a constant added to every step's score leaves the softmax unchanged.
        self.score = keras.layers.Dense(1, use_bias=False, name="score")
        self.cell = keras.layers.LSTMCell(hidden_size, name="cell")
        self.readout = keras.layers.Dense(output_dim, name="readout")

    def build(self, encoded_shape):
        width = encoded_shape[-1]
        self.encoder_projection.build((None, None, width))
        self.state_projection.build((None, self.hidden_size))
        self.score.build((None, None, self.hidden_size))
        self.cell.build((None, width))
        self.readout.build((None, self.hidden_size))
        self.built = True

    def call(self, encoded):
        keys = self.encoder_projection(encoded)  # (B, S, H)
        batch = tf.shape(encoded)[0]
        hidden = tf.zeros([batch, self.hidden_size], encoded.dtype)
        memory = tf.zeros([batch, self.hidden_size], encoded.dtype)
        frames = []
        for _ in range(self.steps):
            scores = self.score(tf.tanh(keys + self.state_projection(hidden)[:, None, :]))  # (B, S, 1)
            weights = tf.nn.softmax(scores, axis=1)
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
