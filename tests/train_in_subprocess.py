"""Runs the vision Trainer's run_fn in its own process (for kill-and-resume tests): argv[1] is a JSON file."""
import json
import os
import sys
from types import SimpleNamespace

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from inatvision.components.trainer import run  # noqa: E402

if __name__ == "__main__":
    args = json.load(open(sys.argv[1]))
    run.run_fn(SimpleNamespace(**args))
