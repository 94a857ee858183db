"""The Beam data steps through Beam's portable job API (the worker model of Flink, Spark and Dataflow): a job
service and an external SDK worker pool in their own processes, started and stopped here, against the
DirectRunner on the same tiny export. Same examples, same statistics counts."""
import os
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.components.statistics_gen.executor import Executor as StatisticsExecutor
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import standard_artifacts

from inatvision import features
from inatvision.config import build_config
from inatvision.sample_export import write_sample_export
from inatvision.components.trainer.distribution import free_ports
from tests.test_export_component import run_executor

SHARDS = 2


def _wait_for(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}: {process.stdout.read()[-2000:]}")
        try:
            with socket.create_connection(("localhost", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"nothing listens on localhost:{port} after {timeout} s")


@pytest.fixture(scope="module")
def portable_args():
    """`beam.*` keys for a job service and a worker pool on free ports; the venv's bin on PATH for the workers."""
    job_port, pool_port = free_ports(2)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
           "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    services = [
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                          "--port", str(job_port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True),
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                          f"--service_port={pool_port}"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True),
    ]
    try:
        for port, process in zip((job_port, pool_port), services):
            _wait_for(port, process)
        config = build_config("demo", ["beam.runner=PortableRunner", f"beam.job_endpoint=localhost:{job_port}",
                                       "beam.environment_type=EXTERNAL",
                                       f"beam.environment_config=localhost:{pool_port}",
                                       # the job's state stream ends after this many seconds (Beam's default 60)
                                       "beam.extra_args=--job_server_timeout=900"])
        yield config.beam.pipeline_args()
    finally:
        for process in services:
            process.terminate()
        for process in services:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _statistics(examples, args: list[str], out: str) -> dict:
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = out
    StatisticsExecutor(BaseBeamExecutor.Context(beam_pipeline_args=args)).Do(
        {"examples": [examples]}, {"statistics": [statistics]}, {})
    counts = {}
    for split in features.SPLITS:
        dataset = stats_artifact_utils.load_statistics(statistics, split).proto().datasets[0]
        counts[split] = (dataset.num_examples, sorted(
            (f.path.step[0], f.num_stats.common_stats.num_non_missing or f.string_stats.common_stats.num_non_missing
             or f.bytes_stats.common_stats.num_non_missing) for f in dataset.features))
    return counts


def _photo_ids(examples, split: str) -> list[int]:
    files = tf.io.gfile.glob(os.path.join(examples.uri, f"Split-{split}", "data_tfrecord-*"))
    return sorted(tf.train.Example.FromString(r.numpy()).features.feature[features.PHOTO_ID].int64_list.value[0]
                  for r in tf.data.TFRecordDataset(files))


def test_export_and_statistics_on_the_portable_runner_match_the_direct_runner(tmp_path, portable_args):
    export_dir = str(tmp_path / "export")
    write_sample_export(export_dir, species=6, seed=5)
    overrides = ["export.max_rejected_fraction=0.5", f"export.num_shards={SHARDS}",
                 "export.min_observations=5", "export.min_research_grade=2"]  # several classes from 6 species
    portable, _, portable_report = run_executor(export_dir, str(tmp_path / "portable"), overrides,
                                                beam_args=portable_args)
    direct, _, direct_report = run_executor(export_dir, str(tmp_path / "direct"), overrides)
    for split in features.SPLITS:
        assert _photo_ids(portable, split) == _photo_ids(direct, split)
        assert len(tf.io.gfile.glob(os.path.join(portable.uri, f"Split-{split}", "data_tfrecord-*"))) == SHARDS
    assert sum(len(_photo_ids(direct, split)) for split in features.SPLITS) > 0
    assert portable_report["photos_rejected_total"] == direct_report["photos_rejected_total"]
    portable_stats = _statistics(portable, portable_args, str(tmp_path / "portable_stats"))
    direct_stats = _statistics(direct, ["--runner=DirectRunner"], str(tmp_path / "direct_stats"))
    assert portable_stats == direct_stats
    assert portable_stats["train"][0] == len(_photo_ids(direct, "train"))
