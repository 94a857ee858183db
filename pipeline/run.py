"""`inatvision run`: one local pipeline run with a summary.json on every outcome and contract exit codes."""
from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import traceback

from inatvision.components.export_examples.tables import check_tables
from inatvision.config import as_dict, build_config, local_paths
from inatvision.errors import ConfigError, InputError
from inatvision.pipeline.console import Console

# TensorFlow, TFX and ML Metadata load only after the configuration and the export's tables are checked,
# so a mistyped path or key is answered in about a second.

EXIT_CODES = {"pushed": 0, "no_change": 0, "not_blessed": 3, "validation_failed": 4, "input_error": 2, "failed": 1}
LOCK_FILE = ".run.lock"


class RunInProgress(RuntimeError):
    """Another `inatvision run` holds this root."""


def export_fingerprint(export_dir: str) -> str:
    """Sizes and modification times of the tables and photos: a changed export misses the cache."""
    digest = hashlib.sha256()
    for directory, folders, files in os.walk(export_dir):
        folders.sort()
        for name in sorted(files):
            stat = os.stat(os.path.join(directory, name))
            digest.update(f"{os.path.relpath(os.path.join(directory, name), export_dir)}:{stat.st_size}:"
                          f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _new_run_dir(runs: str) -> tuple[str, str]:
    run_id = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    run_dir = os.path.join(runs, run_id)
    os.makedirs(run_dir)
    return run_id, run_dir


def _point_latest(runs: str, run_id: str) -> None:
    """`runs/latest` moves to a run once its inputs are checked: a mistyped key or path leaves it alone."""
    latest = os.path.join(runs, "latest")
    if os.path.islink(latest) or os.path.exists(latest):
        os.remove(latest)
    os.symlink(run_id, latest)


class RootLock:
    """One run (or `gc`) per root at a time: a second one refuses at once, naming the one in progress."""

    def __init__(self, root: str, holder: str):
        self.path = os.path.join(root, LOCK_FILE)
        self.holder = holder  # e.g. "run 20261130-130135-376322" or "gc"

    def __enter__(self):
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "unknown"
            self.file.close()
            raise RunInProgress(f"another run is in progress on this root ({holder}); wait for it or use "
                                f"another --root") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{self.holder}, pid {os.getpid()}")
        self.file.flush()
        return self

    def __exit__(self, *exc):
        self.file.truncate(0)
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def empty_summary(run_id: str, export_dir: str) -> dict:
    """summary.json before anything is known (contract: every outcome writes one)."""
    return {"status": "failed", "run_id": run_id, "export": export_dir, "config": None,
            "examples_per_split": None, "num_classes": None, "rejected": None, "anomalies": [],
            "candidate": None, "baseline": None, "blessed": False, "pushed_to": None, "reports": {}}


def run(export_dir: str, root: str, profile: str = "demo", overrides=(), photo_root: str = "",
        verbose: bool = True, terminal=None) -> tuple[dict, int]:
    """Runs the pipeline; returns (summary, exit status). summary.json is written whatever happens.

    `verbose=False` shows only the component lines on the terminal (standard output, or the `terminal`
    stream) and sends the rest to runs/<id>/run.log (pipeline/console.py)."""
    root = os.path.abspath(root)
    paths = local_paths(root)
    os.makedirs(paths["runs"], exist_ok=True)
    run_id, run_dir = _new_run_dir(paths["runs"])
    summary = empty_summary(run_id, export_dir)
    with Console(run_dir, verbose, terminal) as console:
        _run_in(summary, export_dir, root, paths, run_dir, profile, overrides, photo_root, console)
    if os.path.exists(console.log_path):
        summary["reports"]["run_log"] = console.log_path
    summary["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    return summary, EXIT_CODES[summary["status"]]


def _run_in(summary, export_dir, root, paths, run_dir, profile, overrides, photo_root, console) -> None:
    """Fills `summary` with the run's outcome, whatever happens."""
    run_id = summary["run_id"]
    try:
        config = build_config(profile, overrides)
        summary["config"] = as_dict(config)
        check_tables(export_dir)  # a missing folder, table or column: an InputError naming it
        from inatvision.pipeline import outcomes
        destination = config.push.destination or paths["releases"]
        with RootLock(root, f"run {run_id}"):
            _point_latest(paths["runs"], run_id)
            from inatvision.pipeline.gc import free_interrupted_outputs
            summary["interrupted_outputs_freed"] = free_interrupted_outputs(paths["metadata"], paths["artifacts"])
            with console.watching_components():
                _run_locally(config, export_dir, paths, destination, photo_root, run_id)
            outcomes.fill_from_metadata(summary, paths["metadata"], run_dir)
    except (ConfigError, InputError) as error:
        summary.update(status="input_error", error=str(error))
    except RunInProgress as error:
        summary.update(status="failed", error=str(error))
    except Exception as error:  # noqa: BLE001 - every outcome gets a summary and a status
        from inatvision.pipeline import outcomes
        summary.update(outcomes.classify_failure(error))
        with open(os.path.join(run_dir, "error.log"), "w") as f:
            f.write(traceback.format_exc())
        if summary["status"] != "input_error":
            outcomes.fill_from_metadata(summary, paths["metadata"], run_dir, failed=True)


def _run_locally(config, export_dir, paths, destination, photo_root, run_id) -> None:
    """The pipeline on TFX's LocalDagRunner; ML Metadata's pipeline_run context is named after `run_id`."""
    from tfx import v1 as tfx
    from tfx.dsl.compiler import compiler, constants
    from tfx.orchestration.portable import runtime_parameter_utils

    from inatvision.components.pusher import release_layout
    from inatvision.pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(
        config, export_dir=os.path.abspath(export_dir), pipeline_root=paths["artifacts"],
        push_destination=destination,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(paths["metadata"]),
        export_fingerprint=export_fingerprint(export_dir), releases_state=release_layout.releases_state(destination),
        photo_root=photo_root)
    compiled = compiler.Compiler().compile(pipeline)
    runtime_parameter_utils.substitute_runtime_parameter(
        compiled, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    tfx.orchestration.LocalDagRunner().run_with_ir(compiled)
