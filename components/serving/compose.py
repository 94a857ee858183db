"""ComposeServing: the release's `serving/` SavedModel, the vision classifier with the location prior.

It runs after both Trainers. It applies the Transform graph's layer once to the raw inputs and calls the
Trainers' SavedModels' own functions on its features (loaded with `tf.saved_model.load`, so what is served is
what each Trainer exported: the vision model's `classify`, the geo model's `score`), then combines them with
`components.geo_prior.scoring`, the library the CLI and the tests use too:

- `serving_default(image_bytes, latitude, longitude, day_of_year)`: NaN latitude or longitude (or a value out
  of range) means no location; day 0 means an unknown date. There is no accuracy input: it counts as absent.
- `serving_examples(examples)`: serialized tf.Examples; the photo and `latitude`, `longitude`,
  `positional_accuracy`, `day_of_year` are read from them (absent: unknown). TFMA evaluates this signature.

Whether an input has a location is the Transform graph's `has_location` (the one rule of inatvision/location.py,
docs/data.md, with the run's `geo.max_positional_accuracy_m`); the `has_location` output (bool [b]) says what
the model decided.

Both return `probabilities` (combined: `vision x max(geo, min_score)`, renormalized; the vision scores where
there is no location), `vision_probabilities`, `top_scores`, `top_class_ids`, `top_taxon_ids`, `top_names`
(of the combined scores), `vision_top_taxon_ids`, `nearby` (bool [b, k]: the suggestion's geo score reaches
its threshold from thresholds.csv; False without a location or prior), and the common ancestor of the combined
scores (`common_ancestor_taxon_id` -1, `common_ancestor_name` "" and `common_ancestor_score` 0 where none).

Without a geo model (geo disabled, or the geo Trainer wrote the NO_LOCATIONS marker because no training
example had usable coordinates) the model is vision-only: same signatures, the vision scores, `nearby` False.
The artifact's custom property `geo` says which (`trained`, `none`, `disabled`), and so does
`assets/serving_info.json` inside the model. With a prior the model keeps the geo SavedModel as its `geo`
attribute and the prior's thresholds as `assets/thresholds.csv`; the release gate draws its report's map
from them.
"""
import logging
import os
from typing import Optional

import tensorflow as tf
import tensorflow_transform as tft
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Model, TransformGraph
from tfx.utils import path_utils

from inatvision import features
from inatvision.artifacts import Taxonomy
from inatvision.components.geo_prior import export as geo_export, scoring
from inatvision.components.serving.info import GEO_DISABLED, GEO_NONE, GEO_TRAINED, write_serving_info
from inatvision.taxonomy import MODEL_TAXONOMY_FILE, TAXONOMY_FILE, TaxonTree, read_taxonomy
from inatvision.components.transform import raw_inputs
from inatvision.config import GeoConfig, resolve_config

THRESHOLDS_ASSET = "assets/thresholds.csv"
DEFAULT_TOP_K = 10
MAX_POSITIONAL_ACCURACY_M = GeoConfig.model_fields["max_positional_accuracy_m"].default

PHOTO_SIGNATURE = [tf.TensorSpec([None], tf.string, name="image_bytes"),
                   tf.TensorSpec([None], tf.float32, name="latitude"),
                   tf.TensorSpec([None], tf.float32, name="longitude"),
                   tf.TensorSpec([None], tf.int64, name="day_of_year")]
EXAMPLES_SIGNATURE = [tf.TensorSpec([None], tf.string, name="examples")]
OUTPUT_KEYS = ("probabilities", "vision_probabilities", "top_scores", "top_class_ids", "top_taxon_ids", "top_names",
               "vision_top_taxon_ids", "nearby", "common_ancestor_taxon_id", "common_ancestor_name",
               "common_ancestor_score", "has_location")


