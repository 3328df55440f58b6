"""Denseface: the DenseNet-BC whose pooled features are MMIN's visual features."""

import keras

# Pixel statistics of the original extractor (MMIN's preprocess/tools/denseface_extractor.py).
PIXEL_MEAN = 131.0754
PIXEL_STD = 47.858177


class _BottleneckLayer(keras.layers.Layer):
    """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k); the new `k` channels are appended to the input."""

    def __init__(self, growth_rate, batch_norm_momentum, **kwargs):
        super().__init__(**kwargs)
        self.growth_rate = growth_rate
        self.input_norm = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name="input_norm")
        self.bottleneck = keras.layers.Conv2D(
            4 * growth_rate, 1, use_bias=False, kernel_initializer="he_normal", name="bottleneck"
        )
        self.bottleneck_norm = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name="bottleneck_norm")
        self.convolution = keras.layers.Conv2D(
            growth_rate, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name="convolution"
        )

    def build(self, input_shape):
        bottleneck_shape = (*input_shape[:-1], 4 * self.growth_rate)
        self.input_norm.build(input_shape)
        self.bottleneck.build(input_shape)
        self.bottleneck_norm.build(bottleneck_shape)
        self.convolution.build(bottleneck_shape)
        self.built = True

    def call(self, inputs, training=None):
        hidden = self.bottleneck(keras.ops.relu(self.input_norm(inputs, training=training)))
        new = self.convolution(keras.ops.relu(self.bottleneck_norm(hidden, training=training)))
        return keras.ops.concatenate([inputs, new], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.growth_rate)


class _TransitionLayer(keras.layers.Layer):
    """BN-ReLU-Conv1x1(filters)-AvgPool 2x2 (stride 2, valid padding)."""

    def __init__(self, filters, batch_norm_momentum, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.norm = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name="norm")
        self.convolution = keras.layers.Conv2D(
            filters, 1, use_bias=False, kernel_initializer="he_normal", name="convolution"
        )
        self.pool = keras.layers.AveragePooling2D(2, name="pool")

    def build(self, input_shape):
        self.norm.build(input_shape)
        self.convolution.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return self.pool(self.convolution(keras.ops.relu(self.norm(inputs, training=training))))

    def compute_output_shape(self, input_shape):
        halve = lambda size: None if size is None else size // 2
        return (input_shape[0], halve(input_shape[1]), halve(input_shape[2]), self.filters)


