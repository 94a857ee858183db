"""The exported SavedModel: encoded photos in, taxa out, with the Transform graph and the taxonomy inside.

Both signatures build raw features and apply the Transform graph's layer (the path the Trainer evaluated
on), then `classify` its `image`: `serving_examples` takes serialized tf.Examples (batch scoring),
`serving_default` encoded photos. `classify` (a function of the SavedModel, not a signature) takes the
transformed image, for ComposeServing, which applies the Transform graph once for both models.
"""
from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from inatvision import features
from inatvision.components.transform import raw_inputs
from inatvision.taxonomy import MODEL_TAXONOMY_FILE, read_taxonomy

KERAS_FILE = "keras/classifier.keras"  # the Keras model beside the SavedModel, for warm starts


class ClassifierServing(tf.Module):
    """Wraps the float32 classifier with the Transform layer and the leaf taxa it predicts."""

    def __init__(self, model: keras.Model, transform_output: tft.TFTransformOutput, taxon_ids: list[int],
                 names: list[str], image_size: int, top_k: int):
        super().__init__()
        self.model = model
        self.transform = transform_output.transform_features_layer()
        self.photo_spec = raw_inputs.feature_spec(transform_output, [features.IMAGE])
        self.top_k = min(top_k, len(taxon_ids))
        self.taxon_ids = tf.Variable(tf.constant(taxon_ids, tf.int64), trainable=False, name="taxon_ids")
        self.names = tf.Variable(tf.constant(names, tf.string), trainable=False, name="taxon_names")
        self.classify = tf.function(self._classify, input_signature=[
            tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name=features.IMAGE_PIXELS)])

    def _classify(self, images):
        probabilities = self.model(images, training=False)
        scores, classes = tf.math.top_k(probabilities, k=self.top_k)
        return {
            "probabilities": probabilities,
            "top_scores": scores,
            "top_class_ids": tf.cast(classes, tf.int64),
            "top_taxon_ids": tf.gather(self.taxon_ids, classes),
            "top_names": tf.gather(self.names, classes),
        }

    def _from_raw(self, raw: dict) -> dict:
        return self.classify(self.transform(raw)[features.IMAGE_PIXELS])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_photos(self, image_bytes):
        return self._from_raw(raw_inputs.photo_features(image_bytes))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        return self._from_raw(raw_inputs.parse_examples(examples, self.photo_spec))


def export_classifier(model: keras.Model, export_dir: str, taxonomy_path: str,
                      transform_output: tft.TFTransformOutput, image_size: int, top_k: int) -> None:
    """Writes the SavedModel with both signatures, its taxonomy.csv, and the Keras file for warm starts."""
    tree = read_taxonomy(taxonomy_path)
    module = ClassifierServing(model, transform_output, tree.leaf_taxon_ids, tree.leaf_names, image_size, top_k)
    tf.saved_model.save(module, export_dir, signatures={
        "serving_default": module.serve_photos,
        "serving_examples": module.serve_examples,
    })
    tf.io.gfile.makedirs(os.path.join(export_dir, "assets"))
    tf.io.gfile.copy(taxonomy_path, os.path.join(export_dir, MODEL_TAXONOMY_FILE), overwrite=True)
    keras_path = os.path.join(export_dir, KERAS_FILE)
    tf.io.gfile.makedirs(os.path.dirname(keras_path))
    model.save(keras_path)


def load_keras_classifier(export_dir: str) -> keras.Model:
    return keras.models.load_model(os.path.join(export_dir, KERAS_FILE), compile=False)
