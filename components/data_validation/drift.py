"""Drift (this export against the previous release's) and skew (train against eval) with TFDV's comparators,
and how the taxa and their photo counts changed since the previous release."""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from inatvision import features
from inatvision.components.data_validation.findings import finding
from inatvision.config import ValidationConfig

NUMERIC_DRIFT_JSD = 0.1  # approximate Jensen-Shannon divergence for day of year, latitude and longitude
NUMERIC_FEATURES = (features.DAY_OF_YEAR, features.LATITUDE, features.LONGITUDE)
COMPARATOR_TYPES = frozenset({"COMPARATOR_L_INFTY_HIGH", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"})
QUANTILES = {"min": 0.0, "p10": 0.1, "p25": 0.25, "median": 0.5, "p75": 0.75, "p90": 0.9, "max": 1.0}
LINF, JSD = "infinity_norm", "jensen_shannon_divergence"


def drift_thresholds(validation: ValidationConfig) -> dict[str, tuple[str, float]]:
    """feature -> (comparator, threshold) against the previous release."""
    thresholds = {features.LEAF_TAXON_ID: (LINF, validation.taxon_drift_linf),
                  features.ICONIC_TAXON: (LINF, validation.iconic_drift_linf)}
    return {**thresholds, **{name: (JSD, NUMERIC_DRIFT_JSD) for name in NUMERIC_FEATURES}}


def skew_thresholds(validation: ValidationConfig) -> dict[str, tuple[str, float]]:
    """feature -> (comparator, threshold) between the train and eval splits."""
    categorical = (features.LEAF_TAXON_ID, features.ICONIC_TAXON)
    thresholds = {name: (LINF, validation.train_eval_skew_linf) for name in categorical}
    return {**thresholds, **{name: (JSD, NUMERIC_DRIFT_JSD) for name in NUMERIC_FEATURES}}


def with_comparators(schema: schema_pb2.Schema, thresholds: Mapping[str, tuple[str, float]],
                     comparator: str) -> schema_pb2.Schema:
    """A copy of `schema` with `comparator` ("drift_comparator" or "skew_comparator") set on each feature."""
    compared = schema_pb2.Schema()
    compared.CopyFrom(schema)
    for name, (measure, threshold) in thresholds.items():
        getattr(getattr(tfdv.get_feature(compared, name), comparator), measure).threshold = threshold
    return compared


def _measurements(anomalies: anomalies_pb2.Anomalies, kind: str, comparison: str) -> list[dict]:
    rows = []
    for info in anomalies.drift_skew_info:
        for measurement in getattr(info, f"{kind}_measurements"):
            rows.append({"comparison": comparison, "feature": "/".join(info.path.step),
                         "measure": anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(measurement.type),
                         "value": measurement.value, "threshold": measurement.threshold,
                         "exceeded": measurement.value > measurement.threshold})
    return sorted(rows, key=lambda row: row["feature"])


def _comparator_findings(anomalies: anomalies_pb2.Anomalies, comparison: str) -> list[dict]:
    rows = []
    for name, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
            if kind in COMPARATOR_TYPES:
                rows.append(finding(comparison, name, kind, reason.short_description, reason.description))
    return rows


def compare(current: statistics_pb2.DatasetFeatureStatisticsList, schema: schema_pb2.Schema,
            thresholds: Mapping[str, tuple[str, float]], comparison: str, *,
            previous: Optional[statistics_pb2.DatasetFeatureStatisticsList] = None,
            serving: Optional[statistics_pb2.DatasetFeatureStatisticsList] = None) -> tuple[list[dict], list[dict]]:
    """(every comparator figure, findings for those above their threshold); `previous` gives drift, `serving` skew."""
    kind = "drift" if previous is not None else "skew"
    anomalies = tfdv.validate_statistics(current, with_comparators(schema, thresholds, f"{kind}_comparator"),
                                         previous_statistics=previous, serving_statistics=serving)
    return _measurements(anomalies, kind, comparison), _comparator_findings(anomalies, comparison)


def photo_quantiles(photos_per_taxon: Mapping[int, int]) -> Optional[dict[str, float]]:
    """Quantiles of the photos per taxon, and the number of taxa."""
    if not photos_per_taxon:
        return None
    counts = np.array(list(photos_per_taxon.values()))
    return {"taxa": len(counts), **{name: float(np.quantile(counts, q)) for name, q in QUANTILES.items()}}


def taxa_change(current: Mapping[int, int], baseline: Optional[Mapping[int, int]],
                names: Mapping[int, str]) -> dict:
    """Taxa added and removed since the previous release, and the photos-per-taxon distribution before and after."""
    now, before = photo_quantiles(current), photo_quantiles(baseline or {})
    change = {key: now[key] - before[key] for key in now} if now and before else None
    added = sorted(set(current) - set(baseline)) if baseline is not None else []
    removed = sorted(set(baseline) - set(current)) if baseline is not None else []
    return {
        "added": [{"taxon_id": taxon, "name": names.get(taxon, ""), "train_photos": current[taxon]} for taxon in added],
        "removed": [{"taxon_id": taxon, "train_photos_before": baseline[taxon]} for taxon in removed],
        "photos_per_taxon": {"current": now, "baseline": before, "change": change},
        "train_photos_sorted": {"current": sorted(current.values(), reverse=True),
                                "baseline": sorted(baseline.values(), reverse=True) if baseline is not None else None},
    }
