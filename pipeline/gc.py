"""`inatvision gc --keep N`: frees the artifacts of old runs, never a release or its lineage.

Runs are ML Metadata `pipeline_run` contexts. The newest N runs keep everything they
used or produced; every release keeps the whole upstream lineage of the model it
shipped (model_card.json's artifact ids, walked back through the executions that
produced them). Everything else under the pipeline root is deleted and marked DELETED
in ML Metadata, so TFX's cache never reuses it.
"""
from __future__ import annotations

import os
import shutil

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.pusher import release_layout


def _store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE
    return metadata_store.MetadataStore(config)


def upstream_lineage(store, artifact_ids: set[int]) -> set[int]:
    """The artifacts and every artifact upstream of them (inputs of the executions that made them)."""
    seen, frontier = set(), set(artifact_ids)
    while frontier:
        seen |= frontier
        events = store.get_events_by_artifact_ids(list(frontier))
        producers = {e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT}
        inputs = store.get_events_by_execution_ids(list(producers)) if producers else []
        frontier = {e.artifact_id for e in inputs if e.type == metadata_store_pb2.Event.INPUT} - seen
    return seen


def release_artifact_ids(destination: str) -> set[int]:
    ids = set()
    for _, path in release_layout.complete_releases(destination):
        lineage = release_layout.read_model_card(path).get("lineage", {})
        ids |= {int(value) for value in lineage.values() if isinstance(value, int)}
    return ids


def collect_garbage(metadata_path: str, artifacts_root: str, destination: str, keep: int) -> dict:
    """Deletes what neither the newest `keep` runs nor any release needs; returns counts and bytes freed."""
    store = _store(metadata_path)
    runs = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.create_time_since_epoch)
    kept_runs = runs[-keep:] if keep > 0 else []
    needed = set()
    for run in kept_runs:
        needed |= {a.id for a in store.get_artifacts_by_context(run.id)}
    needed = upstream_lineage(store, needed | release_artifact_ids(destination))
    root = os.path.abspath(artifacts_root) + os.sep
    freed_bytes, deleted = 0, []
    for artifact in store.get_artifacts():
        if artifact.id in needed or artifact.state != metadata_store_pb2.Artifact.LIVE:
            continue
        if not artifact.uri or not os.path.abspath(artifact.uri).startswith(root):
            continue
        freed_bytes += _size(artifact.uri)
        shutil.rmtree(artifact.uri, ignore_errors=True) if os.path.isdir(artifact.uri) else (
            os.path.exists(artifact.uri) and os.remove(artifact.uri))
        artifact.state = metadata_store_pb2.Artifact.DELETED
        deleted.append(artifact)
    if deleted:
        store.put_artifacts(deleted)
    return {"runs": len(runs), "runs_kept": len(kept_runs), "artifacts_deleted": len(deleted),
            "artifacts_kept": len(needed), "freed_mb": round(freed_bytes / 2**20, 1)}


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
