"""tf.Transform's `preprocessing_fn`: every deterministic feature a model sees, one graph everywhere.

The Trainer, the GeoTrainer, the exported models and the Evaluator (through the served model) all apply this
graph with `TFTransformOutput.transform_features_layer()` (components/transform/raw_inputs.py); nothing else
decodes a photo for evaluation or encodes a location (docs/transform.md).

- `leaf_class_id`: the label, as the export wrote it from taxonomy.csv. The analyzer writes the vocabulary
  of the leaf taxa the examples hold (`leaf_taxa`), which the Trainers check against taxonomy.csv.
- `image`: the evaluation and serving image: decoded, resized to `image_size` without cropping, float32
  pixel levels in [0, 255] (whole levels: see `_resize_to_levels`). The value range the network wants
  belongs to the model, since other backbones rescale their input their own way. Training crops its own
  augmented views from the photo bytes (components/trainer/image_preprocessing.py).
- `has_location`: the one rule of inatvision/location.py with `max_positional_accuracy_m`; an absent
  positional accuracy counts as usable. `has_coordinates`: the coordinates alone, so that the GeoTrainer can
  count the locations it lost to their accuracy apart from those without coordinates.
- `location_encoding`, `date_encoding`: the geo prior's inputs (components/geo_prior/encoding.py); a
  location that fails the rule is encoded as 0/0 and a missing day as [0, 0].

`custom_config`: {"max_positional_accuracy_m": ..., "image_size": ...} (pipeline.create_pipeline passes the
configuration's).
"""
import tensorflow as tf
import tensorflow_transform as tft

from inatvision import features
from inatvision.components.geo_prior.encoding import encode_date, encode_location
from inatvision.location import has_location_tf

LEAF_TAXA_VOCABULARY = "leaf_taxa"


def _dense(values, default):
    """A [batch] tensor from an optional (sparse) feature, `default` where absent."""
    if isinstance(values, tf.SparseTensor):
        values = tf.sparse.to_dense(tf.sparse.reset_shape(values, [values.dense_shape[0], 1]),
                                    default_value=default)
    return tf.reshape(values, [-1])


def _resize_to_levels(image: tf.Tensor, size: int) -> tf.Tensor:
    """Bilinear resize (no antialiasing: every output is a convex combination of pixels, so it stays in
    [0, 255]) truncated to whole levels, float32 [size, size, 3]: the same levels as the training crops'."""
    return tf.floor(tf.image.resize(image, [size, size], method="bilinear", antialias=False))


def decode_and_resize(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """Encoded photos [batch] to float32 pixel levels [batch, size, size, 3]; an empty string (an input
    the caller did not feed) gives a black image without decoding anything."""

    def one(encoded):
        return tf.cond(tf.strings.length(encoded) > 0,
                       lambda: _resize_to_levels(tf.io.decode_image(encoded, channels=3, expand_animations=False),
                                                 size),
                       lambda: tf.zeros([size, size, 3]))

    return tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))


def preprocessing_fn(inputs, custom_config):
    latitude = _dense(inputs[features.LATITUDE], float("nan"))
    longitude = _dense(inputs[features.LONGITUDE], float("nan"))
    accuracy = _dense(inputs[features.POSITIONAL_ACCURACY], float("nan"))
    day_of_year = _dense(inputs[features.DAY_OF_YEAR], tf.constant(0, tf.int64))
    has_location = has_location_tf(latitude, longitude, accuracy, custom_config["max_positional_accuracy_m"])
    safe = lambda value: tf.where(has_location, value, tf.zeros_like(value))  # noqa: E731
    leaf_taxon_id = tf.reshape(inputs[features.LEAF_TAXON_ID], [-1])
    tft.vocabulary(tf.strings.as_string(leaf_taxon_id), vocab_filename=LEAF_TAXA_VOCABULARY)
    return {
        features.LABEL: tf.reshape(inputs[features.LABEL], [-1]),
        features.LEAF_TAXON_ID: leaf_taxon_id,
        features.IMAGE_PIXELS: decode_and_resize(tf.reshape(inputs[features.IMAGE], [-1]),
                                                 int(custom_config["image_size"])),
        features.LOCATION_ENCODING: encode_location(safe(latitude), safe(longitude)),
        features.HAS_LOCATION: tf.cast(has_location, tf.float32),
        features.HAS_COORDINATES: tf.cast(has_location_tf(latitude, longitude), tf.float32),
        features.DATE_ENCODING: encode_date(day_of_year),
    }
