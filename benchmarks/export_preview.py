"""Export preview speed and memory on a generated export (tables only).

    python -m benchmarks.export_preview --observations 1000000

Writes the tables of a sample export (`inatvision.sample_export`, about 2 photos per observation) to a temporary
folder, then runs the preview alone in a child process. Ends with `rows_per_s=<n> peak_rss_mb=<n>`: table rows
read per second, and the child's peak resident memory (generation excluded).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time

from inatvision.sample_export import write_sample_export


def _timed_preview(export_dir: str, out_dir: str, result: multiprocessing.Queue) -> None:
    from inatvision.components.export_examples.preview import run_preview
    from inatvision.config import production

    start, cpu_start = time.perf_counter(), time.process_time()
    summary = run_preview(export_dir, out_dir, production().export)
    result.put((time.perf_counter() - start, time.process_time() - cpu_start, summary["num_classes"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--species", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        written = write_sample_export(folder, species=args.species, observations=args.observations, tables_only=True)
        context = multiprocessing.get_context("spawn")
        result = context.Queue()
        child = context.Process(target=_timed_preview, args=(folder, os.path.join(folder, "out"), result))
        child.start()
        seconds, cpu_seconds, num_classes = result.get()
        child.join()
    rows = written["taxa"] + written["observations"] + written["photos"]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({**written, "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
                      "num_classes": num_classes}))
    print(f"rows_per_s={rows / seconds:.0f} peak_rss_mb={peak_rss_mb:.0f}")


if __name__ == "__main__":
    main()