class ComposedServing(tf.Module):
    """Applies the Transform layer, calls the loaded vision (and geo) SavedModels, combines with `scoring`."""

    def __init__(self, vision, geo, thresholds, transform_output: tft.TFTransformOutput, tree: TaxonTree,
                 leaf_taxon_ids: list[int], leaf_names: list[str], top_k: int, min_score: float):
        super().__init__()
        self.vision = vision
        self.geo = geo
        self.transform = transform_output.transform_features_layer()
        self.serving_spec = raw_inputs.feature_spec(transform_output, raw_inputs.SERVING_FEATURES)
        self.tree = tree
        self.top_k = min(top_k, len(leaf_taxon_ids))
        self.min_score = float(min_score)
        self.taxon_ids = tf.Variable(tf.constant(leaf_taxon_ids, tf.int64), trainable=False, name="taxon_ids")
        self.names = tf.Variable(tf.constant(leaf_names, tf.string), trainable=False, name="taxon_names")
        self.node_taxon_ids = tf.Variable(tf.constant(tree.taxon_ids, tf.int64), trainable=False,
                                          name="node_taxon_ids")
        self.node_names = tf.Variable(tf.constant(tree.names, tf.string), trainable=False, name="node_names")
        self.thresholds = None
        if geo is not None:
            self.thresholds = tf.Variable(tf.constant(thresholds, tf.float32), trainable=False, name="thresholds")

    def _outputs(self, raw: dict) -> dict:
        transformed = self.transform(raw)
        vision_outputs = self.vision.classify(transformed[features.IMAGE_PIXELS])
        vision_probabilities = tf.cast(vision_outputs["probabilities"], tf.float32)
        located = transformed[features.HAS_LOCATION] > 0.5
        if self.geo is None:
            combined = vision_probabilities
            nearby_all = tf.zeros_like(vision_probabilities, tf.bool)
        else:
            geo_scores = self.geo.score(transformed[features.LOCATION_ENCODING],
                                        transformed[features.DATE_ENCODING])["geo_scores"]
            combined = scoring.combine(vision_probabilities, geo_scores, located, self.min_score)
            nearby_all = scoring.expected_nearby(geo_scores, self.thresholds) & located[:, None]
        scores, classes = tf.math.top_k(combined, k=self.top_k)
        ancestor = scoring.common_ancestor(combined, self.tree)
        found = ancestor.taxon_id != scoring.NO_TAXON
        node = tf.argmax(tf.cast(tf.equal(self.node_taxon_ids[None, :], ancestor.taxon_id[:, None]), tf.int32),
                         axis=1)
        return {
            "probabilities": combined,
            "vision_probabilities": vision_probabilities,
            "top_scores": scores,
            "top_class_ids": tf.cast(classes, tf.int64),
            "top_taxon_ids": tf.gather(self.taxon_ids, classes),
            "top_names": tf.gather(self.names, classes),
            "vision_top_taxon_ids": tf.cast(vision_outputs["top_taxon_ids"], tf.int64),
            "nearby": tf.gather(nearby_all, classes, batch_dims=1),
            "common_ancestor_taxon_id": ancestor.taxon_id,
            "common_ancestor_name": tf.where(found, tf.gather(self.node_names, node), ""),
            "common_ancestor_score": ancestor.score,
            "has_location": located,
        }

    @tf.function(input_signature=PHOTO_SIGNATURE)
    def serve_photos(self, image_bytes, latitude, longitude, day_of_year):
        return self._outputs({**raw_inputs.photo_features(image_bytes),
                              **raw_inputs.location_features(latitude, longitude, day_of_year)})

    @tf.function(input_signature=EXAMPLES_SIGNATURE)
    def serve_examples(self, examples):
        return self._outputs(raw_inputs.parse_examples(examples, self.serving_spec))


def geo_status(geo_dir: Optional[str]) -> tuple[str, str]:
    """(`trained` | `none` | `disabled`, a sentence saying why) for a geo Trainer's serving folder."""
    if not geo_dir:
        return GEO_DISABLED, "The location prior is disabled (geo.enabled=false): the release is vision-only."
    marker = os.path.join(geo_dir, geo_export.NO_LOCATIONS_FILE)
    if tf.io.gfile.exists(marker):
        with tf.io.gfile.GFile(marker) as f:
            reason = f.read().strip()
        return GEO_NONE, f"{reason} The release is vision-only."
    return GEO_TRAINED, "Vision scores are combined with the location prior where a location is given."


