"""Training locations from the Examples, through the Transform graph: only the small features are read.

A presence is one observation (not one photo: an observation's photos share its place) of a leaf at a place
that has a location by the Transform graph's `has_location` (the one rule, docs/data.md): coordinates
finite and in range, positional accuracy absent or at most the configured limit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from inatvision import features
from inatvision.components.example_files import read_shard
from inatvision.components.transform import raw_inputs

READ_BATCH = 4096
OBSERVATION_KEY = "observation_key"
COLUMNS = (features.LOCATION_ENCODING, features.DATE_ENCODING, features.HAS_LOCATION, features.HAS_COORDINATES,
           features.LABEL, OBSERVATION_KEY)
EMPTY_SHAPES = {features.LOCATION_ENCODING: [4], features.DATE_ENCODING: [2]}  # the others are [n]
EMPTY_TYPES = {features.LABEL: np.int64, OBSERVATION_KEY: np.int64}  # the others are float32


@dataclass
class Locations:
    """One row per example (or per presence once selected), as the Transform graph gives them."""

    location_encoding: np.ndarray  # float32 [n, 4]
    date_encoding: np.ndarray  # float32 [n, 2]
    has_location: np.ndarray  # bool [n]: usable by the one rule
    has_coordinates: np.ndarray  # bool [n]: the coordinates alone are usable
    label: np.ndarray  # int64 leaf_class_id
    observation_key: np.ndarray  # int64 hash of the observation uuid

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, keep: np.ndarray) -> "Locations":
        return Locations(*(getattr(self, name)[keep] for name in self.__dataclass_fields__))


def read_locations(file_patterns: list[str], transform_output: tft.TFTransformOutput) -> Locations:
    """Every example's transformed location features and label from the TFRecord shards (never the photos)."""
    spec = raw_inputs.feature_spec(transform_output, exclude=[features.IMAGE])
    transform = transform_output.transform_features_layer()

    def transformed(records):
        raw = raw_inputs.parse_examples(records, spec)
        outputs = transform(raw)
        key = tf.strings.to_hash_bucket_fast(tf.reshape(raw[features.OBSERVATION_UUID], [-1]), 2 ** 62)
        return {name: outputs[name] for name in COLUMNS[:-1]} | {OBSERVATION_KEY: key}

    files = tf.data.Dataset.list_files(file_patterns, shuffle=False)
    batches = (files.interleave(read_shard, num_parallel_calls=tf.data.AUTOTUNE)
               .batch(READ_BATCH)
               .map(transformed, num_parallel_calls=tf.data.AUTOTUNE))
    columns: dict[str, list[np.ndarray]] = {name: [] for name in COLUMNS}
    for batch in batches.as_numpy_iterator():
        for name, values in batch.items():
            columns[name].append(values)
    merged = {name: np.concatenate(values) if values else
              np.zeros([0] + EMPTY_SHAPES.get(name, []), EMPTY_TYPES.get(name, np.float32))
              for name, values in columns.items()}
    return Locations(merged[features.LOCATION_ENCODING], merged[features.DATE_ENCODING],
                     merged[features.HAS_LOCATION] > 0.5, merged[features.HAS_COORDINATES] > 0.5,
                     merged[features.LABEL], merged[OBSERVATION_KEY])


def select_presences(locations: Locations) -> tuple[Locations, dict]:
    """Presences (first photo of each observation with a usable location) and counts for the summary."""
    _, first = np.unique(locations.observation_key, return_index=True)
    first_photo = np.zeros(len(locations), bool)
    first_photo[first] = True
    usable = locations.has_location
    counts = {
        "examples": len(locations),
        "without_location": int((~locations.has_coordinates).sum()),
        "excluded_by_accuracy": int((locations.has_coordinates & ~usable).sum()),
        "repeated_photos_of_an_observation": int((usable & ~first_photo).sum()),
        "presences": int((usable & first_photo).sum()),
    }
    return locations.subset(usable & first_photo), counts


def presence_thresholds(own_scores: np.ndarray, labels: np.ndarray, num_classes: int,
                        percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """Per leaf: the `percentile` of its geo score at its own presences, and its presence count.

    A leaf without presences gets threshold 0: nothing is known about its range, so it is never
    reported as unexpected (the served geo scores treat it as present everywhere, see export).
    """
    thresholds = np.zeros(num_classes, np.float32)
    counts = np.bincount(labels, minlength=num_classes)
    for leaf in np.flatnonzero(counts):
        thresholds[leaf] = np.percentile(own_scores[labels == leaf], percentile)
    return thresholds, counts


def ranking_metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    """Geo-only ranking of the true leaf at held-out presences: mean average precision (one positive per
    presence, so 1/rank) and top-1."""
    if len(labels) == 0:
        return {"presences": 0, "mean_average_precision": None, "top1": None}
    true_scores = scores[np.arange(len(labels)), labels]
    ranks = 1 + (scores > true_scores[:, None]).sum(axis=1)
    return {"presences": int(len(labels)), "mean_average_precision": float(np.mean(1.0 / ranks)),
            "top1": float(np.mean(ranks == 1))}
