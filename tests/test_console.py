"""The console of `inatvision run` (pipeline/console.py): component lines on the terminal, the rest in run.log."""
import io
import logging
import os
import sys

from inatvision import progress
from inatvision.pipeline.console import LOG_FILE, Console


def test_quiet_console_sends_library_output_to_the_run_log(tmp_path):
    terminal = io.StringIO()
    with Console(str(tmp_path), verbose=False, terminal=terminal) as console:
        os.write(2, b"E external/cuda_fft.cc: Unable to register cuFFT factory\n")  # C++ writes to fd 2
        print("Epoch 1/150", flush=True)
        sys.stderr.write("WARNING:absl:ArtifactQuery.property_predicate is not supported.\n")
        sys.stderr.flush()
        logging.getLogger("absl").warning("Beam: semi_persistent_directory is not set")  # a library's record
        progress.report("GeoTrainer", "epoch 1/150: loss 9.3")
        progress.summary("Trainer", "best val_top1 0.91")
        console.write("12:00:00 Trainer ...")
    assert terminal.getvalue().splitlines() == ["    GeoTrainer: epoch 1/150: loss 9.3", "12:00:00 Trainer ..."]
    log = (tmp_path / LOG_FILE).read_text()
    assert "cuFFT" in log and "Epoch 1/150" in log and "property_predicate" in log
    assert "WARNING absl: Beam: semi_persistent_directory is not set" in log
    assert console.handler.summaries == {"Trainer": "best val_top1 0.91"}  # kept for the finish line


def test_verbose_console_leaves_library_output_on_the_terminal(tmp_path, capfd):
    terminal = io.StringIO()
    with Console(str(tmp_path), verbose=True, terminal=terminal):
        os.write(2, b"library detail\n")
        progress.report("Trainer", "epoch 1/4")
    assert "library detail" in capfd.readouterr().err
    assert terminal.getvalue() == "    Trainer: epoch 1/4\n"
    assert not (tmp_path / LOG_FILE).exists()


def test_the_console_restores_the_process_streams(tmp_path, capfd):
    with Console(str(tmp_path), verbose=False, terminal=io.StringIO()):
        os.write(1, b"inside\n")
    os.write(1, b"outside\n")
    assert capfd.readouterr().out == "outside\n"
    assert (tmp_path / LOG_FILE).read_text() == "inside\n"


def test_durations_read_as_people_say_them():
    assert [progress.duration(s) for s in (0.4, 42, 185, 3720)] == ["0 s", "42 s", "3 min 5 s", "1 h 2 min"]