def _vision_top_k(vision, num_classes: int) -> int:
    try:
        return int(vision.signatures["serving_default"].structured_outputs["top_scores"].shape[-1])
    except (KeyError, TypeError, AttributeError):
        return min(DEFAULT_TOP_K, num_classes)


def compose_serving(vision_dir: str, geo_dir: Optional[str], taxonomy_path: str, transform_graph_dir: str,
                    export_dir: str, min_score: float = scoring.MIN_GEO_SCORE,
                    max_positional_accuracy_m: float = MAX_POSITIONAL_ACCURACY_M) -> dict:
    """Writes the composed SavedModel to `export_dir`; returns what `assets/serving_info.json` holds.

    `geo_dir`: the geo Trainer's serving folder (a model, or the NO_LOCATIONS marker), None when disabled.
    `transform_graph_dir`: the Transform graph the Trainers read through; `max_positional_accuracy_m` is the
    limit it was built with (for serving_info.json).
    """
    status, explanation = geo_status(geo_dir)
    if status != GEO_TRAINED:
        logging.warning("ComposeServing: %s", explanation)
    tree = read_taxonomy(taxonomy_path)
    taxon_ids, names = tree.leaf_taxon_ids, tree.leaf_names
    vision = tf.saved_model.load(vision_dir)
    geo, thresholds = None, None
    if status == GEO_TRAINED:
        thresholds_path = os.path.join(geo_dir, geo_export.THRESHOLDS_FILE)
        geo_taxa = [int(row["taxon_id"]) for row in geo_export.read_threshold_rows(thresholds_path)]
        if geo_taxa != taxon_ids:
            raise ValueError(f"{thresholds_path}: the geo model's leaves ({len(geo_taxa)}) are not the vision "
                             f"model's leaves ({len(taxon_ids)}) in leaf_class_id order")
        thresholds = geo_export.read_thresholds(thresholds_path)
        geo = tf.saved_model.load(geo_dir)
    top_k = _vision_top_k(vision, len(taxon_ids))
    module = ComposedServing(vision, geo, thresholds, tft.TFTransformOutput(transform_graph_dir), tree, taxon_ids,
                             names, top_k, min_score)
    tf.saved_model.save(module, export_dir, signatures={
        "serving_default": module.serve_photos,
        "serving_examples": module.serve_examples,
    })
    tf.io.gfile.makedirs(os.path.join(export_dir, "assets"))
    tf.io.gfile.copy(taxonomy_path, os.path.join(export_dir, MODEL_TAXONOMY_FILE), overwrite=True)
    info = {"geo": status, "explanation": explanation, "min_score": float(min_score), "top_k": module.top_k,
            "num_classes": tree.num_classes, "max_positional_accuracy_m": float(max_positional_accuracy_m)}
    if status == GEO_TRAINED:
        tf.io.gfile.copy(os.path.join(geo_dir, geo_export.THRESHOLDS_FILE), os.path.join(export_dir, THRESHOLDS_ASSET),
                         overwrite=True)
    write_serving_info(export_dir, info)
    return info


@component
def ComposeServing(vision_model: InputArtifact[Model], taxonomy: InputArtifact[Taxonomy],  # noqa: N802
                   transform_graph: InputArtifact[TransformGraph], config_json: Parameter[str],
                   config_overrides: Parameter[str],
                   model: OutputArtifact[Model], geo_model: InputArtifact[Model] = None) -> None:
    """The composed serving model in `<model>/Format-Serving`; custom properties `geo` and `geo_explanation`.

    `geo_model` is absent when the pipeline was built with geo.enabled=false; a submission-time
    `geo.enabled=false` also gives a vision-only model.
    """
    config = resolve_config(config_json, config_overrides)
    geo_dir = None
    if geo_model is not None and config.geo.enabled:
        geo_dir = path_utils.serving_model_path(geo_model.uri)
    info = compose_serving(path_utils.serving_model_path(vision_model.uri), geo_dir,
                           os.path.join(taxonomy.uri, TAXONOMY_FILE), transform_graph.uri,
                           path_utils.serving_model_path(model.uri),
                           config.geo.min_score, max_positional_accuracy_m=config.geo.max_positional_accuracy_m)
    model.set_string_custom_property("geo", info["geo"])
    model.set_string_custom_property("geo_explanation", info["explanation"])
