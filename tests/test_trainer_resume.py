"""A Trainer killed mid-run resumes from its last finished epoch (BackupAndRestore), not epoch 0."""
import json
import os
import signal
import subprocess
import sys
import time

from inatvision.config import build_config
from tests import examples_factory

LEAVES = [201, 202]


def _epochs(state_root: str) -> list[int]:
    rows = []
    for directory, _, files in os.walk(state_root):
        if "epochs.jsonl" in files:
            rows += [json.loads(line)["epoch"] for line in open(os.path.join(directory, "epochs.jsonl"))]
    return rows


def test_killed_training_resumes_from_the_last_epoch(tmp_path):
    files = examples_factory.write_examples_artifact(str(tmp_path), LEAVES, {"train": 8, "eval": 2})
    taxonomy = str(tmp_path / "taxonomy.csv")
    examples_factory.write_taxonomy(taxonomy, LEAVES)
    config = build_config("demo", ["trainer.epochs=3", "trainer.global_batch_size=8", "trainer.steps_per_epoch=2",
                                   "trainer.precise_batchnorm_batches=0"])
    state_root = str(tmp_path / "state")
    args = {"train_files": [files["train"]], "eval_files": [files["eval"]],
            "transform_graph_path": examples_factory.write_transform_graph(
                str(tmp_path), files["train"], config.trainer.image_size),
            "serving_model_dir": str(tmp_path / "serving"), "model_run_dir": str(tmp_path / "run"),
            "custom_config": {"config": config.to_json(), "taxonomy_path": taxonomy, "state_root": state_root}}
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps(args))
    command = [sys.executable, "-m", "tests.train_in_subprocess", str(args_file)]

    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while not _epochs(state_root) and time.time() < deadline and first.poll() is None:
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)  # a power cut after the first epoch
    first.wait()
    assert _epochs(state_root) == [0], "the first process should have finished exactly one epoch"
    assert not os.path.exists(tmp_path / "serving" / "saved_model.pb")

    second = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Trainer: epoch 2/3" in second.stdout + second.stderr  # the progress line of each epoch run
    assert "Trainer: epoch 1/3" not in second.stdout + second.stderr
    assert _epochs(state_root) == [0, 1, 2]  # the same three epochs in total, none twice
    summary = json.load(open(tmp_path / "run" / "training_summary.json"))
    assert summary["epochs_run"] == 3
    assert os.path.exists(tmp_path / "serving" / "saved_model.pb")
