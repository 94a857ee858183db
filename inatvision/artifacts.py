"""Artifact types of this pipeline beyond TFX's standard ones."""
from tfx.types.artifact import Artifact


class Taxonomy(Artifact):
    """`taxonomy.csv` (contract layout) and `taxa_report.csv` of one export; custom property `num_classes`.

    No declared PROPERTIES: the Kubeflow V2 compiler rejects declared properties on custom artifact types.
    """

    TYPE_NAME = "inatvision.Taxonomy"


class ExportReport(Artifact):
    """What the export kept and rejected, by reason (`export_report.json`)."""

    TYPE_NAME = "inatvision.ExportReport"


class ValidationReport(Artifact):
    """The data-validation gate's verdict (`validation_report.json` and `.html`)."""

    TYPE_NAME = "inatvision.ValidationReport"


class GateReport(Artifact):
    """The release gate's verdict and comparisons (`gate_report.json` and `.html`)."""

    TYPE_NAME = "inatvision.GateReport"


class Release(Artifact):
    """A pushed (or not pushed) release: custom properties `version`, `path`, `outcome`."""

    TYPE_NAME = "inatvision.Release"
