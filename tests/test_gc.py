"""`gc` and every run free the half-written outputs of interrupted executions, and nothing else."""
import os

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from inatvision.pipeline import gc

Execution = metadata_store_pb2.Execution


def _store_with_executions(metadata_path: str, states: dict[str, list]) -> tuple[object, dict]:
    """An ML Metadata store with one node context per node and executions in the given states."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path  # created here, as a run's first component creates it
    store = metadata_store.MetadataStore(config)
    node_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Executor"))
    ids = {}
    for node, node_states in states.items():
        [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=node_type, name=f"inatvision.{node}")])
        for state in node_states:
            [execution_id] = store.put_executions([Execution(type_id=execution_type, last_known_state=state)])
            store.put_attributions_and_associations(
                [], [metadata_store_pb2.Association(context_id=context_id, execution_id=execution_id)])
            ids.setdefault(node, []).append(execution_id)
    return store, ids


def _write(path: str, size: int = 1000) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x" * size)
    return path


def test_only_unfinished_executions_unregistered_outputs_are_freed(tmp_path):
    metadata, artifacts = str(tmp_path / "metadata.sqlite"), str(tmp_path / "artifacts")
    store, ids = _store_with_executions(metadata, {
        "ExportExamples": [Execution.COMPLETE, Execution.RUNNING],  # a finished export, then one killed inside
        "Trainer": [Execution.FAILED, Execution.CACHED]})
    done_export, killed_export = ids["ExportExamples"]
    failed_trainer, cached_trainer = ids["Trainer"]
    finished = _write(f"{artifacts}/ExportExamples/examples/{done_export}/Split-train/data-0.tfrecord")
    partial = _write(f"{artifacts}/ExportExamples/examples/{killed_export}/Split-train/data-0.tfrecord", 2**20)
    partial_report = _write(f"{artifacts}/ExportExamples/export_report/{killed_export}/report.json")
    failed_model = _write(f"{artifacts}/Trainer/model/{failed_trainer}/Format-Serving/saved_model.pb")
    # the Trainer's resume state and logs are keyed by inputs, not by execution; an id-like key is kept too
    state = _write(f"{artifacts}/Trainer/trainer_state/{failed_trainer}/chief/checkpoint")
    logs = _write(f"{artifacts}/Trainer/tensorboard/0123abcd/train/events")
    system = _write(f"{artifacts}/Trainer/.system/executor_execution/{failed_trainer}/output.pb")

    freed = gc.free_interrupted_outputs(metadata, artifacts)

    assert freed == {"folders": 3, "freed_mb": 1.0}  # the killed export's two outputs, the failed model
    for path in (partial, partial_report, failed_model):
        assert not os.path.exists(os.path.dirname(path)) and not os.path.exists(path)
    assert not os.path.exists(f"{artifacts}/Trainer/model/{failed_trainer}")
    for path in (finished, state, logs, system):
        assert os.path.exists(path), path
    assert gc.free_interrupted_outputs(metadata, artifacts) == {"folders": 0, "freed_mb": 0.0}


def test_the_trainers_durable_folders_are_the_ones_gc_keeps():
    from inatvision.components.trainer import run

    assert {run.STATE_DIR, run.TENSORBOARD_DIR} == set(gc.DURABLE_FOLDERS)


def test_an_unfinished_executions_folder_that_an_artifact_uses_is_kept(tmp_path):
    metadata, artifacts = str(tmp_path / "metadata.sqlite"), str(tmp_path / "artifacts")
    store, ids = _store_with_executions(metadata, {"Transform": [Execution.RUNNING]})
    [execution_id] = ids["Transform"]
    used = _write(f"{artifacts}/Transform/transform_graph/{execution_id}/metadata/schema.pbtxt")
    artifact_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="TransformGraph"))
    store.put_artifacts([metadata_store_pb2.Artifact(
        type_id=artifact_type, uri=f"{artifacts}/Transform/transform_graph/{execution_id}",
        state=metadata_store_pb2.Artifact.PENDING)])
    assert gc.free_interrupted_outputs(metadata, artifacts) == {"folders": 0, "freed_mb": 0.0}
    assert os.path.exists(used)


def test_a_root_without_metadata_frees_nothing(tmp_path):
    assert gc.free_interrupted_outputs(str(tmp_path / "metadata.sqlite"), str(tmp_path)) == {
        "folders": 0, "freed_mb": 0.0}
