"""Runs the vision Trainer's run_fn in its own process (for kill-and-resume tests): argv[1] is a JSON file."""
import json
import logging
import os
import sys
from types import SimpleNamespace

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from inatvision import progress  # noqa: E402
from inatvision.components.trainer import run  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")  # the Trainer's epoch lines on stderr, as a terminal shows them
    progress.LOGGER.setLevel(logging.INFO)
    args = json.load(open(sys.argv[1]))
    run.run_fn(SimpleNamespace(**args))
