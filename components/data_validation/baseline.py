"""The previous release's statistics: the Pusher stores the run's train-split statistics in the release,
PreviousRelease hands them on as an ExampleStatistics artifact (train split), the gate compares against it.

A release without `statistics/` (the first, or one pushed before this existed) gives an artifact with
no split: the gate then reports no drift and no taxa added or removed.
"""
from __future__ import annotations

import os
from typing import Optional

import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.types import artifact_utils

from inatvision.components.data_validation.feature_statistics import load_split

RELEASE_STATISTICS_DIR = "statistics"
STATISTICS_FILE = "FeatureStats.pb"
BASELINE_SPLIT = "train"
RELEASE_PROPERTY = "release"


def copy_statistics_into_release(statistics, release_dir: str) -> None:
    """Pusher: `<release>/statistics/FeatureStats.pb` from the run's StatisticsGen train split."""
    source = os.path.join(artifact_utils.get_split_uri([statistics], BASELINE_SPLIT), STATISTICS_FILE)
    target_dir = os.path.join(release_dir, RELEASE_STATISTICS_DIR)
    tf.io.gfile.makedirs(target_dir)
    tf.io.gfile.copy(source, os.path.join(target_dir, STATISTICS_FILE), overwrite=True)


def fill_baseline_statistics(baseline_statistics, release_path: Optional[str], release: str = "") -> None:
    """PreviousRelease: the release's statistics as the artifact's train split, or no split when there are none."""
    source = os.path.join(release_path, RELEASE_STATISTICS_DIR, STATISTICS_FILE) if release_path else None
    if source is None or not tf.io.gfile.exists(source):
        baseline_statistics.split_names = artifact_utils.encode_split_names([])
        return
    target_dir = os.path.join(baseline_statistics.uri, f"Split-{BASELINE_SPLIT}")
    tf.io.gfile.makedirs(target_dir)
    tf.io.gfile.copy(source, os.path.join(target_dir, STATISTICS_FILE), overwrite=True)
    baseline_statistics.split_names = artifact_utils.encode_split_names([BASELINE_SPLIT])
    baseline_statistics.set_string_custom_property(RELEASE_PROPERTY, release)


def load_baseline(baseline_statistics) -> tuple[Optional[statistics_pb2.DatasetFeatureStatisticsList], str]:
    """(the previous release's train statistics or None, its version or "")."""
    if baseline_statistics is None:
        return None, ""
    if BASELINE_SPLIT not in artifact_utils.decode_split_names(baseline_statistics.split_names):
        return None, ""
    release = baseline_statistics.get_string_custom_property(RELEASE_PROPERTY)
    return load_split(baseline_statistics, BASELINE_SPLIT), release
