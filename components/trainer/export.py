"""The exported SavedModel: encoded photos in, taxa out, with the taxonomy baked in.

Both signatures call `eval_images`, the evaluation path of training, so what is
served is what was evaluated. `serving_examples` takes serialized tf.Examples
(TFMA and batch scoring); `serving_default` takes encoded photos.
"""
from __future__ import annotations

import os

import tensorflow as tf
import tf_keras as keras

from inatvision import features
from inatvision.taxonomy import MODEL_TAXONOMY_FILE, read_taxonomy
from inatvision.components.trainer.image_preprocessing import eval_images

KERAS_FILE = "keras/classifier.keras"  # the Keras model beside the SavedModel, for warm starts


class ClassifierServing(tf.Module):
    """Wraps the float32 classifier with preprocessing and the leaf taxa it predicts."""

    def __init__(self, model: keras.Model, taxon_ids: list[int], names: list[str], image_size: int, top_k: int):
        super().__init__()
        self.model = model
        self.image_size = image_size
        self.top_k = min(top_k, len(taxon_ids))
        self.taxon_ids = tf.Variable(tf.constant(taxon_ids, tf.int64), trainable=False, name="taxon_ids")
        self.names = tf.Variable(tf.constant(names, tf.string), trainable=False, name="taxon_names")

    def _outputs(self, image_bytes):
        probabilities = self.model(eval_images(image_bytes, self.image_size), training=False)
        scores, classes = tf.math.top_k(probabilities, k=self.top_k)
        return {
            "probabilities": probabilities,
            "top_scores": scores,
            "top_class_ids": tf.cast(classes, tf.int64),
            "top_taxon_ids": tf.gather(self.taxon_ids, classes),
            "top_names": tf.gather(self.names, classes),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_photos(self, image_bytes):
        return self._outputs(image_bytes)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        parsed = tf.io.parse_example(examples, {features.IMAGE: tf.io.FixedLenFeature([], tf.string)})
        return self._outputs(parsed[features.IMAGE])


def export_classifier(model: keras.Model, export_dir: str, taxonomy_path: str, image_size: int,
                      top_k: int) -> None:
    """Writes the SavedModel with both signatures, its taxonomy.csv, and the Keras file for warm starts."""
    tree = read_taxonomy(taxonomy_path)
    module = ClassifierServing(model, tree.leaf_taxon_ids, tree.leaf_names, image_size, top_k)
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
