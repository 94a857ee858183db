"""Training locations from the Examples: only the small numeric features are read, never the photos.

A presence is one observation (not one photo: an observation's photos share its place) of a leaf at a place
that has a location by the one rule (inatvision/location.py, docs/data.md): coordinates finite and in range,
positional accuracy absent or at most the configured limit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from inatvision import features
from inatvision.components.example_files import read_shard
from inatvision.location import has_location

READ_BATCH = 4096
UNKNOWN = float("nan")

LOCATION_FEATURES = {
    features.LATITUDE: tf.io.FixedLenFeature([], tf.float32, default_value=UNKNOWN),
    features.LONGITUDE: tf.io.FixedLenFeature([], tf.float32, default_value=UNKNOWN),
    features.POSITIONAL_ACCURACY: tf.io.FixedLenFeature([], tf.float32, default_value=UNKNOWN),
    features.DAY_OF_YEAR: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    features.LABEL: tf.io.FixedLenFeature([], tf.int64),
    features.OBSERVATION_UUID: tf.io.FixedLenFeature([], tf.string),
}


@dataclass
class Locations:
    """One row per example (or per presence once selected); NaN marks an unknown value."""

    latitude: np.ndarray  # float32
    longitude: np.ndarray
    positional_accuracy: np.ndarray
    day_of_year: np.ndarray  # int64, 0 when unknown
    label: np.ndarray  # int64 leaf_class_id
    observation_key: np.ndarray  # int64 hash of the observation uuid

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, keep: np.ndarray) -> "Locations":
        return Locations(*(getattr(self, name)[keep] for name in self.__dataclass_fields__))


def read_locations(file_patterns: list[str]) -> Locations:
    """Every example's location features from the TFRecord shards."""
    files = tf.data.Dataset.list_files(file_patterns, shuffle=False)
    batches = (files.interleave(read_shard, num_parallel_calls=tf.data.AUTOTUNE)
               .batch(READ_BATCH)
               .map(lambda records: tf.io.parse_example(records, LOCATION_FEATURES),
                    num_parallel_calls=tf.data.AUTOTUNE)
               .map(_with_observation_key))
    columns: dict[str, list[np.ndarray]] = {}
    for batch in batches.as_numpy_iterator():
        for name, values in batch.items():
            columns.setdefault(name, []).append(values)
    empty = {name: np.zeros([0], np.float32 if spec.dtype == tf.float32 else np.int64)
             for name, spec in LOCATION_FEATURES.items()}
    merged = {name: np.concatenate(columns[name]) if name in columns else empty[name] for name in empty}
    return Locations(merged[features.LATITUDE], merged[features.LONGITUDE],
                     merged[features.POSITIONAL_ACCURACY], merged[features.DAY_OF_YEAR],
                     merged[features.LABEL], merged[features.OBSERVATION_UUID])


def _with_observation_key(parsed: dict) -> dict:
    """Replaces the uuid strings by int64 hashes, so millions of observations fit in memory."""
    key = tf.strings.to_hash_bucket_fast(parsed[features.OBSERVATION_UUID], 2 ** 62)
    return {**parsed, features.OBSERVATION_UUID: key}


def select_presences(locations: Locations, max_positional_accuracy_m: float) -> tuple[Locations, dict]:
    """Presences (first photo of each observation with usable coordinates) and counts for the summary."""
    located = has_location(locations.latitude, locations.longitude)
    usable = has_location(locations.latitude, locations.longitude, locations.positional_accuracy,
                          max_positional_accuracy_m)
    _, first = np.unique(locations.observation_key, return_index=True)
    first_photo = np.zeros(len(locations), bool)
    first_photo[first] = True
    counts = {
        "examples": len(locations),
        "without_location": int((~located).sum()),
        "excluded_by_accuracy": int((located & ~usable).sum()),
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
