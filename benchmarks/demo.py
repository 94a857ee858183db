"""`python -m benchmarks.demo`: the demo from scratch and a cached rerun, and each stage's share.

Generates the sample export, runs the whole pipeline on a fresh root (profile demo), runs it again on
the same inputs (cached components, `no_change`), and prints the wall time of each component from ML
Metadata, with data validation's share of the fresh run. Ends with `fresh_s=<n> cached_rerun_s=<n>`.

`--root ROOT` runs nothing: it prints the same table for the first run recorded in an existing root
(for example the one `make demo` wrote), its wall time taken from the first to the last execution.
"""
from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time

from benchmarks import _common  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

VALIDATION_STEPS = ("StatisticsGen", "CuratedSchema", "InferredSchemaGen", "ExampleValidator", "ValidationGate")


def _store(metadata_path: str):
    from inatvision.pipeline.metadata import open_store

    return open_store(metadata_path, read_only=True)


def component_seconds(store, executions) -> dict[str, float]:
    """Wall seconds of the given executions, by pipeline node (component id, e.g. `GeoTrainer`)."""
    from inatvision.pipeline.metadata import executions_by_node

    wanted = {e.id for e in executions}
    seconds = collections.Counter()
    for node, node_executions in executions_by_node(store).items():
        for execution in node_executions:
            if execution.id in wanted:
                seconds[node] += (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
    return dict(seconds)


def print_shares(steps: dict[str, float], wall: float) -> None:
    for name, seconds in sorted(steps.items(), key=lambda item: -item[1]):
        print(f"{name:24s} {seconds:8.1f} s  {seconds / wall:6.1%}")
    validation = sum(steps.get(name, 0.0) for name in VALIDATION_STEPS)
    print(f"validation share of the run {validation / wall:.1%} ({validation:.0f} s of {wall:.0f} s)")


def report_root(root: str) -> None:
    """Stage times of the first pipeline run recorded in `root`, from ML Metadata."""
    store = _store(os.path.join(root, "metadata.sqlite"))
    first_run = min(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.create_time_since_epoch)
    executions = store.get_executions_by_context(first_run.id)
    wall = (max(e.last_update_time_since_epoch for e in executions)
            - min(e.create_time_since_epoch for e in executions)) / 1000
    print_shares(component_seconds(store, executions), wall)
    print(f"first_run_s={wall:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default=None, help="folder for the export and root (default: a temporary one)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--root", default=None, help="report the first run of an existing root; run nothing")
    args = parser.parse_args()
    if args.root:
        report_root(args.root)
        return
    from inatvision.pipeline.run import run
    from inatvision.sample_export import write_sample_export

    work = args.work or tempfile.mkdtemp(prefix="inatvision-demo-")
    export_dir, root = os.path.join(work, "sample-export"), os.path.join(work, "root")
    start = time.time()
    write_sample_export(export_dir)
    summary, _ = run(export_dir, root, "demo", args.overrides)
    fresh = time.time() - start
    store = _store(os.path.join(root, "metadata.sqlite"))
    steps = component_seconds(store, [e for e in store.get_executions()
                                      if e.create_time_since_epoch >= int(start * 1000)])
    start_rerun = time.time()
    rerun, _ = run(export_dir, root, "demo", args.overrides)
    cached = time.time() - start_rerun
    print_shares(steps, fresh)
    print(f"fresh run: {summary['status']} (test top-1 {(summary.get('candidate') or {}).get('top1')}), "
          f"rerun: {rerun['status']}")
    print(f"fresh_s={fresh:.0f} cached_rerun_s={cached:.0f}")


if __name__ == "__main__":
    main()
