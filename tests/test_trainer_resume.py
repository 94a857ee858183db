"""A Trainer killed mid-run resumes from its last finished epoch (BackupAndRestore), not epoch 0, and keeps its
best epoch so far."""
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from inatvision.components.trainer import run
from inatvision.config import build_config
from tests import examples_factory

LEAVES = [201, 202]


def _epochs(state_root: str) -> list[int]:
    rows = []
    for directory, _, files in os.walk(state_root):
        if "epochs.jsonl" in files:
            rows += [json.loads(line)["epoch"] for line in open(os.path.join(directory, "epochs.jsonl"))]
    return rows


def _trainer_process(tmp_path, overrides: list[str]):
    """(the examples' files, the configuration, the state root, the command that runs the Trainer's run_fn on them in a process of
    its own): two leaves, 8 training and 2 evaluation photos each, 2 steps of 8 per epoch, no precise BatchNorm."""
    files = examples_factory.write_examples_artifact(str(tmp_path), LEAVES, {"train": 8, "eval": 2})
    taxonomy = str(tmp_path / "taxonomy.csv")
    examples_factory.write_taxonomy(taxonomy, LEAVES)
    config = build_config("demo", ["trainer.global_batch_size=8", "trainer.steps_per_epoch=2",
                                   "trainer.precise_batchnorm_batches=0", *overrides])
    state_root = str(tmp_path / "state")
    args = {"train_files": [files["train"]], "eval_files": [files["eval"]],
            "transform_graph_path": examples_factory.write_transform_graph(
                str(tmp_path), files["train"], config.trainer.image_size),
            "serving_model_dir": str(tmp_path / "serving"), "model_run_dir": str(tmp_path / "run"),
            "custom_config": {"config": config.to_json(), "taxonomy_path": taxonomy, "state_root": state_root}}
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps(args))
    return files, config, state_root, [sys.executable, "-m", "tests.train_in_subprocess", str(args_file)]


def test_killed_training_resumes_from_the_last_epoch(tmp_path):
    _, _, state_root, command = _trainer_process(tmp_path, ["trainer.epochs=3"])

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


def _rows(state_root: str) -> list[dict]:
    """The finished epochs' rows of epochs.jsonl; a line still being written is left for the next read."""
    rows = []
    for directory, _, files in os.walk(state_root):
        if "epochs.jsonl" in files:
            text = open(os.path.join(directory, "epochs.jsonl")).read()
            rows += [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]
    return rows


def _weights_digest(config, weights_path: str) -> str:
    """The digest `run_fn` prints and reports as weights_sha256, of a classifier holding a weights checkpoint."""
    import tf_keras as keras

    from inatvision.components.trainer import model as classifier

    keras.mixed_precision.set_global_policy("float32")
    model = classifier.build_classifier(len(LEAVES), config.trainer)
    model.load_weights(weights_path).expect_partial()
    return hashlib.sha256(b"".join(weights.tobytes() for weights in model.get_weights())).hexdigest()


def test_the_best_epoch_before_a_kill_is_the_one_exported(tmp_path):
    """A resumed Trainer keeps the best epoch recorded before the kill: it exports that epoch's weights, and the
    summary's best_val_top1 (the best over every recorded epoch) is the exported model's eval top-1.

    The worse epoch after the resume is made by the data, not left to chance: the first process trains on
    photos of one colour per class (the eval split's colours) and is killed once an epoch reached the top-1 that
    cannot be beaten, 1.0 (BatchNorm momentum 0: the eval statistics are the last training batch's, so the first
    epochs reach it on four eval photos). The train file is then rewritten in place (the state folder is keyed
    by its path, so the run resumes) with the two colours swapped: every epoch after the resume learns the
    opposite of the eval split, so its top-1 falls; none can beat 1.0, so the best checkpoint must not change.
    Before the fix the checkpoint's best started from scratch in the resumed process and its first epoch
    replaced the best weights, however worse.
    """
    files, config, state_root, command = _trainer_process(tmp_path, ["trainer.epochs=6",
                                                                     "trainer.batchnorm_momentum=0.0"])

    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # no pipe to fill
    deadline = time.time() + 600
    while (not any(row["val_top1"] == 1.0 for row in _rows(state_root)) and time.time() < deadline
           and first.poll() is None):
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)  # a power cut after the best epoch
    first.wait()
    before = _rows(state_root)
    assert max(row["val_top1"] for row in before) == 1.0, before
    assert len(before) < config.trainer.epochs, "the first process should have been killed before the last epoch"
    best_dir = glob.glob(os.path.join(state_root, run.STATE_DIR, "*", "best"))[0]
    shutil.copytree(best_dir, tmp_path / "best_at_kill")  # the best epoch's weights, as the kill left them

    colours = examples_factory.COLOURS
    swapped = [examples_factory.example(label, taxon, examples_factory.jpeg(colours[1 - label], photo), 100 + photo,
                                        lat=10.0 * label, lng=-20.0 * label)
               for label, taxon in enumerate(LEAVES) for photo in range(8 * label, 8 * label + 8)]
    assert examples_factory.write_split(os.path.dirname(files["train"]), swapped) == files["train"]

    second = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    rows = _rows(state_root)
    after = rows[len(before):]
    assert [row["epoch"] for row in rows] == list(range(config.trainer.epochs))
    assert after and min(row["val_top1"] for row in after) < 1.0, rows  # a worse epoch came after the resume
    summary = json.load(open(tmp_path / "run" / "training_summary.json"))
    assert summary["best_val_top1"] == max(row["val_top1"] for row in rows) == 1.0
    assert summary["best_weights_val_top1"] == summary["best_val_top1"], summary
    assert summary["weights_sha256"] == _weights_digest(config, str(tmp_path / "best_at_kill" / "weights"))
