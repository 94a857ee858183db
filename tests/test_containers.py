"""The compiled spec executed in the image, every step in its own podman container (`make test-containers`).

tests/kfp_driver.py walks each spec's DAG and gives every step the ExecutorInput KFP's driver would give it;
each step runs its exact command and args with `podman run` of the image. The pipeline root, the releases and
the export are folders of this machine, mounted into each container at the same path, so URIs are plain paths.
On a tiny export (the e2e fixture's size) and the demo profile, in this order:
1. kfp: a first submission pushes release 1;
2. kfp: a submission whose export folder does not exist fails at its first step, with that step's message;
3. kfp: the next submission, with the export given, completes; with an untrained model it is not blessed and
   leaves the releases unchanged;
4. vertex: a first submission (untrained, with the first release's floor, its test against chance and the
   location prior off, as in a rehearsal of the plumbing) pushes, and its release, gate report and export report
   equal those of `inatvision run` on the same export and configuration;
5. the image without the package (the Dockerfile's `deps` stage) fails the first step with the step's own error.
Steps' times go to build/test-containers.json (docs/benchmarks.md).
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inatvision.sample_export import write_sample_export
from tests import kfp_driver

pytestmark = pytest.mark.containers

REPO = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("INATVISION_IMAGE", "localhost/inatvision:dev")
BAD_IMAGE = os.environ.get("INATVISION_BAD_IMAGE", "localhost/inatvision:deps")  # the lock, not the package
PODMAN = (str(REPO / "kubeflow" / "local_image.sh"), "podman")
TIMINGS = REPO / "build" / "test-containers.json"
FAST = "trainer.epochs=3"
UNTRAINED = "trainer.epochs=0;geo.epochs=0"  # worse than release 1 on what the gate sees (tests/test_pipeline_e2e.py)
# An untrained first release is at chance, which the gate refuses (docs/gate.md), and an untrained location prior
# lowers top-1 (`geo_prior_top1`): a rehearsal of the plumbing turns those checks off and the prior with them, at
# submission (the compiled spec keeps its GeoTrainer; ComposeServing then serves vision alone).
UNTRAINED_REHEARSAL = UNTRAINED + ";geo.enabled=false;gate.first_release_vs_chance=false;gate.min_top1=0"
FIRST_STEP_FAILS_WITHIN_S = 120
STEP_TIMEOUT_S = 900
# What differs between two runs of the same inputs: when they ran, where they wrote, MLMD ids.
VOLATILE_KEYS = {"created", "finished", "started", "lineage", "run_id"}
# And between a container step and the local run: how the data steps ran (the spec's two Beam workers), and the
# model fingerprint, a hash of the SavedModel's graph whose traced function names depend on what the process traced
# before (a step traces one model, the local run all of them). The weights are compared instead (weights_digest).
NOT_THE_SAME_PROCESS = {"beam", "model_fingerprint"}


def podman_image_exists(image: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", image], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    for image in (IMAGE, BAD_IMAGE):
        if not podman_image_exists(image):
            pytest.fail(f"{image}: not built; run `make test-containers` (it builds both)")
    base = tmp_path_factory.mktemp("containers")
    export = str(base / "export")
    write_sample_export(export, species=8, seed=3)
    specs = {target: kfp_driver.compile_spec(target, IMAGE, str(base)) for target in ("kfp", "vertex")}
    timings, runs = {}, {}
    started = time.monotonic()

    def submit(name, target, overrides="", export_dir=export, image=None, step_timeout_s=STEP_TIMEOUT_S):
        runner = kfp_driver.PodmanRunner(mounts=[str(base)], image=image, timeout_s=step_timeout_s, podman=PODMAN)
        root = base / f"{target}-root"
        run = kfp_driver.Run(specs[target], pipeline_root=str(root / "artifacts"), run_id=name, arguments={
            "export_dir": export_dir, "push_destination": str(root / "releases"), "config_overrides": overrides})
        before = releases_snapshot(root / "releases")
        results = kfp_driver.run_pipeline(run, runner, log_dir=str(base / "logs" / name))
        runs[name] = {"run": run, "results": results, "releases_before": before,
                      "releases_after": releases_snapshot(root / "releases")}
        timings[name] = {r.task: round(r.seconds, 1) for r in results}
        timings[name]["total"] = round(sum(r.seconds for r in results), 1)

    submit("kfp-first", "kfp", FAST)
    fails_fast = FIRST_STEP_FAILS_WITHIN_S + 30  # a hang ends here, and fails the test
    submit("kfp-missing-export", "kfp", FAST, export_dir=str(base / "no-such-export"), step_timeout_s=fails_fast)
    submit("kfp-untrained", "kfp", UNTRAINED)
    submit("vertex-first", "vertex", UNTRAINED_REHEARSAL)
    submit("bad-image", "kfp", FAST, image=BAD_IMAGE, step_timeout_s=fails_fast)
    local_started = time.monotonic()
    local = subprocess.run([sys.executable, "-m", "inatvision.pipeline.cli", "run", "--export", export,
                            "--root", str(base / "local-root"), "--profile", "demo",
                            *[f"--set={item}" for item in UNTRAINED_REHEARSAL.split(";")]],
                           capture_output=True, text=True, cwd=str(base))
    timings["local-run"] = {"total": round(time.monotonic() - local_started, 1)}
    timings["all"] = round(time.monotonic() - started, 1)
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps({"image": IMAGE, "timings": timings}, indent=2))
    return {"base": base, "export": export, "runs": runs, "local": local}


def releases_snapshot(destination: Path) -> dict:
    """Every file under the destination with its size and modification time."""
    if not destination.exists():
        return {}
    return {str(p.relative_to(destination)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(destination.rglob("*")) if p.is_file()}


def release_of(submission) -> dict:
    """The ReleasePusher's `release` artifact as KFP records it: what stands in for summary.json on a cluster."""
    return submission["run"].outputs["ReleasePusher"]["release"]["metadata"]


