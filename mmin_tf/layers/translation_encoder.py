"""MCTN's sequence-to-sequence encoder: a bidirectional LSTM over a fixed-length sequence."""

import keras


@keras.saving.register_keras_serializable(package="mmin_tf")
class TranslationEncoder(keras.layers.Layer):
    """Bidirectional LSTM whose forward and backward states are summed at every step.

    MCTN's encoder `f` (Pham et al., AAAI 2019; the public code's `seq2seq/mctn_models.py`:
    `Bidirectional(LSTM, merge_mode='sum')`, one layer). Its output sequence is the joint
    representation `E` that the decoder translates and the classifier reads. The sequences MCTN
    encodes are resampled to a fixed number of steps (`SequenceResampler`), all valid, so no mask
    is needed.

    Args:
        hidden_size: LSTM units per direction = width of `E`.
        use_cudnn: passed to `keras.layers.LSTM` ("auto", True or False).

    Call arguments:
        sequence: float `(batch, steps, input_dim)`.

    Returns:
        `(batch, steps, hidden_size)`.
    """

    def __init__(self, hidden_size=32, use_cudnn="auto", **kwargs):
        super().__init__(**kwargs)
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"`hidden_size` must be a positive int. Received: hidden_size={hidden_size!r}")
        self.hidden_size = hidden_size
        self.use_cudnn = use_cudnn
        self.lstm = keras.layers.Bidirectional(
            keras.layers.LSTM(hidden_size, return_sequences=True, use_cudnn=use_cudnn),
            merge_mode="sum",
            name="bidirectional_lstm",
        )

    def build(self, sequence_shape):
        if not self.lstm.built:
            self.lstm.build(tuple(sequence_shape))
        self.built = True

    def call(self, sequence):
        return self.lstm(sequence)

    def compute_output_shape(self, sequence_shape):
        return (sequence_shape[0], sequence_shape[1], self.hidden_size)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, use_cudnn=self.use_cudnn)
        return config
