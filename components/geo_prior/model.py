"""The geo network and its presence-only loss (Mac Aodha et al. 2019, "Presence-Only Geographical Priors").

A fully connected residual network maps an encoded location (and date) to one sigmoid per leaf. Training
uses the "full assume negative" loss: an observation is a positive for its leaf and a negative for every
other leaf at that place, and a random location drawn uniformly on the sphere is a negative for all leaves.
"""
from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf
import tf_keras as keras

from inatvision.components.geo_prior.encoding import LOCATION_SIZE, input_size
from inatvision.config import GeoConfig

DROPOUT_RATE = 0.5  # the paper's residual blocks


def build_geo_network(num_classes: int, config: GeoConfig) -> keras.Model:
    """Encoded inputs [b, 4 or 6] to per-leaf logits [b, C]."""
    inputs = keras.Input((input_size(config.use_date),), name="geo_inputs")
    x = keras.layers.Dense(config.hidden_units, activation="relu", name="embed")(inputs)
    for block in range(config.residual_blocks):
        x = _residual_block(x, config.hidden_units, f"residual_{block}")
    logits = keras.layers.Dense(num_classes, name="class_logits")(x)
    return keras.Model(inputs, logits, name="geo_network")


def _residual_block(x, units: int, name: str):
    """x + ReLU(Dense(Dropout(ReLU(Dense(x)))))."""
    y = keras.layers.Dense(units, activation="relu", name=f"{name}_dense_a")(x)
    y = keras.layers.Dropout(DROPOUT_RATE, name=f"{name}_dropout")(y)
    y = keras.layers.Dense(units, activation="relu", name=f"{name}_dense_b")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def random_locations(count) -> tuple[tf.Tensor, tf.Tensor]:
    """(latitude, longitude) in degrees, uniform on the sphere (not on the lat/lng rectangle)."""
    longitude = tf.random.uniform([count], -180.0, 180.0)
    latitude = tf.asin(tf.random.uniform([count], -1.0, 1.0)) * 180.0 / math.pi
    return latitude, longitude


def full_assume_negative_loss(logits, background_logits, labels, positive_weight: float) -> tf.Tensor:
    """Batch mean of -w log s_y(x) - sum_{c!=y} log(1 - s_c(x)) - sum_c log(1 - s_c(r)), from logits."""
    positive = tf.one_hot(labels, tf.shape(logits)[-1], dtype=tf.float32)
    log_present = -tf.nn.softplus(-logits)  # log s
    log_absent = -tf.nn.softplus(logits)  # log (1 - s)
    at_observation = positive * positive_weight * log_present + (1.0 - positive) * log_absent
    at_background = -tf.nn.softplus(background_logits)
    return -tf.reduce_mean(tf.reduce_sum(at_observation, -1) + tf.reduce_sum(at_background, -1))


class PresenceOnlyModel(keras.Model):
    """Trains `network` with the full-assume-negative loss; calling it gives per-leaf scores in [0, 1].

    Each batch draws one background location per observation, encoded by `encode_locations` (latitude,
    longitude -> location encoding: the Transform graph's, see run.py); it shares the observation's date
    inputs, so with `use_date` the date alone cannot tell observations from background.
    """

    def __init__(self, network: keras.Model, positive_weight: float,
                 encode_locations: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.encode_locations = encode_locations
        self.positive_weight = positive_weight
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, inputs, training=False):
        return tf.sigmoid(self.network(inputs, training=training))

    @property
    def metrics(self):
        return [self.loss_tracker]

    @tf.autograph.experimental.do_not_convert  # no tensor-dependent Python control flow; converting
    def train_step(self, data):               # the Keras optimizer code it calls takes about a minute
        inputs, labels = data
        latitude, longitude = random_locations(tf.shape(inputs)[0])
        background = tf.concat([self.encode_locations(latitude, longitude), inputs[:, LOCATION_SIZE:]], axis=-1)
        with tf.GradientTape() as tape:
            loss = full_assume_negative_loss(self.network(inputs, training=True),
                                             self.network(background, training=True),
                                             labels, self.positive_weight)
        self.optimizer.minimize(loss, self.network.trainable_variables, tape=tape)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def build_presence_model(num_classes: int, config: GeoConfig,
                         encode_locations: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]) -> PresenceOnlyModel:
    """The network wrapped for training (positive weight: `config.effective_positive_weight`), compiled with
    Adam at `config.learning_rate`."""
    model = PresenceOnlyModel(build_geo_network(num_classes, config), config.effective_positive_weight(num_classes),
                              encode_locations)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    return model
