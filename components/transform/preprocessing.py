"""tf.Transform's `preprocessing_fn`: what belongs to the data, the same graph everywhere.

Label and taxon ids pass through; location and date become the encodings the geo prior
reads (components/geo_prior/encoding.py), and `has_location` is the one rule of
inatvision/location.py (docs/data.md) with the pipeline's `geo.max_positional_accuracy_m`
(`custom_config`). Images are not touched here: decoding and
augmentation belong to the Trainer's input pipeline, and the exported model carries the
evaluation crop itself, so nothing materializes decoded pixels.
"""
import tensorflow as tf

from inatvision import features
from inatvision.components.geo_prior.encoding import encode_date, encode_location
from inatvision.location import has_location_tf


def _dense(values, default):
    """A [batch] tensor from an optional (sparse) feature, `default` where absent."""
    if isinstance(values, tf.SparseTensor):
        values = tf.sparse.to_dense(tf.sparse.reset_shape(values, [values.dense_shape[0], 1]),
                                    default_value=default)
    return tf.reshape(values, [-1])


def preprocessing_fn(inputs, custom_config):
    """`custom_config`: {"max_positional_accuracy_m": ...} (pipeline.create_pipeline passes the config's)."""
    latitude = _dense(inputs[features.LATITUDE], float("nan"))
    longitude = _dense(inputs[features.LONGITUDE], float("nan"))
    accuracy = _dense(inputs[features.POSITIONAL_ACCURACY], float("nan"))
    day_of_year = _dense(inputs[features.DAY_OF_YEAR], tf.constant(0, tf.int64))
    has_location = has_location_tf(latitude, longitude, accuracy, custom_config["max_positional_accuracy_m"])
    safe = lambda value: tf.where(has_location, value, tf.zeros_like(value))  # noqa: E731
    return {
        features.LABEL: tf.reshape(inputs[features.LABEL], [-1]),
        features.LEAF_TAXON_ID: tf.reshape(inputs[features.LEAF_TAXON_ID], [-1]),
        features.LOCATION_ENCODING: encode_location(safe(latitude), safe(longitude)),
        features.HAS_LOCATION: tf.cast(has_location, tf.float32),
        features.DATE_ENCODING: encode_date(day_of_year),
    }
