"""Runner file for the TFX CLI (`tfx pipeline create --engine local --pipeline_path pipeline/local_runner.py`).

Paths come from the environment so the same file serves every machine:
INATVISION_EXPORT (the export folder), INATVISION_ROOT (default ./inatvision-root),
INATVISION_PROFILE (default demo). `inatvision run` is the richer front end to the same pipeline.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx import v1 as tfx  # noqa: E402

from components.pusher import release_layout  # noqa: E402
from pipeline.config import build_config  # noqa: E402
from pipeline.config import local_paths  # noqa: E402
from pipeline.pipeline import create_pipeline  # noqa: E402
from pipeline.run import export_fingerprint  # noqa: E402


def build():
    export_dir = os.path.abspath(os.environ.get("INATVISION_EXPORT", "sample-export"))
    paths = local_paths(os.path.abspath(os.environ.get("INATVISION_ROOT", "inatvision-root")))
    config = build_config(os.environ.get("INATVISION_PROFILE", "demo"))
    destination = config.push.destination or paths["releases"]
    return create_pipeline(
        config, export_dir=export_dir, pipeline_root=paths["artifacts"], push_destination=destination,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(paths["metadata"]),
        export_fingerprint=export_fingerprint(export_dir), releases_state=release_layout.releases_state(destination))


if __name__ == "__main__":
    tfx.orchestration.LocalDagRunner().run(build())
