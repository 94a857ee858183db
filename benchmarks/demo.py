"""`python -m benchmarks.demo`: the demo from scratch and a cached rerun, and each stage's share.

Generates the sample export, runs the whole pipeline on a fresh root (profile demo), runs it again on
the same inputs (cached components, `no_change`), and prints the wall time of each component from ML
Metadata, with data validation's share of the fresh run. Ends with `fresh_s=<n> cached_rerun_s=<n>`.
"""
from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time

from benchmarks import _common  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

VALIDATION_STEPS = ("StatisticsGen", "CuratedSchema", "InferredSchemaGen", "ExampleValidator", "ValidationGate")


def component_seconds(metadata_path: str, since_ms: int) -> dict[str, float]:
    """Wall seconds of each component's executions that started after `since_ms`."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(config)
    type_names = {t.id: t.name for t in store.get_execution_types()}
    seconds = collections.Counter()
    for execution in store.get_executions():
        if execution.create_time_since_epoch >= since_ms:
            name = type_names[execution.type_id].rsplit(".", 1)[-1]
            seconds[name] += (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
    return dict(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default=None, help="folder for the export and root (default: a temporary one)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    from pipeline.run import run
    from pipeline.sample_export import write_sample_export

    work = args.work or tempfile.mkdtemp(prefix="inatvision-demo-")
    export_dir, root = os.path.join(work, "sample-export"), os.path.join(work, "root")
    start = time.time()
    write_sample_export(export_dir)
    summary, _ = run(export_dir, root, "demo", args.overrides)
    fresh = time.time() - start
    steps = component_seconds(os.path.join(root, "metadata.sqlite"), int(start * 1000))
    start_rerun = time.time()
    rerun, _ = run(export_dir, root, "demo", args.overrides)
    cached = time.time() - start_rerun
    for name, seconds in sorted(steps.items(), key=lambda item: -item[1]):
        print(f"{name:24s} {seconds:8.1f} s  {seconds / fresh:6.1%}")
    validation = sum(steps.get(name, 0.0) for name in VALIDATION_STEPS)
    print(f"fresh run: {summary['status']} (test top-1 {(summary.get('candidate') or {}).get('top1')}), "
          f"rerun: {rerun['status']}; validation share of the fresh run {validation / fresh:.1%} ({validation:.0f} s)")
    print(f"fresh_s={fresh:.0f} cached_rerun_s={cached:.0f}")


if __name__ == "__main__":
    main()
