"""The production classifier: Xception, global average pooling, a dense layer, float32 softmax."""
from __future__ import annotations

import math

import tensorflow as tf
import tf_keras as keras

from inatvision.config import TrainerConfig


@keras.utils.register_keras_serializable(package="inatvision")
class ScaleToUnit(keras.layers.Layer):
    """Pixel levels to float in [0, 1] (the recipe's input range), on the accelerator.

    Both image paths truncate resized pixels to whole levels (the Transform graph's `image`, the training
    crops): level k stands for [k, k + 1), so it maps to the middle, (k + 0.5) / 255, clipped to 1.
    """

    def call(self, images):
        return tf.minimum((tf.cast(images, self.compute_dtype) + 0.5) / 255.0, 1.0)


@keras.utils.register_keras_serializable(package="inatvision")
class RandomColorJitter(keras.layers.Layer):
    """Colour jitter on a fraction of the images, in training only (hue, saturation, brightness, contrast)."""

    def __init__(self, fraction=0.3, hue=0.08, saturation=(0.6, 1.6), brightness=0.05,
                 contrast=(0.7, 1.3), **kwargs):
        kwargs.setdefault("dtype", "float32")  # HSV conversion wants float32 even under mixed precision
        super().__init__(**kwargs)
        self.fraction, self.hue, self.brightness = fraction, hue, brightness
        self.saturation, self.contrast = tuple(saturation), tuple(contrast)

    def call(self, images, training=None):
        if not training or self.fraction <= 0:
            return images
        images = tf.cast(images, tf.float32)
        batch = tf.shape(images)[0]

        def uniform(low, high):
            return tf.random.uniform([batch, 1, 1, 1], low, high)

        hsv = tf.image.rgb_to_hsv(images)
        hue = tf.math.floormod(hsv[..., :1] + uniform(-self.hue, self.hue), 1.0)
        saturation = tf.clip_by_value(hsv[..., 1:2] * uniform(*self.saturation), 0.0, 1.0)
        jittered = tf.image.hsv_to_rgb(tf.concat([hue, saturation, hsv[..., 2:]], -1))
        jittered += uniform(-self.brightness, self.brightness)
        mean = tf.reduce_mean(jittered, axis=[1, 2], keepdims=True)
        jittered = (jittered - mean) * uniform(*self.contrast) + mean
        jittered = tf.clip_by_value(jittered, 0.0, 1.0)
        chosen = tf.random.uniform([batch, 1, 1, 1]) < self.fraction
        return tf.where(chosen, jittered, images)

    def get_config(self):
        return {**super().get_config(), "fraction": self.fraction, "hue": self.hue,
                "saturation": self.saturation, "brightness": self.brightness, "contrast": self.contrast}


