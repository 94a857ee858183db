"""Shared fixtures: paths to the real data beside the checkout and tiny hand-made examples."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        if os.environ.get("CI"):  # CI lays the data beside the clone: its absence is a broken setup, not a skip
            pytest.fail(f"real data not found at {SHARED_DATA} (CI is set)")
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


# `make test` runs the suite on two workers, a test file per worker at a time (pytest-xdist, --dist loadfile),
# so a file's shared fixtures are built once. The whole-pipeline files go first, to different workers, and the
# many small files fill the time beside them; by default the files with the most tests would go first.
HEAVIEST_FIRST = ("test_pipeline_e2e.py", "test_pipeline_real_sample.py", "test_trainer_resume.py", "test_trainer.py")


def _weight(scope: str) -> int:
    name = scope.split("::")[0].rsplit("/", 1)[-1]
    return HEAVIEST_FIRST.index(name) if name in HEAVIEST_FIRST else len(HEAVIEST_FIRST)


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadFileScheduling

    class HeaviestFirst(LoadFileScheduling):
        def _assign_work_unit(self, node):
            heaviest = min(self.workqueue, key=_weight)  # ties keep xdist's order
            self.workqueue.move_to_end(heaviest, last=False)
            super()._assign_work_unit(node)

    return HeaviestFirst(config, log)
