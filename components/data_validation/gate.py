"""The blocking validation gate, before Transform and the Trainer.

It gathers ExampleValidator's schema anomalies (with how many examples each concerns, where the statistics
say), empty images, the taxonomy checks, and drift and skew from TFDV's comparators; writes
`validation_report.json` and `.html`; and raises `ValidationFailed`, naming each blocking anomaly.
Anything named in `validation.warn_only` (an anomaly type or a feature) is only a warning; drift and skew
block only with `validation.block_on_drift`.
"""

import os
from typing import Mapping, Optional

from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema
from tfx.utils import io_utils

from inatvision import features, progress
from inatvision.artifacts import Taxonomy, ValidationReport, blocked_report_dir
from inatvision.components.data_validation import drift
from inatvision.components.data_validation.baseline import load_baseline
from inatvision.components.data_validation.feature_statistics import (
    affected_examples, counts_are_complete, empty_image_findings, int_value_counts, load_split, num_examples,
)
from inatvision.components.data_validation.findings import describe, finding, is_downgraded
from inatvision.components.data_validation.report import write_report
from inatvision.components.data_validation.taxonomy_checks import check_taxonomy, leaf_rows, unknown_leaf_problems
from inatvision.config import ValidationConfig, resolve_config
from inatvision.errors import ValidationFailed
from inatvision.provenance import component_provenance
from inatvision.taxonomy import TAXONOMY_FILE

Statistics = statistics_pb2.DatasetFeatureStatisticsList

def schema_findings(split: str, anomalies: anomalies_pb2.Anomalies, statistics: Statistics,
                    schema: schema_pb2.Schema) -> list[dict]:
    """One finding per (feature, reason) of ExampleValidator, plus empty images."""
    rows = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
            rows.append(finding(split, feature, kind, reason.short_description, reason.description,
                                affected_examples(kind, feature, statistics, schema)))
    return rows + empty_image_findings(split, statistics)


def taxa_per_split(statistics: Mapping[str, Statistics]) -> tuple[dict[str, dict[int, int]], list[dict]]:
    """(split -> leaf taxon id -> examples, notes for splits whose statistics do not count every taxon)."""
    counts, notes = {}, []
    for split, split_statistics in statistics.items():
        split_counts = int_value_counts(split_statistics, features.LEAF_TAXON_ID)
        if split_counts is not None:
            counts[split] = split_counts
        if not counts_are_complete(split_statistics, features.LEAF_TAXON_ID):
            notes.append(finding(split, features.LEAF_TAXON_ID, "TAXON_COUNTS_INCOMPLETE", "Taxa not all counted",
                                 "the statistics do not count every leaf_taxon_id value; give StatisticsGen the "
                                 "curated schema and feature_statistics.statistics_options()"))
    return counts, notes


def drift_and_skew(statistics: Mapping[str, Statistics], schema: schema_pb2.Schema, config: ValidationConfig,
                   baseline: Optional[Statistics], baseline_release: str,
                   taxa_counted: bool) -> tuple[list[dict], list[dict]]:
    """(comparator figures, findings above threshold): train against the previous release and against eval."""
    def thresholds(chosen):
        return {name: value for name, value in chosen.items() if taxa_counted or name != features.LEAF_TAXON_ID}

    train = statistics.get("train")
    comparisons = []
    if train is not None and baseline is not None:
        comparisons.append((f"train vs release {baseline_release}", drift.drift_thresholds(config),
                            {"previous": baseline}))
    if train is not None and "eval" in statistics:
        comparisons.append(("train vs eval", drift.skew_thresholds(config), {"serving": statistics["eval"]}))
    measurements, findings = [], []
    for comparison, chosen, against in comparisons:
        figures, above_threshold = drift.compare(train, schema, thresholds(chosen), comparison, **against)
        measurements += figures
        findings += above_threshold
    return measurements, findings


