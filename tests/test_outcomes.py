"""`classify_failure`: a run's failure status comes from the exception types in the chain, never from its text."""
import pytest
from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component

from inatvision.errors import ConfigError, InputError, ValidationFailed
from inatvision.pipeline.outcomes import classify_failure, exception_chain

BLOCKING = "2 blocking anomalies: [train] latitude FLOAT_TYPE_BIG_FLOAT (3 examples); [taxonomy] ..."


def raised(make):
    try:
        make()
    except Exception as error:  # noqa: BLE001
        return error
    raise AssertionError("nothing raised")


def wrapped_by_cause(inner):
    def make():
        raise RuntimeError("Execution 7 failed") from inner
    return raised(make)


def wrapped_by_context(inner):
    def make():
        try:
            raise inner
        except type(inner):
            raise KeyError("while cleaning up")  # noqa: B904
    return raised(make)


@pytest.mark.parametrize("wrap", [lambda error: error, wrapped_by_cause, wrapped_by_context])
def test_the_status_comes_from_the_type_anywhere_in_the_chain(wrap):
    assert classify_failure(wrap(ValidationFailed(BLOCKING + "\nmore"))) == {
        "status": "validation_failed", "error": "ValidationFailed: " + BLOCKING}
    assert classify_failure(wrap(InputError("/x: missing photos.csv (or photos.csv.gz)"))) == {
        "status": "input_error", "error": "/x: missing photos.csv (or photos.csv.gz)"}
    assert classify_failure(wrap(ConfigError("unknown configuration key 'a.b'"))) == {
        "status": "input_error", "error": "unknown configuration key 'a.b'"}


def test_text_alone_classifies_nothing():
    assert classify_failure(RuntimeError("ValidationFailed: 2 blocking anomalies")) == {
        "status": "failed", "error": "RuntimeError: ValidationFailed: 2 blocking anomalies"}
    assert classify_failure(ValueError("InputError")) == {"status": "failed", "error": "ValueError: InputError"}
    assert classify_failure(RuntimeError()) == {"status": "failed", "error": "RuntimeError: "}


def test_a_suppressed_context_and_a_cycle_end_the_chain():
    def replaced():
        try:
            raise ValidationFailed(BLOCKING)
        except ValidationFailed:
            raise OSError("disk full") from None
    assert classify_failure(raised(replaced))["status"] == "failed"
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    assert exception_chain(first) == [first, second]


@component
def Failing(kind: Parameter[str]) -> None:  # noqa: N802
    errors = {"validation": ValidationFailed(BLOCKING), "input": InputError("/x: missing taxa.csv (or taxa.csv.gz)")}
    raise errors[kind]


@pytest.mark.parametrize("kind, status", [("validation", "validation_failed"), ("input", "input_error")])
def test_an_executors_error_reaches_the_runner_with_its_type(tmp_path, kind, status):
    """As in pipeline/run.py: LocalDagRunner().run raises what the component's executor raised."""
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="failing", pipeline_root=str(tmp_path / "artifacts"), components=[Failing(kind=kind)],
        enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite")))
    error = raised(lambda: tfx.orchestration.LocalDagRunner().run(pipeline))
    assert type(error) is {"validation": ValidationFailed, "input": InputError}[kind]  # not wrapped, not a copy
    assert classify_failure(error)["status"] == status


def test_the_run_folder_copies_name_the_run_its_export_and_release(tmp_path):
    """The gate page in runs/<id>/ is rendered again with the run's id, export and release (the validation
    page is too: tests/test_pipeline_e2e.py); a candidate identical to its baseline has only a note, which gets
    the same fields."""
    import json

    import numpy as np

    from inatvision.components.release_gate.decision import evaluate_gate
    from inatvision.components.release_gate.report import write_gate_report
    from inatvision.pipeline.outcomes import stamp_run_reports
    from inatvision.provenance import code_version, component_provenance
    from tests.test_gate import GATE, make_inputs

    result = evaluate_gate(make_inputs(np.ones(40, int)), GATE)
    result.provenance = component_provenance()
    html, gate_json = write_gate_report(result, tmp_path / "runs" / "r1")
    stamp_run_reports({"gate_report_json": str(gate_json)}, "r1", "/data/export-2026-12", "4")
    text = html.read_text()
    assert "run r1 · release 4 · created " in text and "export /data/export-2026-12" in text
    assert f"code {code_version()}" in text
    assert json.loads(gate_json.read_text())["provenance"]["run_id"] == "r1"

    note = tmp_path / "identical" / "gate_report.json"
    note.parent.mkdir()
    note.write_text(json.dumps({"blessed": False, "identical_to_baseline": True, "summary": "nothing to release"}))
    stamp_run_reports({"gate_report_json": str(note)}, "r2", "/data/export", None)
    stamped = json.loads(note.read_text())
    assert stamped["provenance"] == {"run_id": "r2", "export": "/data/export", "release": None}
    assert stamped["identical_to_baseline"] and not (note.parent / "gate_report.html").exists()
