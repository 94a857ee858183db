"""Facts read from TFDV statistics: value counts, missing examples, empty images.

Value counts come from rank histograms, which TFDV computes for string features and for int features
the schema marks `is_categorical` (`leaf_taxon_id` in schemas/examples.pbtxt) when StatisticsGen is
given that schema.
"""
from __future__ import annotations

from typing import Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx.components.statistics_gen import stats_artifact_utils

from inatvision import features
from inatvision.components.data_validation.findings import finding

MAX_COUNTED_VALUES = 100_000  # rank histogram length: more than the leaves of any iNaturalist model
PRESENCE_TYPES = frozenset({"FEATURE_TYPE_LOW_FRACTION_PRESENT", "FEATURE_TYPE_LOW_NUMBER_PRESENT"})
ABSENCE_TYPES = frozenset({"FEATURE_TYPE_NOT_PRESENT", "SCHEMA_MISSING_COLUMN"})
OUT_OF_RANGE_INT_TYPES = frozenset({"INT_TYPE_BIG_INT", "INT_TYPE_SMALL_INT"})
UNEXPECTED_STRING_TYPE = "ENUM_TYPE_UNEXPECTED_STRING_VALUES"


def statistics_options() -> tfdv.StatsOptions:
    """StatisticsGen's options: rank histograms that count every leaf taxon."""
    return tfdv.StatsOptions(num_rank_histogram_buckets=MAX_COUNTED_VALUES)


def load_split(statistics_artifact, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    return stats_artifact_utils.load_statistics(statistics_artifact, split).proto()


def feature_stats(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                  name: str) -> Optional[statistics_pb2.FeatureNameStatistics]:
    for feature in statistics.datasets[0].features:
        if list(feature.path.step) == [name] or feature.name == name:
            return feature
    return None


def num_examples(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> int:
    return int(statistics.datasets[0].num_examples)


def value_counts(statistics: statistics_pb2.DatasetFeatureStatisticsList, name: str) -> Optional[dict[str, int]]:
    """value -> examples from the rank histogram; None when the statistics hold no counts for the feature."""
    feature = feature_stats(statistics, name)
    if feature is None or not feature.HasField("string_stats"):
        return None
    return {bucket.label: int(bucket.sample_count) for bucket in feature.string_stats.rank_histogram.buckets}


def counts_are_complete(statistics: statistics_pb2.DatasetFeatureStatisticsList, name: str) -> bool:
    """Whether the rank histogram counts every value (it holds at most MAX_COUNTED_VALUES values)."""
    feature = feature_stats(statistics, name)
    counts = value_counts(statistics, name)
    return counts is not None and sum(counts.values()) >= feature.string_stats.common_stats.tot_num_values


def int_value_counts(statistics: statistics_pb2.DatasetFeatureStatisticsList, name: str) -> Optional[dict[int, int]]:
    counts = value_counts(statistics, name)
    return None if counts is None else {int(value): count for value, count in counts.items()}


def _missing(statistics, name: str) -> int:
    feature = feature_stats(statistics, name)
    if feature is None:
        return num_examples(statistics)
    common = getattr(feature, feature.WhichOneof("stats")).common_stats
    return int(common.num_missing)


def _outside_int_domain(counts: dict[str, int], domain: schema_pb2.IntDomain) -> int:
    low = domain.min if domain.HasField("min") else float("-inf")
    high = domain.max if domain.HasField("max") else float("inf")
    return sum(count for value, count in counts.items() if not low <= int(value) <= high)


def affected_examples(anomaly_type: str, name: str, statistics, schema: schema_pb2.Schema) -> Optional[int]:
    """How many examples an anomaly concerns, where the statistics say it exactly; else None."""
    if anomaly_type in ABSENCE_TYPES:
        return num_examples(statistics)
    if anomaly_type in PRESENCE_TYPES:
        return _missing(statistics, name)
    counts = value_counts(statistics, name)
    if counts is None or not counts_are_complete(statistics, name):
        return None
    if anomaly_type == UNEXPECTED_STRING_TYPE:
        allowed = set(tfdv.get_domain(schema, name).value)
        return sum(count for value, count in counts.items() if value not in allowed)
    if anomaly_type in OUT_OF_RANGE_INT_TYPES:
        return _outside_int_domain(counts, tfdv.get_feature(schema, name).int_domain)
    return None


def empty_image_findings(split: str, statistics: statistics_pb2.DatasetFeatureStatisticsList) -> list[dict]:
    """An image value of 0 bytes (TFDV reports byte sizes for the schema's `image_domain` features)."""
    feature = feature_stats(statistics, features.IMAGE)
    if feature is None or not feature.HasField("bytes_stats") or feature.bytes_stats.min_num_bytes > 0:
        return []
    return [finding(split, features.IMAGE, "EMPTY_IMAGE_BYTES", "Examples without image bytes",
                    "at least one example's image/encoded value is empty (0 bytes)")]
