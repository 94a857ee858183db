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


def summary_of(root):
    return json.load(open(os.path.join(root, "runs", "latest", "summary.json")))


def test_missing_export_folder(tmp_path):
    result = invoke("run", "--export", tmp_path / "nowhere", "--root", tmp_path / "root")
    assert result.exit_code == 2
    assert "status: input_error" in result.output and "nowhere: export folder not found" in result.output
    assert summary_of(tmp_path / "root")["status"] == "input_error"


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
    assert result.exit_code == 1 and "nowhere" in result.output and "Error:" in result.output


def test_gc_outside_a_pipeline_root(tmp_path):
    result = invoke("gc", "--root", tmp_path, "--keep", "1")
    assert result.exit_code == 1 and "no metadata store" in result.output


def test_report_of_a_run_that_stopped_before_the_gate(tmp_path):
    result = invoke("report", tmp_path)
    assert result.exit_code == 1 and "stopped before the release gate" in result.output