def build_classifier(num_classes: int, config: TrainerConfig) -> keras.Model:
    """Pixel levels in (float32; the uint8 training crops are cast on the accelerator), float32 class
    probabilities out; the global precision policy applies inside."""
    size = config.image_size
    images = keras.Input((size, size, 3), dtype=tf.float32, name="image")
    x = ScaleToUnit(name="scale_to_unit")(images)
    if config.random_flip:
        x = keras.layers.RandomFlip("horizontal", name="random_flip")(x)  # training only, as jitter
    x = RandomColorJitter(config.color_jitter_fraction, name="color_jitter")(x)
    backbone = keras.applications.Xception(
        include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
    if config.batchnorm_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.batchnorm_momentum
    x = backbone(x)
    logits = keras.layers.Dense(num_classes, name="classifier")(x)
    probabilities = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(images, probabilities, name="xception_classifier")


@keras.utils.register_keras_serializable(package="inatvision")
class StepDecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr x decay_rate^(epoch // decay_epochs), with an optional linear warm-up, by step."""

    def __init__(self, learning_rate, steps_per_epoch, decay_rate=0.94, decay_epochs=4, warmup_epochs=0):
        self.learning_rate, self.steps_per_epoch = float(learning_rate), int(steps_per_epoch)
        self.decay_rate, self.decay_epochs, self.warmup_epochs = float(decay_rate), int(decay_epochs), int(warmup_epochs)

    def __call__(self, step):
        epoch = tf.cast(step, tf.float32) / self.steps_per_epoch
        decayed = self.learning_rate * tf.pow(self.decay_rate, tf.floor(epoch / self.decay_epochs))
        if self.warmup_epochs <= 0:
            return decayed
        return tf.minimum(decayed, self.learning_rate * (epoch + 1.0 / self.steps_per_epoch) / self.warmup_epochs)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "steps_per_epoch": self.steps_per_epoch,
                "decay_rate": self.decay_rate, "decay_epochs": self.decay_epochs,
                "warmup_epochs": self.warmup_epochs}


def learning_rate_at_epoch(config: TrainerConfig, epoch: int) -> float:
    """The schedule's value at the start of `epoch` (documentation and tests)."""
    return config.effective_learning_rate() * config.lr_decay_rate ** (epoch // config.lr_decay_epochs)


def compile_classifier(model: keras.Model, config: TrainerConfig, steps_per_epoch: int) -> None:
    """RMSprop (rho 0.9, momentum 0.9, epsilon 1.0), label smoothing 0.1, top-1/5 accuracy."""
    schedule = StepDecaySchedule(config.effective_learning_rate(), max(1, steps_per_epoch),
                                 config.lr_decay_rate, config.lr_decay_epochs, config.warmup_epochs)
    optimizer = keras.optimizers.RMSprop(
        learning_rate=schedule, rho=config.rmsprop_rho, momentum=config.rmsprop_momentum,
        epsilon=config.rmsprop_epsilon)
    model.compile(
        optimizer=optimizer,  # Keras wraps it in a LossScaleOptimizer under mixed_float16
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="top1"),
                 keras.metrics.TopKCategoricalAccuracy(k=5, name="top5")],
        jit_compile=config.xla,
    )
    # Keras's train and test steps (and the optimizer, loss-scaling and metric code they call) have no
    # tensor-dependent Python control flow; AutoGraph converting them cost about a minute of CPU per
    # process (a first two-epoch fit of the demo model: 96 s against 36 s, docs/benchmarks.md).
    model.train_step = tf.autograph.experimental.do_not_convert(model.train_step)
    model.test_step = tf.autograph.experimental.do_not_convert(model.test_step)


def float32_copy(model: keras.Model, num_classes: int, config: TrainerConfig) -> keras.Model:
    """The same weights in a float32 model, so no mixed-precision policy leaks into the export."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = build_classifier(num_classes, config)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def warm_start_from(model: keras.Model, baseline: keras.Model, taxon_ids: list[int],
                    baseline_taxon_ids: list[int]) -> dict:
    """Copies backbone weights and the classifier rows of taxa present in both releases.

    New taxa keep their fresh initialization. Returns counts for the model card.
    """
    backbone = _backbone(model)
    baseline_backbone = _backbone(baseline)
    backbone.set_weights(baseline_backbone.get_weights())
    kernel, bias = model.get_layer("classifier").get_weights()
    old_kernel, old_bias = baseline.get_layer("classifier").get_weights()
    old_index = {taxon: index for index, taxon in enumerate(baseline_taxon_ids)}
    copied = 0
    for new_index, taxon in enumerate(taxon_ids):
        if taxon in old_index:
            kernel[:, new_index] = old_kernel[:, old_index[taxon]]
            bias[new_index] = old_bias[old_index[taxon]]
            copied += 1
    model.get_layer("classifier").set_weights([kernel, bias])
    return {"classifier_rows_copied": copied, "classifier_rows_new": len(taxon_ids) - copied}


def precise_batchnorm(model: keras.Model, images: tf.data.Dataset, batches: int) -> int:
    """Replaces BatchNorm moving statistics by their exact average over `batches` batches of images.

    `images` must be shuffled training batches: batches of a few classes each give class-biased statistics.

    "Precise BatchNorm" (Wu and Johnson, 2021): short runs end with moving averages that still
    remember their initial values. Returns the number of batches used.
    """
    backbone, scale = _backbone(model), model.get_layer("scale_to_unit")
    norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    used = 0
    for used, batch in enumerate(images.take(batches), start=1):
        for layer in norms:
            layer.momentum = 1.0 - 1.0 / used  # a running mean: the first batch replaces, later ones average in
        backbone(scale(batch), training=True)
    for layer, momentum in zip(norms, saved):
        layer.momentum = momentum
    return used


def _backbone(model: keras.Model) -> keras.Model:
    return next(layer for layer in model.layers if layer.name.startswith("xception"))


def steps_for(examples: int, global_batch_size: int) -> int:
    return max(1, math.ceil(examples / global_batch_size))

