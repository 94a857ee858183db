"""Raw features in, the Transform graph's features out: how the Trainers, the exports and serving apply it.

Everything a model sees goes through `TFTransformOutput.transform_features_layer()`. The layer returns the
outputs of `preprocessing_fn` that the fed raw features determine (the photo alone gives `image`; the
coordinates, accuracy and day give the location features), so a caller feeds only what it has.
"""
from __future__ import annotations

from typing import Iterable, Optional

import tensorflow as tf
import tensorflow_transform as tft

from inatvision import features
from inatvision.errors import ConfigError

SERVING_FEATURES = (features.IMAGE, features.LATITUDE, features.LONGITUDE, features.POSITIONAL_ACCURACY,
                    features.DAY_OF_YEAR)  # what a served model reads from an Example
LOCATION_FEATURES = SERVING_FEATURES[1:]


def feature_spec(transform_output: tft.TFTransformOutput, keys: Optional[Iterable[str]] = None,
                 exclude: Iterable[str] = ()) -> dict:
    """The raw feature spec (from the curated schema Transform was given) of `keys` (all by default)."""
    spec = transform_output.raw_feature_spec()
    keys = list(spec) if keys is None else list(keys)
    return {key: spec[key] for key in keys if key not in set(exclude)}


def parse_examples(serialized: tf.Tensor, spec: dict) -> dict:
    """Serialized tf.Examples [batch] to raw features, as Transform read them."""
    return tf.io.parse_example(serialized, spec)


def _present(values: tf.Tensor) -> tf.SparseTensor:
    """[batch] values as a [batch, 1] sparse feature holding every value (unknowns are NaN or 0, which
    preprocessing_fn reads as unknown)."""
    rows = tf.range(tf.shape(values, out_type=tf.int64)[0])
    return tf.SparseTensor(tf.stack([rows, tf.zeros_like(rows)], axis=1), values,
                           tf.stack([tf.size(values, out_type=tf.int64), tf.constant(1, tf.int64)]))


def _absent(like: tf.Tensor, dtype: tf.DType) -> tf.SparseTensor:
    """A [batch, 1] sparse feature without values: unknown in every row."""
    return tf.SparseTensor(tf.zeros([0, 2], tf.int64), tf.zeros([0], dtype),
                           tf.stack([tf.size(like, out_type=tf.int64), tf.constant(1, tf.int64)]))


def photo_features(image_bytes: tf.Tensor) -> dict:
    """Raw features of encoded photos [batch]."""
    return {features.IMAGE: tf.reshape(image_bytes, [-1, 1])}


def location_features(latitude: tf.Tensor, longitude: tf.Tensor, day_of_year: tf.Tensor) -> dict:
    """Raw features of `serving_default`'s location inputs [batch]: NaN coordinates and day 0 mean unknown;
    there is no accuracy input, so the accuracy is absent (usable by the rule)."""
    return {features.LATITUDE: _present(tf.cast(latitude, tf.float32)),
            features.LONGITUDE: _present(tf.cast(longitude, tf.float32)),
            features.POSITIONAL_ACCURACY: _absent(latitude, tf.float32),
            features.DAY_OF_YEAR: _present(tf.cast(day_of_year, tf.int64))}


def check_image_size(transform_output: tft.TFTransformOutput, image_size: int) -> None:
    """Raises ConfigError unless the graph's `image` is `image_size` square (it is compiled into the graph, so a
    submission-time `trainer.image_size` cannot change it)."""
    shape = list(transform_output.transformed_feature_spec()[features.IMAGE_PIXELS].shape)
    if shape[:2] != [image_size, image_size]:
        raise ConfigError(f"trainer.image_size={image_size}, but the Transform graph resizes photos to "
                          f"{shape[0]}x{shape[1]}: trainer.image_size is compiled into the Transform step; set it when "
                          f"the pipeline is compiled, not at submission")