@keras.saving.register_keras_serializable(package="mmin_tf")
class Denseface(keras.Model):
    """DenseNet-BC on grayscale faces (Huang et al., CVPR 2017), as MMIN's "Denseface".

    The original (MMIN's preprocess/tools/denseface/vision_network/models/dense_net.py, run with
    `--model_type=DenseNet-BC --depth=100 --growth_rate=12 --total_blocks=3 --reduction=0.5`):

        normalise (pixel - mean) / std
        stem        Conv3x3(2k), stride 2                                    (batch, H/2, W/2, 2k)
        num_blocks  dense blocks of `layers_per_block` bottleneck layers
                    BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k), each concatenated to its input (+k)
                    between blocks: BN-ReLU-Conv1x1(floor(channels * compression))-AvgPool 2x2
        features    BN-ReLU-global average pooling                           (batch, feature_dim)
        logits      Dense(num_classes)

    The defaults are that configuration: depth 2 * 3 * 16 + 3 + 1 = 100, channels
    24 -> 216 -> 108 -> 300 -> 150 -> 342, about 0.79 M parameters. As in the original, the
    convolutions have no bias and Kaiming-normal kernels; the batch normalisation keeps
    TF1 `tf.contrib.layers.batch_norm`'s moving-average decay (0.999) and epsilon (1e-3); its
    dropout was off for FER+ (keep_prob 1.0), so there is none here. The normalisation is part of
    the model, so a saved `.keras` file takes raw pixels.

    Args:
        layers_per_block: bottleneck layers per dense block ((depth - num_blocks - 1) / (2 *
            num_blocks) in the original's terms; 16 for depth 100).
        growth_rate: channels each bottleneck layer adds (k).
        num_blocks: dense blocks.
        compression: fraction of the channels a transition layer keeps (the original's
            `reduction`), in (0, 1].
        num_classes: classes of the logits (FER+'s 8 emotions).
        pixel_mean: subtracted from every pixel.
        pixel_std: every pixel is divided by it after the subtraction.
        batch_norm_momentum: moving-average momentum of every batch normalisation.

    Call arguments:
        inputs: raw grayscale images `(batch, height, width, 1)`, pixel values 0..255 (64 x 64 in
            the original; any size the stride-2 stem and the 2 x 2 poolings can halve).
        training: batch statistics (and their moving averages updated) if true.

    Returns:
        Dict with `features` `(batch, feature_dim)` (the pooled layer before the logits, MMIN's
        visual feature) and `logits` `(batch, num_classes)`.
    """

    def __init__(
        self,
        layers_per_block=16,
        growth_rate=12,
        num_blocks=3,
        compression=0.5,
        num_classes=8,
        pixel_mean=PIXEL_MEAN,
        pixel_std=PIXEL_STD,
        batch_norm_momentum=0.999,
        **kwargs,
    ):
        super().__init__(**kwargs)
        sizes = {"layers_per_block": layers_per_block, "growth_rate": growth_rate, "num_blocks": num_blocks}
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={value}")
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"`compression` must be in (0, 1]. Received: compression={compression}")
        if num_classes < 2:
            raise ValueError(f"`num_classes` must be >= 2. Received: num_classes={num_classes}")
        if not pixel_std > 0.0:
            raise ValueError(f"`pixel_std` must be > 0. Received: pixel_std={pixel_std}")
        if not 0.0 <= batch_norm_momentum < 1.0:
            raise ValueError(
                f"`batch_norm_momentum` must be in [0, 1). Received: batch_norm_momentum={batch_norm_momentum}"
            )
        self.layers_per_block = int(layers_per_block)
        self.growth_rate = int(growth_rate)
        self.num_blocks = int(num_blocks)
        self.compression = float(compression)
        self.num_classes = int(num_classes)
        self.pixel_mean = float(pixel_mean)
        self.pixel_std = float(pixel_std)
        self.batch_norm_momentum = float(batch_norm_momentum)

        channels = 2 * self.growth_rate
        self.transition_filters = []
        for block in range(self.num_blocks - 1):
            channels += self.layers_per_block * self.growth_rate
            filters = int(channels * self.compression)
            if filters < 1:
                raise ValueError(
                    f"`compression` leaves no channels after dense block {block} ({channels} channels "
                    f"x {self.compression}). Received: compression={compression}"
                )
            self.transition_filters.append(filters)
            channels = filters
        self._feature_dim = channels + self.layers_per_block * self.growth_rate

        self.stem = keras.layers.Conv2D(
            2 * self.growth_rate, 3, strides=2, padding="same", use_bias=False,
            kernel_initializer="he_normal", name="stem",
        )
        self.blocks = [
            [
                _BottleneckLayer(self.growth_rate, self.batch_norm_momentum, name=f"block_{block}_layer_{layer}")
                for layer in range(self.layers_per_block)
            ]
            for block in range(self.num_blocks)
        ]
        self.transitions = [
            _TransitionLayer(filters, self.batch_norm_momentum, name=f"transition_{block}")
            for block, filters in enumerate(self.transition_filters)
        ]
        self.final_norm = keras.layers.BatchNormalization(momentum=self.batch_norm_momentum, name="final_norm")
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool")
        self.classifier = keras.layers.Dense(self.num_classes, name="logits")

    @property
    def feature_dim(self):
        """Width of `features`: 2k + num_blocks' growth, compressed at each transition (342 by default)."""
        return self._feature_dim

    @property
    def depth(self):
        """The original's `depth`: two convolutions per bottleneck layer, the stem and the transitions."""
        return 2 * self.num_blocks * self.layers_per_block + self.num_blocks + 1

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.stem.build(shape)
        shape = self.stem.compute_output_shape(shape)
        for block, layers in enumerate(self.blocks):
            for layer in layers:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
            if block < len(self.transitions):
                self.transitions[block].build(shape)
                shape = self.transitions[block].compute_output_shape(shape)
        self.final_norm.build(shape)
        self.classifier.build((None, self.feature_dim))
        self.built = True

    def call(self, inputs, training=None):
        pixels = keras.ops.cast(inputs, self.compute_dtype)
        hidden = self.stem((pixels - self.pixel_mean) / self.pixel_std)  # (B, H/2, W/2, 2k)
        for block, layers in enumerate(self.blocks):
            for layer in layers:
                hidden = layer(hidden, training=training)
            if block < len(self.transitions):
                hidden = self.transitions[block](hidden, training=training)
        features = self.pool(keras.ops.relu(self.final_norm(hidden, training=training)))  # (B, feature_dim)
        return {"features": features, "logits": self.classifier(features)}

    def compute_output_shape(self, input_shape):
        return {"features": (input_shape[0], self.feature_dim), "logits": (input_shape[0], self.num_classes)}

    def get_config(self):
        config = super().get_config()
        config.update(
            layers_per_block=self.layers_per_block,
            growth_rate=self.growth_rate,
            num_blocks=self.num_blocks,
            compression=self.compression,
            num_classes=self.num_classes,
            pixel_mean=self.pixel_mean,
            pixel_std=self.pixel_std,
            batch_norm_momentum=self.batch_norm_momentum,
        )
        return config
