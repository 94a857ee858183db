"""Runner file for the TFX CLI, the same pipeline `inatvision run` runs:

    tfx pipeline create --engine local --pipeline_path pipeline/local_runner.py
    tfx run create --engine local --pipeline_name inatvision

Settings come from the environment, so one file serves every machine: INATVISION_EXPORT (the export folder,
default ./sample-export), INATVISION_ROOT (default ./inatvision-root), INATVISION_PROFILE (default demo) and
INATVISION_SET (whitespace-separated `dotted.key=value` overrides, as `--set`). A run holds the root's lock,
as `inatvision run` does, and frees what killed runs left half-written. `summary.json` and the exit codes
are `inatvision run`'s: here the outcome is in ML Metadata and `releases/`.
"""
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx import v1 as tfx  # noqa: E402

from inatvision.components.pusher import release_layout  # noqa: E402
from inatvision.config import build_config, local_paths  # noqa: E402
from inatvision.pipeline.gc import free_interrupted_outputs  # noqa: E402
from inatvision.pipeline.pipeline import create_pipeline  # noqa: E402
from inatvision.pipeline.run import RootLock, RunInProgress, export_fingerprint  # noqa: E402


def settings() -> dict:
    """The export, root and configuration named by the environment."""
    return {
        "export_dir": os.path.abspath(os.environ.get("INATVISION_EXPORT", "sample-export")),
        "root": os.path.abspath(os.environ.get("INATVISION_ROOT", "inatvision-root")),
        "config": build_config(os.environ.get("INATVISION_PROFILE", "demo"),
                               os.environ.get("INATVISION_SET", "").split()),
    }


def build(export_dir: str, root: str, config) -> tfx.dsl.Pipeline:
    paths = local_paths(root)
    destination = config.push.destination or paths["releases"]
    return create_pipeline(
        config, export_dir=export_dir, pipeline_root=paths["artifacts"], push_destination=destination,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(paths["metadata"]),
        export_fingerprint=export_fingerprint(export_dir), releases_state=release_layout.releases_state(destination))


def main() -> None:
    chosen = settings()
    pipeline = build(**chosen)
    paths = local_paths(chosen["root"])
    os.makedirs(chosen["root"], exist_ok=True)
    try:
        with RootLock(chosen["root"], "tfx run"):
            free_interrupted_outputs(paths["metadata"], paths["artifacts"])
            tfx.orchestration.LocalDagRunner().run(pipeline)
    except RunInProgress as error:
        sys.exit(f"{chosen['root']}: {error}")


if __name__ == "__main__":
    main()
