"""Test code, not a product runner: executes a compiled KFP v2 pipeline spec one task at a time, as KFP would.

For each task of the spec's DAG, in topological order, it builds the ExecutorInput that KFP's driver hands the
step (runtime parameters, upstream outputs' names, URIs, types and metadata, output URIs under the pipeline root,
the output file), fills the placeholders of the executor's exact `command` + `args` with kfp's own placeholder
code, lets a runner execute them (`podman run` of the image in tests/test_containers.py, a fake in CI), then
reads back the `executor_output` the step wrote, as KFP's launcher does, for the tasks downstream.

Layout (the same for both targets): `<pipeline root>/<pipeline>/<run id>/<task>/<output key>`, and the step's
output file `.../<task>/executor_output.json`. KFP's launcher writes that file inside the pod and uploads it;
Vertex puts task folders under `<root>/<project number>/<job id>/<task>_<id>`. Nothing here schedules pods,
retries a step or caches one: a failed step ends the run, as in KFP when nothing else can run.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from typing import Callable

import yaml

PLACEHOLDER = "{{$"


class SpecError(AssertionError):
    """The spec asks for something KFP's driver could not give (a missing producer, a mismatched type)."""


def compile_spec(target: str, image: str, out_dir: str, profile: str = "demo") -> dict:
    """The spec as `compile-kubeflow` writes it for this machine: CPU only, two Beam workers. The gs:// root is
    a placeholder: a submission gives the pipeline root and `push_destination` (here local folders)."""
    from inatvision.kubeflow import runner

    path = os.path.join(out_dir, f"{target}.{'yaml' if target == 'kfp' else 'json'}")
    runner.compile_pipeline(target, image, path, profile=profile, root="gs://unused/root",
                            kubeflow=runner.KubeflowConfig(data_cpu=2, gpus=0))
    spec, _ = runner.load_spec(path)
    return spec


def type_title(artifact_type: dict) -> str:
    """The schema title of an artifactType (TFX writes instanceSchema YAML; KFP's own types use schemaTitle)."""
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    return yaml.safe_load(artifact_type["instanceSchema"]).get("title", "tfx.Artifact")


def component(spec: dict, task: str) -> dict:
    return spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]


def container(spec: dict, task: str) -> dict:
    executor = spec["deploymentSpec"]["executors"][component(spec, task)["executorLabel"]]
    if set(executor) != {"container"}:
        raise SpecError(f"{task}: executor {sorted(executor)}; only container executors are run here")
    return executor["container"]


def topological_order(spec: dict) -> list[str]:
    """Kahn's algorithm over `dependentTasks` and artifact producers; ties broken by name (stable runs)."""
    tasks = spec["root"]["dag"]["tasks"]
    needs = {name: set(task.get("dependentTasks", [])) | {
        source["taskOutputArtifact"]["producerTask"] for source in task.get("inputs", {}).get("artifacts", {}).values()}
        for name, task in tasks.items()}
    order = []
    while needs:
        ready = sorted(name for name, upstream in needs.items() if not upstream - set(order))
        if not ready:
            raise SpecError(f"the DAG has a cycle or an unknown task among {sorted(needs)}")
        order.append(ready[0])
        del needs[ready[0]]
    return order


def parameter_values(spec: dict, task: str, arguments: dict) -> dict:
    """Constants as compiled; root inputs from the submission's arguments, else their defaults."""
    root = spec["root"]["inputDefinitions"]["parameters"]
    unknown = set(arguments) - set(root)
    if unknown:
        raise SpecError(f"arguments {sorted(unknown)} are not runtime parameters of the spec ({sorted(root)})")
    values = {}
    for name, source in spec["root"]["dag"]["tasks"][task]["inputs"].get("parameters", {}).items():
        if "runtimeValue" in source:
            values[name] = source["runtimeValue"]["constant"]
        elif "componentInputParameter" in source:
            parent = source["componentInputParameter"]
            if parent not in arguments and "defaultValue" not in root[parent]:
                raise SpecError(f"{task}.{name}: runtime parameter {parent} has no value and no default")
            values[name] = arguments.get(parent, root[parent].get("defaultValue"))
        else:
            raise SpecError(f"{task}.{name}: unsupported parameter source {sorted(source)}")
    return values


