"""`inatvision gc --keep N`: frees the artifacts of old runs, never a release or its lineage.

Runs are ML Metadata `pipeline_run` contexts. The newest N runs keep everything they
used or produced; every release keeps the whole upstream lineage of the model it
shipped (model_card.json's artifact ids, walked back through the executions that
produced them). Everything else under the pipeline root is deleted and marked DELETED
in ML Metadata, so TFX's cache never reuses it.

A run killed inside a component leaves that component's output folders half-written and
registered nowhere (TFX records a component's outputs only when it finishes). They are
found on disk and freed by every run before it starts and by `gc`, both holding the
root's lock, so no run is writing them.
"""
from __future__ import annotations

import os
import shutil

from ml_metadata.proto import metadata_store_pb2

from inatvision.components.pusher import release_layout
from inatvision.pipeline.metadata import executions_by_node, open_store

# Folders beside a component's outputs that outlive its executions: the Trainer's resume state and TensorBoard
# logs (components/trainer/run.py STATE_DIR, TENSORBOARD_DIR), keyed by the Trainer's inputs.
DURABLE_FOLDERS = ("trainer_state", "tensorboard")


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


def interrupted_output_dirs(store, artifacts_root: str) -> list[str]:
    """Output folders of executions that never finished: `<node>/<output>/<execution id>` under the pipeline
    root, whose execution is neither COMPLETE nor CACHED and which no artifact in ML Metadata uses.

    The Trainer's resume state and TensorBoard logs (DURABLE_FOLDERS) are no execution's outputs and are
    never returned."""
    finished = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    unfinished = {execution.id: node for node, executions in executions_by_node(store).items()
                  for execution in executions if execution.last_known_state not in finished}
    in_use = {os.path.abspath(a.uri) for a in store.get_artifacts() if a.uri}
    found = []
    for execution_id, node in sorted(unfinished.items()):
        node_dir = os.path.join(artifacts_root, node)
        if not os.path.isdir(node_dir):
            continue
        for output in sorted(os.listdir(node_dir)):
            path = os.path.abspath(os.path.join(node_dir, output, str(execution_id)))
            if output.startswith(".") or output in DURABLE_FOLDERS:
                continue
            if os.path.isdir(path) and path not in in_use:
                found.append(path)
    return found


def _free_interrupted(store, artifacts_root: str) -> dict:
    paths = interrupted_output_dirs(store, artifacts_root)
    return {"folders": len(paths), "freed_mb": round(sum(map(_delete, paths)) / 2**20, 1)}


def free_interrupted_outputs(metadata_path: str, artifacts_root: str) -> dict:
    """Deletes the outputs of interrupted executions (call with the root's lock held)."""
    if not os.path.exists(metadata_path):
        return {"folders": 0, "freed_mb": 0.0}
    return _free_interrupted(open_store(metadata_path), artifacts_root)


def collect_garbage(metadata_path: str, artifacts_root: str, destination: str, keep: int) -> dict:
    """Deletes what neither the newest `keep` runs nor any release needs, and the outputs of interrupted
    executions; returns counts and bytes freed. Call with the root's lock held."""
    store = open_store(metadata_path)
    interrupted = _free_interrupted(store, artifacts_root)
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
        freed_bytes += _delete(artifact.uri)
        artifact.state = metadata_store_pb2.Artifact.DELETED
        deleted.append(artifact)
    if deleted:
        store.put_artifacts(deleted)
    return {"runs": len(runs), "runs_kept": len(kept_runs), "artifacts_deleted": len(deleted),
            "artifacts_kept": len(needed), "interrupted_outputs_deleted": interrupted["folders"],
            "freed_mb": round(freed_bytes / 2**20 + interrupted["freed_mb"], 1)}


def _delete(path: str) -> int:
    """Removes a file or folder; returns the bytes it held."""
    if os.path.isfile(path):
        size = os.path.getsize(path)
        os.remove(path)
        return size
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    shutil.rmtree(path, ignore_errors=True)
    return size
