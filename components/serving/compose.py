"""ComposeServing: the release's `serving/` SavedModel, the vision classifier with the location prior.

It runs after both Trainers and calls their SavedModels' own functions (loaded with `tf.saved_model.load`, so
what is served is what each Trainer exported), then combines them with `components.geo_prior.scoring`, the
library the CLI and the tests use too:

- `serving_default(image_bytes, latitude, longitude, day_of_year)`: NaN latitude or longitude (or a value out
  of range) means no location; day 0 means an unknown date.
- `serving_examples(examples)`: serialized tf.Examples; the photo and `latitude`, `longitude`, `day_of_year`
  are read from them (absent: no location). TFMA evaluates this signature.

Both return `probabilities` (combined: `vision x max(geo, min_score)`, renormalized; the vision scores where
there is no location), `vision_probabilities`, `top_scores`, `top_class_ids`, `top_taxon_ids`, `top_names`
(of the combined scores), `vision_top_taxon_ids`, `nearby` (bool [b, k]: the suggestion's geo score reaches
its threshold from thresholds.csv; False without a location or prior), and the common ancestor of the combined
scores (`common_ancestor_taxon_id` -1, `common_ancestor_name` "" and `common_ancestor_score` 0 where none).

Without a geo model (geo disabled, or the geo Trainer wrote the NO_LOCATIONS marker because no training
example had usable coordinates) the model is vision-only: same signatures, the vision scores, `nearby` False.
The artifact's custom property `geo` says which (`trained`, `none`, `disabled`), and so does
`assets/serving_info.json` inside the model.
"""
import json
import logging
import os
from typing import Optional

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Model
from tfx.utils import path_utils

from inatvision import features
from inatvision.artifacts import Taxonomy
from inatvision.components.geo_prior import export as geo_export, scoring
from inatvision.components.serving import geo_map
from inatvision.components.serving.info import GEO_DISABLED, GEO_NONE, GEO_TRAINED, write_serving_info
from inatvision.taxonomy import leaf_taxa, read_rows
from inatvision.components.trainer.export import TAXONOMY_FILE
from inatvision.config import resolve_config

THRESHOLDS_ASSET = "assets/thresholds.csv"
GEO_MAP_FILE = "geo_map.png"  # beside Format-Serving in the artifact, not inside the model
GEO_MAP_INFO_FILE = "geo_map.json"
DEFAULT_TOP_K = 10

PHOTO_SIGNATURE = [tf.TensorSpec([None], tf.string, name="image_bytes"),
                   tf.TensorSpec([None], tf.float32, name="latitude"),
                   tf.TensorSpec([None], tf.float32, name="longitude"),
                   tf.TensorSpec([None], tf.int64, name="day_of_year")]
EXAMPLES_SIGNATURE = [tf.TensorSpec([None], tf.string, name="examples")]
LOCATION_FEATURES = {
    features.LATITUDE: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")),
    features.LONGITUDE: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")),
    features.DAY_OF_YEAR: tf.io.FixedLenFeature([], tf.int64, default_value=0),
}
OUTPUT_KEYS = ("probabilities", "vision_probabilities", "top_scores", "top_class_ids", "top_taxon_ids", "top_names",
               "vision_top_taxon_ids", "nearby", "common_ancestor_taxon_id", "common_ancestor_name",
               "common_ancestor_score")


def has_location(latitude, longitude) -> tf.Tensor:
    """bool [b]: both coordinates known and in range (NaN and infinities compare false)."""
    latitude, longitude = tf.cast(latitude, tf.float32), tf.cast(longitude, tf.float32)
    return (tf.abs(latitude) <= 90.0) & (tf.abs(longitude) <= 180.0)


class ComposedServing(tf.Module):
    """Calls the loaded vision (and geo) SavedModels and combines their scores with `scoring`."""

    def __init__(self, vision, geo, thresholds, tree: scoring.TaxonTree, leaf_taxon_ids: list[int],
                 leaf_names: list[str], top_k: int, min_score: float):
        super().__init__()
        self.vision = vision
        self.geo = geo
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

    def _outputs(self, vision_outputs, latitude, longitude, day_of_year):
        vision_probabilities = tf.cast(vision_outputs["probabilities"], tf.float32)
        located = has_location(latitude, longitude)
        if self.geo is None:
            combined = vision_probabilities
            nearby_all = tf.zeros_like(vision_probabilities, tf.bool)
        else:
            zero = tf.zeros_like(latitude)  # no NaN reaches the geo network
            geo_scores = self.geo.serve(tf.where(located, latitude, zero), tf.where(located, longitude, zero),
                                        day_of_year)["geo_scores"]
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
        }

    @tf.function(input_signature=PHOTO_SIGNATURE)
    def serve_photos(self, image_bytes, latitude, longitude, day_of_year):
        return self._outputs(self.vision.serve_photos(image_bytes), latitude, longitude, day_of_year)

    @tf.function(input_signature=EXAMPLES_SIGNATURE)
    def serve_examples(self, examples):
        parsed = tf.io.parse_example(examples, LOCATION_FEATURES)
        return self._outputs(self.vision.serve_examples(examples), parsed[features.LATITUDE],
                             parsed[features.LONGITUDE], parsed[features.DAY_OF_YEAR])


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