def split_verdict(graded: list[tuple[dict, bool]], warn_only: list[str]) -> tuple[list[dict], list[dict]]:
    """(blocking, warnings) from (finding, whether it may block) pairs."""
    blocks = [may_block and not is_downgraded(row, warn_only) for row, may_block in graded]
    return ([row for (row, _), block in zip(graded, blocks) if block],
            [row for (row, _), block in zip(graded, blocks) if not block])


def validate(anomalies: Mapping[str, anomalies_pb2.Anomalies], statistics: Mapping[str, Statistics],
             schema: schema_pb2.Schema, taxonomy_csv: str, config: ValidationConfig,
             baseline: Optional[Statistics] = None, baseline_release: str = "") -> dict:
    """The report of one run (validation_report.json); `passed` is False when anything blocks."""
    rows, taxonomy_problems = check_taxonomy(taxonomy_csv)
    leaves = {row["taxon_id"]: row["name"] for row in leaf_rows(rows)}
    counts, notes = taxa_per_split(statistics)
    checked = [row for split in sorted(anomalies) for row in
               schema_findings(split, anomalies[split], statistics[split], schema)]
    checked += taxonomy_problems + unknown_leaf_problems(counts, set(leaves))
    taxa_counted = "train" in counts and not notes and (
        baseline is None or counts_are_complete(baseline, features.LEAF_TAXON_ID))
    measurements, drifted = drift_and_skew(statistics, schema, config, baseline, baseline_release, taxa_counted)
    blocking, warnings = split_verdict(
        [(row, True) for row in checked] + [(row, config.block_on_drift) for row in drifted]
        + [(row, False) for row in notes], config.warn_only)
    counted_before = baseline is not None and taxa_counted
    baseline_counts = int_value_counts(baseline, features.LEAF_TAXON_ID) if counted_before else None
    return {
        "passed": not blocking, "anomalies": blocking, "warnings": warnings,
        "block_on_drift": config.block_on_drift,
        "examples_per_split": {split: num_examples(stats) for split, stats in sorted(statistics.items())},
        "taxonomy": {"rows": len(rows), "leaves": len(leaves)},
        "baseline_release": baseline_release if baseline is not None else "",
        "drift": measurements,
        "taxa": drift.taxa_change(counts.get("train", {}), baseline_counts, leaves),
    }


def failure_message(blocking: list[dict]) -> str:
    return f"{len(blocking)} blocking anomalies: " + "; ".join(describe(row) for row in blocking)


def _anomalies_of(artifact, split: str) -> anomalies_pb2.Anomalies:
    return anomalies_util.load_anomalies_binary(
        os.path.join(artifact_utils.get_split_uri([artifact], split), "SchemaDiff.pb"))


@component
def ValidationGate(anomalies: InputArtifact[ExampleAnomalies],  # noqa: N802
                   statistics: InputArtifact[ExampleStatistics], schema: InputArtifact[Schema],
                   taxonomy: InputArtifact[Taxonomy], config_json: Parameter[str],
                   config_overrides: Parameter[str], report: OutputArtifact[ValidationReport],
                   baseline_statistics: InputArtifact[ExampleStatistics] = None) -> None:
    """Writes the report; raises ValidationFailed on blocking anomalies.

    `baseline_statistics`: the previous release's train statistics (PreviousRelease); none or empty on a first release.
    """
    config = resolve_config(config_json, config_overrides).validation
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    baseline, baseline_release = load_baseline(baseline_statistics)
    result = validate({split: _anomalies_of(anomalies, split) for split in splits},
                      {split: load_split(statistics, split) for split in splits},
                      io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri)),
                      os.path.join(taxonomy.uri, TAXONOMY_FILE), config, baseline, baseline_release)
    result["provenance"] = component_provenance()
    write_report(result, report.uri)
    progress.summary("ValidationGate", f"{len(result['anomalies'])} blocking anomalies, "
                                       f"{len(result['warnings'])} warnings")
    if not result["passed"]:
        write_report(result, blocked_report_dir(report.uri))  # TFX deletes `report.uri` when this raises
        raise ValidationFailed(failure_message(result["anomalies"]))
