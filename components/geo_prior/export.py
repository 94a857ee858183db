"""The exported geo prior: a SavedModel from coordinates to per-leaf scores, `thresholds.csv` beside it.

Its signatures build raw features and apply the Transform graph's layer (as the GeoTrainer read its
presences): `serving_default(latitude, longitude, day_of_year)` and `serving_examples(examples)` return
`geo_scores` and the graph's `has_location`. `score(location_encoding, date_encoding)` (a function, not a
signature) takes transformed features, for ComposeServing.

Leaves without training presences are served a geo score of 1 (present everywhere): the model has only seen
them as negatives, and without this their vision scores would be floored to `min_score` wherever a
location is given.
"""
from __future__ import annotations

import csv
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from inatvision import features
from inatvision.components.geo_prior.encoding import DATE_SIZE, LOCATION_SIZE, network_input
from inatvision.components.transform import raw_inputs
from inatvision.taxonomy import MODEL_TAXONOMY_FILE

THRESHOLDS_FILE = "thresholds.csv"
NO_LOCATIONS_FILE = "NO_LOCATIONS"
THRESHOLD_COLUMNS = ["leaf_class_id", "taxon_id", "threshold", "presences"]
SERVING_SIGNATURE = [tf.TensorSpec([None], tf.float32, name="latitude"),
                     tf.TensorSpec([None], tf.float32, name="longitude"),
                     tf.TensorSpec([None], tf.int64, name="day_of_year")]


def serving_module(network: keras.Model, transform_output: tft.TFTransformOutput, has_presences: np.ndarray,
                   use_date: bool) -> tf.Module:
    """The network behind the Transform layer: raw locations in, per-leaf geo scores out.

    The module tracks the network's variables, not the Keras model: saving a Keras model traces every
    layer through autograph, which converts tf_keras itself (about a minute on a CPU).
    """
    module = tf.Module()
    module.network_variables = list(network.variables)
    module.transform = transform_output.transform_features_layer()
    module.has_presences = tf.Variable(tf.constant(has_presences, tf.bool), trainable=False, name="has_presences")
    spec = raw_inputs.feature_spec(transform_output, raw_inputs.LOCATION_FEATURES)

    @tf.function(input_signature=[tf.TensorSpec([None, LOCATION_SIZE], tf.float32, name=features.LOCATION_ENCODING),
                                  tf.TensorSpec([None, DATE_SIZE], tf.float32, name=features.DATE_ENCODING)],
                 autograph=False)
    def score(location_encoding, date_encoding):
        logits = network(network_input(location_encoding, date_encoding, use_date), training=False)
        return {"geo_scores": tf.where(module.has_presences[None, :], tf.sigmoid(logits), 1.0)}

    def from_raw(raw):
        transformed = module.transform(raw)
        return {**score(transformed[features.LOCATION_ENCODING], transformed[features.DATE_ENCODING]),
                features.HAS_LOCATION: transformed[features.HAS_LOCATION] > 0.5}

    @tf.function(input_signature=SERVING_SIGNATURE, autograph=False)
    def serve(latitude, longitude, day_of_year):
        return from_raw(raw_inputs.location_features(latitude, longitude, day_of_year))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False)
    def serve_examples(examples):
        return from_raw(raw_inputs.parse_examples(examples, spec))

    module.score, module.serve, module.serve_examples = score, serve, serve_examples
    return module


def export_geo_prior(network: keras.Model, export_dir: str, taxonomy_path: str,
                     transform_output: tft.TFTransformOutput, taxon_ids: list[int], thresholds: np.ndarray,
                     presences: np.ndarray, use_date: bool) -> None:
    """Writes the SavedModel (`serving_default`, `serving_examples`), its assets/taxonomy.csv and thresholds.csv."""
    module = serving_module(network, transform_output, presences > 0, use_date)
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve,
                                                        "serving_examples": module.serve_examples})
    tf.io.gfile.makedirs(os.path.join(export_dir, "assets"))
    tf.io.gfile.copy(taxonomy_path, os.path.join(export_dir, MODEL_TAXONOMY_FILE), overwrite=True)
    write_thresholds(os.path.join(export_dir, THRESHOLDS_FILE), taxon_ids, thresholds, presences)


def write_thresholds(path: str, taxon_ids: list[int], thresholds: np.ndarray, presences: np.ndarray) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(THRESHOLD_COLUMNS)
        for leaf, taxon in enumerate(taxon_ids):
            writer.writerow([leaf, taxon, f"{thresholds[leaf]:.9g}", int(presences[leaf])])


def read_threshold_rows(path: str) -> list[dict[str, str]]:
    """The rows of thresholds.csv as text, in leaf_class_id order."""
    with tf.io.gfile.GFile(path) as f:
        return sorted(csv.DictReader(f), key=lambda row: int(row["leaf_class_id"]))


def read_thresholds(path: str) -> np.ndarray:
    """Thresholds [C] float32 in leaf_class_id order, for `scoring.expected_nearby`."""
    return np.array([float(row["threshold"]) for row in read_threshold_rows(path)], np.float32)


def write_no_locations_marker(export_dir: str, explanation: str) -> None:
    """Marks a geo export without a model: the release is vision-only."""
    tf.io.gfile.makedirs(export_dir)
    with tf.io.gfile.GFile(os.path.join(export_dir, NO_LOCATIONS_FILE), "w") as f:
        f.write(explanation + "\n")