def compose_serving(vision_dir: str, geo_dir: Optional[str], taxonomy_path: str, export_dir: str,
                    min_score: float = scoring.MIN_GEO_SCORE, map_dir: Optional[str] = None) -> dict:
    """Writes the composed SavedModel to `export_dir`; returns what `assets/serving_info.json` holds.

    `geo_dir`: the geo Trainer's serving folder (a model, or the NO_LOCATIONS marker), None when disabled.
    `map_dir`: where to write `geo_map.png` and `geo_map.json` (one taxon's geo scores), when there is a prior.
    """
    status, explanation = geo_status(geo_dir)
    if status != GEO_TRAINED:
        logging.warning("ComposeServing: %s", explanation)
    taxon_ids, names = leaf_taxa(taxonomy_path)
    tree = scoring.TaxonTree.from_rows(read_rows(taxonomy_path))
    vision = tf.saved_model.load(vision_dir)
    geo, thresholds = None, None
    if status == GEO_TRAINED:
        thresholds_path = os.path.join(geo_dir, geo_export.THRESHOLDS_FILE)
        geo_taxa = [int(row["taxon_id"]) for row in sorted(read_rows(thresholds_path),
                                                           key=lambda row: int(row["leaf_class_id"]))]
        if geo_taxa != taxon_ids:
            raise ValueError(f"{thresholds_path}: the geo model's leaves ({len(geo_taxa)}) are not the vision "
                             f"model's leaves ({len(taxon_ids)}) in leaf_class_id order")
        thresholds = geo_export.read_thresholds(thresholds_path)
        geo = tf.saved_model.load(geo_dir)
    top_k = _vision_top_k(vision, len(taxon_ids))
    module = ComposedServing(vision, geo, thresholds, tree, taxon_ids, names, top_k, min_score)
    tf.saved_model.save(module, export_dir, signatures={
        "serving_default": module.serve_photos,
        "serving_examples": module.serve_examples,
    })
    tf.io.gfile.makedirs(os.path.join(export_dir, "assets"))
    tf.io.gfile.copy(taxonomy_path, os.path.join(export_dir, TAXONOMY_FILE), overwrite=True)
    info = {"geo": status, "explanation": explanation, "min_score": float(min_score), "top_k": module.top_k,
            "num_classes": len(taxon_ids)}
    if status == GEO_TRAINED:
        tf.io.gfile.copy(os.path.join(geo_dir, geo_export.THRESHOLDS_FILE), os.path.join(export_dir, THRESHOLDS_ASSET),
                         overwrite=True)
        if map_dir:
            info["map"] = _write_geo_map(geo, os.path.join(geo_dir, geo_export.THRESHOLDS_FILE),
                                         dict(zip(taxon_ids, names)), map_dir)
    write_serving_info(export_dir, info)
    return info


def _write_geo_map(geo, thresholds_path: str, names: dict[int, str], map_dir: str) -> Optional[dict]:
    taxon = geo_map.most_observed_taxon(thresholds_path, names)
    if taxon is None:
        return None
    png = geo_map.taxon_map_png(geo.serve, taxon)
    tf.io.gfile.makedirs(map_dir)
    with tf.io.gfile.GFile(os.path.join(map_dir, GEO_MAP_FILE), "wb") as f:
        f.write(png)
    description = {"taxon_id": taxon.taxon_id, "name": taxon.name, "presences": taxon.presences,
                   "threshold": taxon.threshold, "caption": taxon.caption()}
    with tf.io.gfile.GFile(os.path.join(map_dir, GEO_MAP_INFO_FILE), "w") as f:
        json.dump(description, f, indent=2)
    return description


@component
def ComposeServing(vision_model: InputArtifact[Model], taxonomy: InputArtifact[Taxonomy],  # noqa: N802
                   config_json: Parameter[str], config_overrides: Parameter[str],
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
                           os.path.join(taxonomy.uri, "taxonomy.csv"), path_utils.serving_model_path(model.uri),
                           config.geo.min_score, map_dir=model.uri)
    model.set_string_custom_property("geo", info["geo"])
    model.set_string_custom_property("geo_explanation", info["explanation"])
