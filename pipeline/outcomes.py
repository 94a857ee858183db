"""What a run produced, read back from ML Metadata and the artifacts, for summary.json."""
from __future__ import annotations

import glob
import json
import os

import tensorflow as tf

from inatvision.artifacts import BLOCKED_REPORT
from inatvision.components.data_validation import report as validation_report
from inatvision.components.release_gate.report import write_gate_report
from inatvision.components.release_gate.report_data import GateResult
from inatvision.errors import ConfigError, InputError, ValidationFailed
from inatvision.pipeline.metadata import open_store
from inatvision.provenance import run_provenance
from inatvision.taxonomy import TAXONOMY_FILE

ARTIFACT_TYPES = {
    "release": "inatvision.Release", "gate_report": "inatvision.GateReport",
    "export_report": "inatvision.ExportReport", "taxonomy": "inatvision.Taxonomy",
    "validation_report": "inatvision.ValidationReport",
}


def latest_run_artifacts(metadata_path: str) -> dict[str, object]:
    """The newest pipeline run's artifacts by our type names (cached ones included)."""
    if not os.path.exists(metadata_path):
        return {}
    store = open_store(metadata_path, read_only=True)
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        return {}
    run = max(runs, key=lambda context: context.create_time_since_epoch)
    type_names = {t.id: t.name for t in store.get_artifact_types()}
    found = {}
    for artifact in sorted(store.get_artifacts_by_context(run.id), key=lambda a: a.id):
        for key, type_name in ARTIFACT_TYPES.items():
            if type_names.get(artifact.type_id) == type_name:
                found[key] = artifact
    return found


def _custom(artifact, name: str):
    value = artifact.custom_properties.get(name)
    if value is None:
        return None
    return value.string_value or value.int_value if value.WhichOneof("value") != "proto_value" else None


def _read_json(path: str):
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _metrics(slice_comparison: dict, prefix: str) -> dict:
    return {k: slice_comparison.get(f"{prefix}_{k}") for k in ("top1", "top5", "top10")}


def fill_from_metadata(summary: dict, metadata_path: str, run_dir: str, failed: bool = False) -> None:
    """Adds examples, classes, anomalies, metrics and the outcome; copies reports into the run folder."""
    artifacts = latest_run_artifacts(metadata_path)
    reports = {}
    if "export_report" in artifacts:
        export_report = _read_json(os.path.join(artifacts["export_report"].uri, "export_report.json")) or {}
        rejected = dict(export_report.get("rejected") or {})
        rejected["excluded_by_rule"] = {  # licence, caps, cut-offs: not broken, but not in the examples either
            section: export_report[section] for section in ("observations_dropped", "photos_dropped")
            if export_report.get(section)}
        summary.update(examples_per_split=export_report.get("examples_per_split"),
                       num_classes=export_report.get("num_classes"), rejected=rejected,
                       classes_without_training_photos=export_report.get("classes_without_training_photos", []))
        reports["export_report"] = os.path.join(artifacts["export_report"].uri, "export_report.json")
    if "taxonomy" in artifacts:
        reports["taxonomy"] = os.path.join(artifacts["taxonomy"].uri, TAXONOMY_FILE)
        reports["taxa_report"] = os.path.join(artifacts["taxonomy"].uri, "taxa_report.csv")
    # A gate that blocked published no report: TFX deleted its output folder, but it wrote a copy (gate.py).
    gate_dir = os.path.join(os.path.dirname(metadata_path), "artifacts", "ValidationGate")
    validation_uri = artifacts["validation_report"].uri if "validation_report" in artifacts else (
        _newest_pending(os.path.join(gate_dir, BLOCKED_REPORT)) or _newest_pending(os.path.join(gate_dir, "report")))
    if validation_uri:
        validation = _read_json(os.path.join(validation_uri, "validation_report.json")) or {}
        summary["anomalies"] = validation.get("anomalies", [])
        summary["anomaly_warnings"] = validation.get("warnings", [])
        reports["validation_report"] = os.path.join(validation_uri, "validation_report.json")
        reports["validation_report_html"] = os.path.join(validation_uri, "validation_report.html")
    if "gate_report" in artifacts:
        gate_uri = artifacts["gate_report"].uri
        gate = _read_json(os.path.join(gate_uri, "gate_report.json")) or {}
        overall = (gate.get("overall") or [{}])[0]
        summary["candidate"] = _metrics(overall, "candidate") if overall else None
        summary["gate"] = {"blessed": gate.get("blessed"), "summary": gate.get("summary"),
                           "failed_thresholds": [t["name"] for t in gate.get("thresholds", []) if not t["passed"]]}
        if gate.get("baseline_release"):
            shared = next((row for row in gate.get("overall", []) if row.get("n_shared")), {})
            summary["baseline"] = {"release": gate["baseline_release"],
                                   "top1": shared.get("shared_baseline_top1"), "top5": shared.get("shared_baseline_top5"),
                                   "candidate_top1_on_shared": shared.get("shared_candidate_top1")}
        summary["blessed"] = bool(gate.get("blessed"))
        for name in ("gate_report.html", "gate_report.json", "geo_map.png"):  # the HTML shows the map beside it
            reports[name.replace(".", "_")] = os.path.join(gate_uri, name)
    if "release" in artifacts and not failed:
        release = artifacts["release"]
        summary["status"] = _custom(release, "outcome") or "failed"
        summary["pushed_to"] = _custom(release, "path")
        if summary["status"] == "no_change":
            summary["blessed"] = False
    summary["reports"] = copy_reports(reports, run_dir)
    pushed = summary.get("status") == "pushed" and "release" in artifacts
    stamp_run_reports(summary["reports"], summary["run_id"], summary.get("export"),
                      str(_custom(artifacts["release"], "version")) if pushed else None)


