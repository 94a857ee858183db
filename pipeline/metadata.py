"""Opening a root's ML Metadata store (SQLite) outside a pipeline run, and reading it by pipeline node."""
from __future__ import annotations

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2


def open_store(metadata_path: str, read_only: bool = False) -> metadata_store.MetadataStore:
    """The store of an existing root; never creates one (a pipeline run does that)."""
    modes = metadata_store_pb2.SqliteMetadataSourceConfig
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = modes.READONLY if read_only else modes.READWRITE
    return metadata_store.MetadataStore(config)


def executions_by_node(store) -> dict[str, list[metadata_store_pb2.Execution]]:
    """Every execution, by the pipeline node that ran it (its component id, e.g. `Trainer`)."""
    return {node.name.rsplit(".", 1)[-1]: store.get_executions_by_context(node.id)
            for node in store.get_contexts_by_type("node")}