def assert_completed(submission):
    failed = [r for r in submission["results"] if r.exit_code != 0]
    assert not failed, f"{failed[0].task} exited {failed[0].exit_code}:\n{failed[0].log()[-3000:]}"
    assert [r.task for r in submission["results"]] == kfp_driver.topological_order(submission["run"].spec)


def test_kfp_first_submission_pushes_release_one(world):
    first = world["runs"]["kfp-first"]
    assert_completed(first)
    release = release_of(first)
    assert release["outcome"] == "pushed" and release["version"] in ("1", 1.0), release
    assert "1/RELEASE_COMPLETE" in first["releases_after"]
    assert first["releases_before"] == {}


def assert_first_step_failed(submission, message: str):
    result, = submission["results"]  # nothing after the first step ran
    assert result.task == "ExportExamples" and result.exit_code != 0
    assert result.seconds < FIRST_STEP_FAILS_WITHIN_S, result.seconds
    assert re.search(message, result.log()), result.log()[-3000:]
    assert submission["releases_after"] == submission["releases_before"]


def test_a_missing_export_fails_at_the_first_step_with_its_message(world):
    assert_first_step_failed(world["runs"]["kfp-missing-export"], r"no-such-export: export folder not found")


def test_the_next_submission_completes_and_an_untrained_model_changes_no_release(world):
    untrained = world["runs"]["kfp-untrained"]
    assert_completed(untrained)
    assert release_of(untrained)["outcome"] == "not_blessed"
    assert untrained["releases_after"] == untrained["releases_before"] == world["runs"]["kfp-first"]["releases_after"]


def test_vertex_first_submission_pushes(world):
    first = world["runs"]["vertex-first"]
    assert_completed(first)
    assert release_of(first)["outcome"] == "pushed"
    assert "1/RELEASE_COMPLETE" in first["releases_after"]


def test_an_image_without_the_package_fails_the_first_step_with_its_own_error(world):
    assert_first_step_failed(world["runs"]["bad-image"], r"No module named 'inatvision|Could not import inatvision")


def normalized(value, roots: list[str], dropped=VOLATILE_KEYS):
    """Without timestamps, MLMD ids (or the `dropped` keys) and the roots the two runs wrote under."""
    if isinstance(value, dict):
        return {k: normalized(v, roots, dropped) for k, v in value.items() if k not in dropped}
    if isinstance(value, list):
        return [normalized(v, roots, dropped) for v in value]
    if isinstance(value, str):
        for root in roots:
            value = value.replace(root, "<root>")
    return value


def read_json(path: Path, roots: list[str], dropped=VOLATILE_KEYS):
    with open(path) as f:
        return normalized(json.load(f), roots, dropped)


def weights_digest(model_dir: Path) -> str:
    """sha256 of a SavedModel's variables, file by file."""
    digest = hashlib.sha256()
    for path in sorted((model_dir / "variables").iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_outputs_equal_those_of_a_local_run(world):
    local = world["local"]
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-3000:]
    local_root, vertex_root = world["base"] / "local-root", world["base"] / "vertex-root"
    roots = [str(local_root), str(vertex_root)]
    local_release, vertex_release = local_root / "releases" / "1", vertex_root / "releases" / "1"
    assert releases_snapshot(local_release).keys() == releases_snapshot(vertex_release).keys()
    assert read_json(vertex_release / "gate_report.json", roots) == read_json(local_release / "gate_report.json", roots)
    card_keys = VOLATILE_KEYS | NOT_THE_SAME_PROCESS
    assert read_json(vertex_release / "model_card.json", roots, card_keys) == read_json(
        local_release / "model_card.json", roots, card_keys)
    for model in ("serving", "vision"):
        assert weights_digest(vertex_release / model) == weights_digest(local_release / model), model
    vertex_report = world["runs"]["vertex-first"]["run"].outputs["ExportExamples"]["report"]["uri"]
    local_report = local_root / "runs" / "latest" / "export_report.json"
    assert read_json(Path(vertex_report) / "export_report.json", roots) == read_json(local_report, roots)
