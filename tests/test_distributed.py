"""Distributed training, executed on CPU: MirroredStrategy over two logical devices, MultiWorkerMirroredStrategy
over two processes on loopback through the Trainer's own run_fn, and fast failures of a bad cluster."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from inatvision.components.trainer import distribution
from inatvision.config import build_config
from tests import examples_factory

LEAVES = [301, 302]
WEIGHTS_LINE = re.compile(r"trainer: worker (\d) of 2 weights sha256=([0-9a-f]{64})")


def tf_config(addresses: list[str], index: int) -> str:
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


# --- the decision and TF_CONFIG checks (pure, fast) ---

def test_strategy_follows_where_it_runs():
    assert distribution.parse_tf_config(None) is None
    assert distribution.parse_tf_config(tf_config(["localhost:2001"], 0)) is None  # one worker: no cluster
    cluster = distribution.parse_tf_config(tf_config(["localhost:2001", "localhost:2002"], 1))
    assert (cluster.rank, cluster.is_chief, cluster.peers) == (1, False, ("localhost:2001",))
    vertex = distribution.parse_tf_config(json.dumps({  # Vertex AI: workerpool0 is the chief
        "cluster": {"chief": ["localhost:2000"], "worker": ["localhost:2001"]}, "task": {"type": "chief"}}))
    assert vertex.is_chief and vertex.members == ("localhost:2000", "localhost:2001")
    assert distribution.choose(cluster, gpus=0) == "multi_worker"
    assert distribution.choose(None, gpus=4) == "mirrored"
    assert distribution.choose(None, gpus=1) == "default"
    assert distribution.choose(None, gpus=0) == "default"


@pytest.mark.parametrize("text, named", [
    ("{not json", "not JSON"),
    (tf_config(["localhost:2001", "localhost"], 0), "'localhost'"),
    (tf_config(["localhost:2001", "localhost:99999"], 0), "'localhost:99999'"),
    (tf_config(["localhost:2001", "no-such-host.invalid:2002"], 0), "no-such-host.invalid:2002"),
    (tf_config(["localhost:2001", "localhost:2002"], 2), "is not in the cluster"),
    (json.dumps({"cluster": {"worker": ["localhost:1"], "ps": ["localhost:2"]}, "task": {"type": "worker"}}), "ps"),
])
def test_malformed_tf_config_fails_naming_what_is_wrong(text, named):
    with pytest.raises(distribution.DistributionError, match=re.escape(named) if named != "ps" else "parameter"):
        distribution.parse_tf_config(text)


def test_global_batch_must_divide_among_replicas():
    class Two:
        num_replicas_in_sync = 2
    with pytest.raises(distribution.DistributionError, match="multiple of 2"):
        distribution.check_global_batch(7, Two())


# --- processes ---

def _env(**extra) -> dict:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def test_absent_worker_fails_fast_naming_its_address(tmp_path):
    """Worker 0 of two, worker 1 never comes: the process ends within the timeout (not a hang), naming it."""
    here, absent = (f"localhost:{port}" for port in distribution.free_ports(2))
    code = ("from inatvision.components.trainer import distribution; "
            "distribution.strategy_for(worker_timeout_s=5)")
    started = time.time()
    done = subprocess.run([sys.executable, "-c", code], env=_env(TF_CONFIG=tf_config([here, absent], 0)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (-signal.SIGTERM, -signal.SIGKILL), done.stderr[-2000:]  # ended by the watchdog
    assert f"no answer from {absent}" in done.stderr
    assert "trainer.worker_timeout_s" in done.stderr
    assert time.time() - started < 60


def test_two_logical_devices_train_to_the_same_weights_as_one(tmp_path):
    """5 steps of the project's model (71 px, no flip or jitter, BatchNorm frozen): max |diff| <= 1e-4."""
    files = examples_factory.write_examples_artifact(str(tmp_path), [1, 2, 3], {"train": 8})
    out = tmp_path / "mirrored.json"
    image_size = build_config("demo").trainer.image_size
    graph = examples_factory.write_transform_graph(str(tmp_path), files["train"], image_size)
    done = subprocess.run([sys.executable, "-m", "tests.mirrored_in_subprocess", files["train"], "3", graph, str(out)],
                          env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    assert result["max_weight_change"] > 1e-3  # the weights did move
    assert result["max_abs_diff"] <= 1e-4, result


class Workers:
    """Two Trainer processes (tests/train_in_subprocess.py, the real run_fn) joined by TF_CONFIG on loopback."""

    def __init__(self, tmp_path, overrides: list[str]):
        self.tmp = tmp_path
        self.transform_root = tmp_path / "transform"  # the Transform graph's SavedModel is not an exported model
        files = examples_factory.write_examples_artifact(str(tmp_path), LEAVES, {"train": 8, "eval": 2}, shards=2)
        taxonomy = str(tmp_path / "taxonomy.csv")
        examples_factory.write_taxonomy(taxonomy, LEAVES)
        config = build_config("demo", ["trainer.global_batch_size=8", "trainer.shuffle_buffer=64",
                                       "trainer.worker_timeout_s=300", *overrides])
        self.state_root = str(tmp_path / "state")
        args = {"train_files": [files["train"]], "eval_files": [files["eval"]],
                "transform_graph_path": examples_factory.write_transform_graph(
                    str(self.transform_root), files["train"], config.trainer.image_size),
                "serving_model_dir": str(tmp_path / "model" / "Format-Serving"),
                "model_run_dir": str(tmp_path / "run"),
                "custom_config": {"config": config.to_json(), "taxonomy_path": taxonomy,
                                  "state_root": self.state_root}}
        self.args_file = tmp_path / "args.json"
        self.args_file.write_text(json.dumps(args))

    def start(self) -> list[subprocess.Popen]:
        addresses = [f"localhost:{port}" for port in distribution.free_ports(2)]
        command = [sys.executable, "-m", "tests.train_in_subprocess", str(self.args_file)]
        return [subprocess.Popen(command, env=_env(TF_CONFIG=tf_config(addresses, index)), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for index in range(2)]

    def epochs(self) -> list[int]:
        rows = []
        for path in glob.glob(os.path.join(self.state_root, "**", "epochs.jsonl"), recursive=True):
            rows += [json.loads(line)["epoch"] for line in open(path)]
        return rows

    def summary(self) -> dict:
        return json.loads((self.tmp / "run" / "training_summary.json").read_text())

    def exported_models(self) -> list[str]:
        return [path for path in glob.glob(str(self.tmp / "**" / "saved_model.pb"), recursive=True)
                if not path.startswith(str(self.transform_root))]


def _finish(processes, timeout=900) -> list[str]:
    outputs = [p.communicate(timeout=timeout)[0] for p in processes]
    for p, output in zip(processes, outputs):
        assert p.returncode == 0, output[-4000:]
    return outputs


def _digests(outputs: list[str]) -> dict[int, str]:
    found = {}
    for output in outputs:
        for worker, digest in WEIGHTS_LINE.findall(output):
            found[int(worker)] = digest
    return found


def test_two_workers_under_mixed_precision_resume_after_one_is_killed_mid_epoch(tmp_path):
    """MultiWorkerMirroredStrategy through the Trainer's run_fn, mixed_float16, file-level shards. Worker 1 is
    killed in epoch 2 of 2 (the chief, its collective waiting on the dead peer, is stopped too, as a scheduler
    would); both restarted resume from the epoch-1 backup and end with identical weights, finite losses and one
    exported model. Two steps an epoch: float16 on CPU is slow, and a step takes seconds, the kill's window."""
    workers = Workers(tmp_path, ["trainer.epochs=2", "trainer.steps_per_epoch=2", "trainer.precision=mixed_float16",
                                 "trainer.precise_batchnorm_batches=1"])
    first = workers.start()
    deadline = time.time() + 900
    while not workers.epochs() and time.time() < deadline and all(p.poll() is None for p in first):
        time.sleep(0.2)
    assert workers.epochs() == [0], [p.poll() for p in first]
    first[1].send_signal(signal.SIGKILL)  # mid-epoch: epoch 1 of 2 has started
    first[0].send_signal(signal.SIGKILL)
    for p in first:
        p.wait()
    assert not workers.exported_models()
    digests = _digests(_finish(workers.start()))
    assert sorted(digests) == [0, 1] and digests[0] == digests[1], digests
    assert workers.epochs() == [0, 1]  # epoch 0 was not run again
    summary = workers.summary()
    assert (summary["strategy"], summary["num_workers"], summary["num_replicas"]) == ("multi_worker", 2, 2)
    assert summary["weights_sha256"] == digests[0]
    assert summary["epochs_run"] == 2
    assert all(loss == loss and abs(loss) < 1e6 for loss in summary["history"]["loss"])  # finite
    assert workers.exported_models() == [str(tmp_path / "model" / "Format-Serving" / "saved_model.pb")]
    assert not glob.glob(str(tmp_path / "**" / ".workertemp_*"), recursive=True)  # worker 1 removed its copy