@dataclasses.dataclass
class Run:
    """One submission: the spec, its runtime arguments, where it writes, and what its steps produced."""

    spec: dict
    pipeline_root: str
    run_id: str
    arguments: dict = dataclasses.field(default_factory=dict)
    outputs: dict = dataclasses.field(default_factory=dict)  # task -> key -> RuntimeArtifact (as a dict)

    def task_root(self, task: str) -> str:
        return os.path.join(self.pipeline_root, self.spec["pipelineInfo"]["name"], self.run_id, task)

    def planned_outputs(self, task: str) -> dict:
        """Fresh output artifacts: a name, the type of the output definition, a URI, no metadata yet."""
        definitions = component(self.spec, task).get("outputDefinitions", {}).get("artifacts", {})
        return {key: {"name": f"{self.run_id}/{task}/{key}", "type": definition["artifactType"],
                      "uri": os.path.join(self.task_root(task), key), "metadata": {}}
                for key, definition in definitions.items()}

    def input_artifacts(self, task: str) -> dict:
        definitions = component(self.spec, task).get("inputDefinitions", {}).get("artifacts", {})
        sources = self.spec["root"]["dag"]["tasks"][task].get("inputs", {}).get("artifacts", {})
        artifacts = {}
        for key, source in sources.items():
            producer = source["taskOutputArtifact"]["producerTask"]
            output_key = source["taskOutputArtifact"]["outputArtifactKey"]
            upstream = self.outputs.get(producer, {}).get(output_key)
            if upstream is None:
                raise SpecError(f"{task}.{key}: {producer} produced no output {output_key!r}")
            expected, got = type_title(definitions[key]["artifactType"]), type_title(upstream["type"])
            if expected != got:
                raise SpecError(f"{task}.{key} takes {expected}, {producer}.{output_key} is {got}")
            artifacts[key] = {"artifacts": [upstream]}
        missing = {key for key, d in definitions.items() if not d.get("isOptional")} - set(sources)
        if missing:
            raise SpecError(f"{task}: required input artifacts {sorted(missing)} have no producer")
        return artifacts

    def executor_input(self, task: str) -> dict:
        return {
            "inputs": {"parameterValues": parameter_values(self.spec, task, self.arguments),
                       "artifacts": self.input_artifacts(task)},
            "outputs": {"artifacts": {key: {"artifacts": [artifact]}
                                      for key, artifact in self.planned_outputs(task).items()},
                        "outputFile": os.path.join(self.task_root(task), "executor_output.json")},
        }

    def command_and_args(self, task: str, executor_input: dict) -> tuple[list[str], list[str]]:
        """The executor's `command` and `args`, every placeholder filled (kfp's own placeholder code)."""
        from kfp.local import placeholder_utils

        spec = container(self.spec, task)
        filled = [placeholder_utils.replace_placeholders(
            spec.get(part, []), executor_input,
            pipeline_resource_name=f"{self.spec['pipelineInfo']['name']}-{self.run_id}",
            task_resource_name=task, pipeline_root=self.pipeline_root) for part in ("command", "args")]
        left = [item[:80] for item in filled[0] + filled[1] if PLACEHOLDER in item]
        if left:
            raise SpecError(f"{task}: placeholders left unfilled: {left}")
        return filled[0], filled[1]

    def record_outputs(self, task: str, executor_input: dict) -> None:
        """Reads the step's executor_output, as KFP's launcher does: its artifacts replace the planned ones."""
        planned = {key: value["artifacts"][0] for key, value in executor_input["outputs"]["artifacts"].items()}
        path = executor_input["outputs"]["outputFile"]
        if not os.path.exists(path):
            raise SpecError(f"{task}: exited 0 but wrote no executor output at {path}")
        with open(path) as f:
            written = json.load(f).get("artifacts", {})
        if set(written) != set(planned):
            raise SpecError(f"{task}: executor output has {sorted(written)}, the spec declares {sorted(planned)}")
        self.outputs[task] = {}
        for key, artifact in planned.items():
            reported, = written[key]["artifacts"]
            if reported.get("uri") != artifact["uri"]:
                raise SpecError(f"{task}.{key}: written at {reported.get('uri')}, planned {artifact['uri']}")
            self.outputs[task][key] = {**artifact, "name": reported.get("name") or artifact["name"],
                                       "metadata": reported.get("metadata", {})}


@dataclasses.dataclass
class Step:
    task: str
    image: str
    command: list[str]  # the container's entrypoint (Kubernetes `command`)
    args: list[str]
    executor_input: dict
    log_path: str


@dataclasses.dataclass
class StepResult:
    task: str
    exit_code: int
    seconds: float
    log_path: str

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


def run_pipeline(run: Run, execute: Callable[[Step], int], log_dir: str, plan_only: bool = False) -> list[StepResult]:
    """Runs every task in order; stops at the first step that fails. `plan_only`: build inputs, run nothing."""
    os.makedirs(log_dir, exist_ok=True)
    results = []
    for task in topological_order(run.spec):
        executor_input = run.executor_input(task)
        step = Step(task, container(run.spec, task)["image"], *run.command_and_args(task, executor_input),
                    executor_input, os.path.join(log_dir, f"{task}.log"))
        if plan_only:
            run.outputs[task] = run.planned_outputs(task)
            results.append(StepResult(task, 0, 0.0, step.log_path))
            continue
        os.makedirs(run.task_root(task), exist_ok=True)
        started = time.monotonic()
        code = execute(step)
        results.append(StepResult(task, code, time.monotonic() - started, step.log_path))
        if code != 0:
            break
        run.record_outputs(task, executor_input)
    return results


@dataclasses.dataclass
class PodmanRunner:
    """`podman run` of the step's image with its exact command and args; `mounts` appear at the same path."""

    mounts: list[str]
    image: str | None = None  # replaces the spec's image (e.g. a bad image for a test)
    timeout_s: float = 1800
    podman: tuple[str, ...] = ("podman",)

    def __call__(self, step: Step) -> int:
        name = f"kfp-{os.getpid()}-{int(time.time() * 1000)}-{step.task.lower()}"
        volumes = [f"--volume={path}:{path}" for path in self.mounts]
        argv = [*self.podman, "run", "--rm", f"--name={name}", "--network=none", *volumes,
                f"--entrypoint={json.dumps(step.command)}", self.image or step.image, *step.args]
        with open(step.log_path, "w") as log:
            try:
                return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=self.timeout_s).returncode
            except subprocess.TimeoutExpired:
                subprocess.run([*self.podman, "rm", "--force", name], capture_output=True)
                log.write(f"\n[kfp_driver] {step.task}: no exit after {self.timeout_s} s, container removed\n")
                return 124
