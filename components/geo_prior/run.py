"""The geo Trainer's `run_fn`: the location prior trained on the train split's presences, exported for serving.

Same `fn_args` as the vision Trainer (custom_config holds "config" JSON and "taxonomy_path"); the locations come
through the Transform graph (`fn_args.transform_graph_path`). Without any
usable coordinates it writes a NO_LOCATIONS marker instead of a model and the release stays vision-only.
"""
from __future__ import annotations

import json
import logging
import math
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from inatvision import features
from inatvision.components.geo_prior import export, presences as presence_data
from inatvision.components.keras_progress import EpochProgress
from inatvision.components.transform import raw_inputs
from inatvision.components.geo_prior.encoding import network_input
from inatvision.components.geo_prior.model import build_presence_model
from inatvision.taxonomy import read_taxonomy
from inatvision.config import Config, GeoConfig

SUMMARY_FILE = "geo_summary.json"


def run_fn(fn_args) -> None:
    """Trains the geo prior, sets per-leaf thresholds, exports it (or the NO_LOCATIONS marker)."""
    custom = fn_args.custom_config
    config = Config.from_json(custom["config"])
    geo = config.geo
    tree = read_taxonomy(custom["taxonomy_path"])
    taxon_ids, num_classes = tree.leaf_taxon_ids, tree.num_classes
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train, counts = presence_data.select_presences(presence_data.read_locations(fn_args.train_files, transform_output))
    summary = {"train": counts, "max_positional_accuracy_m": geo.max_positional_accuracy_m,
               "num_classes": num_classes}
    if len(train) == 0:
        explanation = (f"No training example has coordinates with positional accuracy <= "
                       f"{geo.max_positional_accuracy_m} m ({counts}); no geo prior was trained.")
        logging.warning("%s The release will be vision-only.", explanation)
        export.write_no_locations_marker(fn_args.serving_model_dir, explanation)
        summary["status"] = "no_locations"
        _write_summary(fn_args.model_run_dir, summary)
        return

    keras.utils.set_random_seed(config.export.seed)  # initialization, shuffling and background draws
    model, history = _train(train, num_classes, geo, _location_encoder(transform_output))
    own_scores = _scores(model, train, geo)[np.arange(len(train)), train.label]
    thresholds, presence_counts = presence_data.presence_thresholds(
        own_scores, train.label, num_classes, geo.threshold_percentile)
    evaluation, eval_counts = presence_data.select_presences(
        presence_data.read_locations(fn_args.eval_files, transform_output))
    export.export_geo_prior(model.network, fn_args.serving_model_dir, custom["taxonomy_path"], transform_output,
                            taxon_ids, thresholds, presence_counts, geo.use_date)
    summary.update(
        status="trained", eval=eval_counts, epochs=geo.epochs, final_loss=history[-1] if history else None,
        positive_weight=geo.effective_positive_weight(num_classes),
        leaves_with_presences=int((presence_counts > 0).sum()),
        leaves_without_presences=[taxon for taxon, n in zip(taxon_ids, presence_counts) if n == 0],
        eval_metrics=presence_data.ranking_metrics(_scores(model, evaluation, geo), evaluation.label))
    _write_summary(fn_args.model_run_dir, summary)


def _inputs(locations: presence_data.Locations, geo: GeoConfig) -> tf.Tensor:
    return network_input(locations.location_encoding, locations.date_encoding, geo.use_date)


def _location_encoder(transform_output: tft.TFTransformOutput):
    """(latitude, longitude) -> the Transform graph's location encoding, for the background locations."""
    transform = transform_output.transform_features_layer()

    def encode(latitude, longitude):
        raw = raw_inputs.location_features(latitude, longitude, tf.zeros_like(latitude, tf.int64))
        return transform(raw)[features.LOCATION_ENCODING]

    return encode


def _train(train: presence_data.Locations, num_classes: int, geo: GeoConfig, encode_locations):
    """`geo.epochs` shuffled passes over the presences; returns the model and the loss per epoch."""
    dataset = (tf.data.Dataset.from_tensor_slices((_inputs(train, geo), train.label))
               .shuffle(len(train), reshuffle_each_iteration=True)
               .batch(geo.batch_size)
               .prefetch(tf.data.AUTOTUNE))
    model = build_presence_model(num_classes, geo, encode_locations)
    if geo.epochs == 0:
        return model, []
    logging.info("Geo prior: %d presences, %d steps per epoch", len(train), math.ceil(len(train) / geo.batch_size))
    history = model.fit(dataset, epochs=geo.epochs, verbose=0,
                        callbacks=[EpochProgress("GeoTrainer", geo.epochs, every=math.ceil(geo.epochs / 4),
                                                 metrics=("loss",))])
    return model, [float(loss) for loss in history.history["loss"]]


def _scores(model, locations: presence_data.Locations, geo: GeoConfig) -> np.ndarray:
    """Per-leaf geo scores [n, C] at the locations, inference mode."""
    batches = tf.data.Dataset.from_tensor_slices(_inputs(locations, geo)).batch(geo.batch_size)
    scores = [model(batch, training=False).numpy() for batch in batches]  # eager: no tracing
    return np.concatenate(scores) if scores else np.zeros([0, model.network.output_shape[-1]], np.float32)


def _write_summary(model_run_dir: str, summary: dict) -> None:
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)
