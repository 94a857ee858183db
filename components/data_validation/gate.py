"""The blocking validation gate: TFX's ExampleValidator reports anomalies, this stops the run.

Anomalies named in `validation.warn_only` (by anomaly type or feature name) are downgraded
to warnings; any other anomaly raises `ValidationFailed` before Transform and the Trainer.
"""
import json
import os

import tensorflow as tf
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies

from components.artifacts import ValidationReport
from pipeline.config import resolve_config

REPORT_FILE = "validation_report.json"


class ValidationFailed(RuntimeError):
    """Schema anomalies that block the run; the message names each one."""


def anomaly_rows(split: str, anomalies: anomalies_pb2.Anomalies) -> list[dict]:
    """One row per (feature, anomaly): what, how bad, in which split."""
    rows = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            rows.append({"split": split, "feature": feature,
                         "type": anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
                         "short": reason.short_description, "description": reason.description})
    return rows


def is_downgraded(row: dict, warn_only: list[str]) -> bool:
    return row["feature"] in warn_only or row["type"] in warn_only


def split_verdict(rows: list[dict], warn_only: list[str]) -> tuple[list[dict], list[dict]]:
    """(blocking, warnings)."""
    blocking = [row for row in rows if not is_downgraded(row, warn_only)]
    return blocking, [row for row in rows if is_downgraded(row, warn_only)]


def describe(rows: list[dict]) -> str:
    return "; ".join(f"{r['split']}: {r['feature']}: {r['short']} ({r['description']})" for r in rows)


@component
def ValidationGate(anomalies: InputArtifact[ExampleAnomalies], config_json: Parameter[str],  # noqa: N802
                   config_overrides: Parameter[str], report: OutputArtifact[ValidationReport]) -> None:
    """Writes `validation_report.json`; raises ValidationFailed on blocking anomalies."""
    config = resolve_config(config_json, config_overrides)
    rows = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(anomalies.uri, f"Split-{split}", "SchemaDiff.pb")
        rows += anomaly_rows(split, anomalies_util.load_anomalies_binary(path))
    blocking, warnings = split_verdict(rows, config.validation.warn_only)
    tf.io.gfile.makedirs(report.uri)
    with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILE), "w") as f:
        json.dump({"passed": not blocking, "anomalies": blocking, "warnings": warnings}, f, indent=2)
    if blocking:
        raise ValidationFailed(f"{len(blocking)} blocking anomalies: {describe(blocking)}")