def _newest_pending(folder: str):
    candidates = glob.glob(os.path.join(folder, "*", "validation_report.json"))
    return os.path.dirname(max(candidates, key=os.path.getmtime)) if candidates else None


# By type, first match wins; an error of none of these types is `failed` (docs/contract.md, `inatvision run`).
FAILURE_STATUSES = ((ValidationFailed, "validation_failed"), (InputError, "input_error"), (ConfigError, "input_error"))


def exception_chain(error: BaseException) -> list[BaseException]:
    """The error and those it was raised from or while handling, outermost first, as Python's traceback
    follows them (`raise ... from None` ends the chain)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def classify_failure(error: BaseException) -> dict:
    """Maps an exception raised inside the pipeline to a contract status and a one-line message, by the types
    in its chain (TFX's LocalDagRunner re-raises an executor's own exception; a wrapper may hold it as cause)."""
    chain = exception_chain(error)
    for kind, status in FAILURE_STATUSES:
        found = next((item for item in chain if isinstance(item, kind)), None)
        if found is not None:
            message = _first_line(found)
            return {"status": status,
                    "error": f"{type(found).__name__}: {message}" if status == "validation_failed" else message}
    return {"status": "failed", "error": f"{type(error).__name__}: {_first_line(error)}"}


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else ""


def stamp_run_reports(reports: dict[str, str], run_id: str, export_dir: str | None, release: str | None) -> None:
    """Names the run, its export and its release (None: nothing pushed) in the run folder's copies of the
    validation and gate reports, and renders their pages again: the page people open says which run it is."""
    if "validation_report" in reports:
        validation = _read_json(reports["validation_report"])
        validation["provenance"] = run_provenance(validation.get("provenance"), run_id, export_dir, release)
        validation_report.write_report(validation, os.path.dirname(reports["validation_report"]))
    if "gate_report_json" in reports:
        gate = _read_json(reports["gate_report_json"])
        gate["provenance"] = run_provenance(gate.get("provenance"), run_id, export_dir, release)
        if "thresholds" in gate:  # a full verdict; a candidate identical to the baseline has a short note only
            write_gate_report(GateResult.from_json(gate), os.path.dirname(reports["gate_report_json"]))
        else:
            with tf.io.gfile.GFile(reports["gate_report_json"], "w") as f:
                json.dump(gate, f, indent=2)


def copy_reports(sources: dict[str, str], run_dir: str) -> dict[str, str]:
    """Copies each existing report file into the run folder; returns name -> path."""
    copied = {}
    for name, source in sources.items():
        if source and tf.io.gfile.exists(source):
            target = os.path.join(run_dir, os.path.basename(source))
            tf.io.gfile.copy(source, target, overwrite=True)
            copied[name] = target
    return copied
