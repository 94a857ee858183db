"""Artifact types of this pipeline beyond TFX's standard ones."""
import os

from tfx.types.artifact import Artifact

NUM_CLASSES = "num_classes"  # the Taxonomy artifact's custom property: its taxonomy.csv's leaf count


class Taxonomy(Artifact):
    """`taxonomy.csv` (contract layout) and `taxa_report.csv` of one export; custom property `num_classes`.

    No declared PROPERTIES: the Kubeflow V2 compiler rejects declared properties on custom artifact types.
    """

    TYPE_NAME = "inatvision.Taxonomy"


def set_num_classes(taxonomy: Artifact, num_classes: int) -> None:
    """Set once, by ExportExamples, from the taxonomy.csv it wrote (`inatvision.taxonomy.TaxonTree.num_classes`)."""
    taxonomy.set_int_custom_property(NUM_CLASSES, num_classes)


def num_classes(taxonomy: Artifact) -> int:
    """The class count a Taxonomy artifact carries; stages that need only the count read it here."""
    if not taxonomy.has_custom_property(NUM_CLASSES):
        raise ValueError(f"Taxonomy artifact at {taxonomy.uri} has no custom property {NUM_CLASSES!r}: "
                         f"ExportExamples sets it")
    return taxonomy.get_int_custom_property(NUM_CLASSES)


class ExportReport(Artifact):
    """What the export kept and rejected, by reason (`export_report.json`)."""

    TYPE_NAME = "inatvision.ExportReport"


class ValidationReport(Artifact):
    """The data-validation gate's verdict (`validation_report.json` and `.html`)."""

    TYPE_NAME = "inatvision.ValidationReport"


# Beside `report`: TFX deletes a failed execution's output folders (its launcher's remove_output_dirs), the report
# with them, so a blocking verdict's report is also written to `<node>/blocked_report/<execution id>`, where
# `inatvision run` reads the anomalies (pipeline/outcomes.py). Its execution did not finish, so the next run's
# start and `gc` free that folder as they free an interrupted execution's outputs (pipeline/gc.py).
BLOCKED_REPORT = "blocked_report"


def blocked_report_dir(report_uri: str) -> str:
    """`<node>/blocked_report/<execution id>` for the ValidationReport artifact's `<node>/report/<execution id>`."""
    report_uri = report_uri.rstrip("/")
    return os.path.join(os.path.dirname(os.path.dirname(report_uri)), BLOCKED_REPORT, os.path.basename(report_uri))


class GateReport(Artifact):
    """The release gate's verdict and comparisons (`gate_report.json` and `.html`)."""

    TYPE_NAME = "inatvision.GateReport"


class Release(Artifact):
    """A pushed (or not pushed) release: custom properties `version`, `path`, `outcome`."""

    TYPE_NAME = "inatvision.Release"
