"""Every user-facing error of the command line: a one-line message, the contract's exit status, no traceback.

docs/errors.md lists these; each row is backed by a test here or in the file it names.
"""
import json
import os

import pytest
from click.testing import CliRunner

from inatvision.pipeline.cli import main
from inatvision.pipeline.run import RootLock
from inatvision.sample_export import write_sample_export


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    export_dir = tmp_path_factory.mktemp("tables") / "export"
    write_sample_export(str(export_dir), species=3, seed=2, tables_only=True)
    return export_dir


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def summary_of(root, output):
    """The summary.json that the run's last line names (`summary: runs/<id>/summary.json`)."""
    line = next(line for line in output.splitlines() if line.startswith("summary: "))
    return json.load(open(os.path.join(root, line.split(" ", 1)[1])))


def test_missing_export_folder(tmp_path):
    result = invoke("run", "--export", tmp_path / "nowhere", "--root", tmp_path / "root")
    assert result.exit_code == 2
    assert "status: input_error" in result.output and "nowhere: export folder not found" in result.output
    assert summary_of(tmp_path / "root", result.output)["status"] == "input_error"


def test_a_mistyped_run_leaves_runs_latest_where_it_was(tmp_path, tables):
    """A run that stops at its inputs writes its summary.json but does not become `runs/latest`."""
    root = tmp_path / "root"
    os.makedirs(root / "runs" / "20260101-000000-good")
    os.symlink("20260101-000000-good", root / "runs" / "latest")
    result = invoke("run", "--export", tables, "--root", root, "--set", "trainer.epoch=3")
    assert result.exit_code == 2
    assert os.readlink(root / "runs" / "latest") == "20260101-000000-good"
    assert summary_of(root, result.output)["status"] == "input_error"


def test_missing_table(tmp_path, tables):
    export_dir = tmp_path / "export"
    os.makedirs(export_dir)
    for name in ("observations.csv", "taxa.csv"):
        (export_dir / name).write_bytes((tables / name).read_bytes())
    result = invoke("run", "--export", export_dir, "--root", tmp_path / "root")
    assert result.exit_code == 2 and "photos.csv" in result.output


def test_missing_column(tmp_path, tables):
    export_dir = tmp_path / "export"
    os.makedirs(export_dir)
    for name in ("observations.csv", "photos.csv"):
        (export_dir / name).write_bytes((tables / name).read_bytes())
    lines = (tables / "taxa.csv").read_text().splitlines()
    (export_dir / "taxa.csv").write_text("\n".join(line.rsplit("\t", 1)[0] for line in lines) + "\n")  # no `active`
    result = invoke("run", "--export", export_dir, "--root", tmp_path / "root")
    assert result.exit_code == 2 and "taxa.csv" in result.output and "active" in result.output


def test_unknown_configuration_key(tmp_path, tables):
    result = invoke("run", "--export", tables, "--root", tmp_path / "root", "--set", "trainer.epoch=3")
    assert result.exit_code == 2 and "unknown configuration key 'trainer.epoch'" in result.output
    assert "trainer.epochs" in result.output


def test_bad_configuration_value(tmp_path, tables):
    result = invoke("run", "--export", tables, "--root", tmp_path / "root", "--set", "trainer.epochs=lots")
    assert result.exit_code == 2 and "bad value for trainer.epochs" in result.output


def test_a_second_run_on_the_same_root_refuses_at_once(tmp_path, tables):
    root = tmp_path / "root"
    os.makedirs(root)
    with RootLock(str(root), "run 20260101-000000-first"):
        result = invoke("run", "--export", tables, "--root", root)
    assert result.exit_code == 1
    assert "another run is in progress on this root (run 20260101-000000-first" in result.output


def test_gc_refuses_while_a_run_holds_the_root(tmp_path):
    root = tmp_path / "root"
    os.makedirs(root)
    (root / "metadata.sqlite").write_bytes(b"")
    with RootLock(str(root), "run 20260101-000000-first"):
        result = invoke("gc", "--root", root, "--keep", "1")
    assert result.exit_code == 1
    assert "another run is in progress on this root (run 20260101-000000-first, pid" in result.output


def test_preview_of_a_missing_export(tmp_path):
    result = invoke("export-preview", "--export", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "nowhere" in result.output and "Error:" in result.output


def test_preview_with_an_unknown_key_exits_2_as_run_does(tmp_path, tables):
    result = invoke("export-preview", "--export", tables, "--out", tmp_path / "out", "--set", "export.min_obs=3")
    assert result.exit_code == 2 and "unknown configuration key 'export.min_obs'" in result.output


def test_preview_says_which_cut_offs_it_applies(tmp_path, tables):
    result = CliRunner().invoke(main, ["export-preview", "--export", str(tables), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "cut-offs (demo profile): 20 observations, 10 research grade" in result.stderr
    assert "--profile production applies 100 and 50" in result.stderr
    json.loads(result.stdout)  # stdout stays the JSON summary


def test_releases_of_a_missing_root(tmp_path):
    result = invoke("releases", "--root", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no releases folder" in result.output


def test_releases_table_has_a_header_and_rounded_metrics():
    from inatvision.pipeline.cli import format_releases
    table = format_releases([(1, "/r/1", {"created": "2026-12-01", "metrics": {"top1": 0.9782608695652174,
                                                                                "top5": 1.0}}),
                             (2, "/r/2", {"created": "2026-12-02", "metrics": {}})]).splitlines()
    assert table[0].split() == ["version", "created", "top1", "top5", "path"]
    assert table[1].split() == ["1", "2026-12-01", "0.978", "1.000", "/r/1"]
    assert table[2].split() == ["2", "2026-12-02", "-", "-", "/r/2"]
    assert format_releases([]) == "no releases yet"


def test_gc_outside_a_pipeline_root(tmp_path):
    result = invoke("gc", "--root", tmp_path, "--keep", "1")
    assert result.exit_code == 1 and "no metadata store" in result.output


def test_report_of_a_run_that_stopped_before_the_gate(tmp_path):
    result = invoke("report", tmp_path)
    assert result.exit_code == 1 and "stopped before the release gate" in result.output
