"""Compiles `create_pipeline` into a KFP v2 pipeline spec for open-source Kubeflow Pipelines or Vertex AI Pipelines.

The graph is the one `inatvision run` runs locally; what changes on a cluster:
- runtime parameters (set per submission): `export_dir`, `config_overrides` (`a.b=c;d.e=f`, applied by every
  executor with `resolve_config`), `push_destination` and `photo_root`. The pipeline root cannot be a TFX runtime
  parameter under the V2 runner: it is compiled in as the default (`defaultPipelineRoot`) and a submission may
  replace it (KFP's run option `pipeline_root`).
- resources: `ResourceSpec` protos set with `component.with_platform_config(...)`, which TFX 1.16's V2 step builder
  copies into `deploymentSpec.executors.<name>.container.resources` (no post-processing of resources).
- caching: off for the two steps whose parameters do not capture what they read (the export folder's content, the
  releases in the destination), so a cached run never reuses a stale export or an old baseline.
- a GPU node selector (open-source KFP only): a second YAML document, the `PlatformSpec` that kfp-kubernetes writes
  (`platforms.kubernetes.deploymentSpec.executors.<name>.nodeSelector.labels`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

import yaml

TARGETS = ("kfp", "vertex")
DEFAULT_ROOT = "gs://inatvision"  # a placeholder: pass --root gs://YOUR-BUCKET/inatvision
DEFAULT_ACCELERATOR = {"kfp": "nvidia.com/gpu", "vertex": "NVIDIA_TESLA_V100"}
RUNTIME_PARAMETERS = ("export_dir", "config_overrides", "push_destination", "photo_root")

DATA_STEPS = ("ExportExamples", "StatisticsGen", "Transform", "Evaluator")  # Beam steps
CPU_TRAINING_STEPS = ("GeoTrainer",)  # the location prior: a small network, trained on CPUs
TRAINER = "Trainer"
UNCACHED_STEPS = ("ExportExamples", "PreviousRelease")
ALLOWED_KFP_EXECUTORS = {"container", "importer"}  # what the open-source KFP 2.x backend runs

# Keys that take effect only at compile time (Beam args are container arguments; the name is the spec's).
COMPILE_TIME_KEYS = ("beam.", "pipeline_name", "profile")

_K8S_RESOURCE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VERTEX_ACCELERATOR = re.compile(r"^(NVIDIA|TPU)_[A-Z0-9_]+$")


class CompileError(ValueError):
    """A compile option or the compiled spec is wrong for the target."""


@dataclasses.dataclass
class KubeflowConfig:
    """Per-step resources. Open-source KFP: CPU and memory requests (memory also as the limit, no CPU limit);
    Vertex: CPU and memory limits, from which Vertex picks the machine type."""

    data_cpu: float = 8.0  # export, statistics, Transform, Evaluator (Beam workers when DirectRunner), GeoTrainer
    data_memory_gb: float = 32.0
    trainer_cpu: float = 8.0  # feeds the GPUs: decoding and augmentation run on the CPU
    trainer_memory_gb: float = 64.0
    gpus: int = 1  # 0: train on CPU
    accelerator: str = ""  # "": nvidia.com/gpu (kfp) or NVIDIA_TESLA_V100 (vertex)
    step_cpu: float = 1.0  # the light steps: schema, validation, baseline lookup, gate, push
    step_memory_gb: float = 4.0
    gpu_node_selector: dict[str, str] = dataclasses.field(default_factory=dict)  # kfp only, e.g. GKE's accelerator label
    # Vertex only: more than 1 runs the Trainer as a Vertex AI custom job of this many machines (TFX's Vertex
    # training extension, worker_pool_specs), each with `gpus` GPUs; the pipeline step only launches it.
    trainer_workers: int = 1
    vertex_project: str = ""  # the Google Cloud project of the custom job (required with trainer_workers > 1)
    vertex_region: str = "us-central1"
    trainer_machine_type: str = "n1-highmem-16"  # per worker; Vertex needs a machine type for a custom job

    def accelerator_for(self, target: str) -> str:
        return self.accelerator or DEFAULT_ACCELERATOR[target]

    def check(self, target: str) -> None:
        for name in ("data_cpu", "data_memory_gb", "trainer_cpu", "trainer_memory_gb", "step_cpu", "step_memory_gb"):
            if getattr(self, name) <= 0:
                raise CompileError(f"{name} must be positive, got {getattr(self, name)}")
        if self.gpus < 0:
            raise CompileError(f"gpus must be 0 or more, got {self.gpus}")
        accelerator = self.accelerator_for(target)
        if target == "kfp" and not _K8S_RESOURCE_NAME.match(accelerator):
            raise CompileError(f"--accelerator {accelerator!r}: open-source Kubeflow Pipelines takes a Kubernetes "
                               f"resource name such as nvidia.com/gpu (pick the GPU model with --gpu-node-selector)")
        if target == "vertex" and not _VERTEX_ACCELERATOR.match(accelerator):
            raise CompileError(f"--accelerator {accelerator!r}: Vertex AI takes an accelerator type such as "
                               f"NVIDIA_TESLA_V100, NVIDIA_L4, NVIDIA_A100_80GB or NVIDIA_H100_80GB")
        if self.trainer_workers < 1:
            raise CompileError(f"trainer_workers must be 1 or more, got {self.trainer_workers}")
        if self.trainer_workers > 1 and target != "vertex":
            raise CompileError("--trainer-workers: several Trainer machines need Vertex AI (--target vertex); on "
                               "open-source Kubeflow a pipeline step is one pod (use --gpus for several GPUs)")
        if self.trainer_workers > 1 and not self.vertex_project:
            raise CompileError("--trainer-workers needs --vertex-project (the custom job's Google Cloud project)")
        if target == "vertex" and self.gpu_node_selector:
            raise CompileError("--gpu-node-selector is for open-source Kubeflow; Vertex AI picks machines "
                               "from --accelerator, --trainer-cpu and --trainer-memory-gb")

    def resource_specs(self, target: str) -> dict[str, Any]:
        """`ResourceSpec` per component id; `*` for every step not named."""
        data = _resource_spec(target, self.data_cpu, self.data_memory_gb)
        trainer = _resource_spec(target, self.trainer_cpu, self.trainer_memory_gb,
                                 self.gpus, self.accelerator_for(target))
        specs = {step: data for step in DATA_STEPS + CPU_TRAINING_STEPS}
        specs[TRAINER] = trainer
        specs["*"] = _resource_spec(target, self.step_cpu, self.step_memory_gb)
        return specs


def _resource_spec(target: str, cpu: float, memory_gb: float, gpus: int = 0, accelerator: str = ""):
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
    if target == "kfp":  # the KFP driver turns these into the pod's requests and limits (memory in G)
        spec.cpu_request = cpu
        spec.memory_request = memory_gb
        spec.memory_limit = memory_gb
    else:  # Vertex sizes the machine from the limits
        spec.cpu_limit = cpu
        spec.memory_limit = memory_gb
    if gpus:
        spec.accelerator.type = accelerator
        spec.accelerator.count = gpus
    return spec


@dataclasses.dataclass
class Locations:
    pipeline_root: str
    destination: str
    export_dir: str = ""
    photo_root: str = ""

    @classmethod
    def resolve(cls, root: str | None, pipeline_root: str | None, destination: str | None, config_destination: str,
                export_dir: str = "", photo_root: str = "") -> "Locations":
        """`--root R` gives R/artifacts and R/releases, as a local `--root` does."""
        root = (root or DEFAULT_ROOT).rstrip("/")
        result = cls(pipeline_root=pipeline_root or f"{root}/artifacts",
                     destination=destination or config_destination or f"{root}/releases",
                     export_dir=export_dir, photo_root=photo_root)
        for name in ("pipeline_root", "destination"):
            value = getattr(result, name)
            if not value.startswith("gs://"):
                raise CompileError(f"{name} {value!r}: a cluster run needs a gs:// location that every pod can "
                                   f"reach (TensorFlow writes artifacts there directly; minio:// and pod-local "
                                   f"paths do not work)")
        for name in ("export_dir", "photo_root"):
            value = getattr(result, name)
            if value and "://" not in value:
                raise CompileError(f"{name} {value!r}: the pods cannot see this machine's folders; give a gs:// URI")
        return result


def compile_pipeline(target: str, image: str, out: str, profile: str = "production", overrides=(),
                     kubeflow: KubeflowConfig | None = None, root: str | None = None,
                     pipeline_root: str | None = None, destination: str | None = None,
                     export_dir: str = "", photo_root: str = "") -> dict:
    """Writes the pipeline spec for `target` to `out` and returns the PipelineSpec as a dict.

    `out` ending in .yaml/.yml: the PipelineSpec (what the KFP client uploads; required for `kfp`);
    `.json` (vertex only): TFX's PipelineJob with runtimeConfig, as the Vertex SDK takes it.
    """
    if target not in TARGETS:
        raise CompileError(f"--target {target!r}: choose one of {', '.join(TARGETS)}")
    if not image or any(c.isspace() for c in image):
        raise CompileError(f"--image {image!r}: give the pushed image, e.g. us-docker.pkg.dev/PROJECT/REPO/inatvision:TAG")
    as_yaml = out.endswith((".yaml", ".yml"))
    if not as_yaml and not out.endswith(".json"):
        raise CompileError(f"--out {out!r}: end it in .yaml (or .json for vertex)")
    if target == "kfp" and not as_yaml:
        raise CompileError("--out: the Kubeflow Pipelines client uploads YAML; end the file name in .yaml")
    kubeflow = kubeflow or KubeflowConfig()
    kubeflow.check(target)

    from inatvision.config import build_config

    config = build_config(profile, list(overrides))
    if config.beam.runner == "DirectRunner" and config.beam.direct_num_workers == 0:
        # 0 means "every core of the machine": in a pod that is the node's cores, not the CPU request.
        config.beam.direct_num_workers = max(1, int(kubeflow.data_cpu))
    where = Locations.resolve(root, pipeline_root, destination, config.push.destination, export_dir, photo_root)
    pipeline, defaults = build_pipeline(config, where)
    specs = kubeflow.resource_specs(target)
    if kubeflow.trainer_workers > 1:
        specs[TRAINER] = specs["*"]  # the step only launches and watches the custom job
        vertex_training(pipeline, kubeflow, image, config.export.num_shards)
    for component in pipeline.components:
        component.with_platform_config(specs.get(component.id, specs["*"]))

    from tfx import v1 as tfx

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            display_name=config.pipeline_name, default_image=image,
            use_pipeline_spec_2_1=True))  # 2.1: constants as protobuf Values, the form KFP 2.x backends resolve
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    spec = job["pipelineSpec"]
    finish_spec(spec, defaults, where.pipeline_root)
    check_executors(spec, target)
    platform = platform_spec(spec, kubeflow.gpu_node_selector) if target == "kfp" else None
    write_spec(out, job, spec, platform, as_yaml, header=f"inatvision pipeline for {target}, image {image}, "
                                                        f"profile {profile}")
    return spec


def worker_pool_specs(kubeflow: KubeflowConfig, image: str) -> list[dict]:
    """Vertex AI's pools: workerpool0 is the chief (1 replica), workerpool1 the other workers."""
    machine = {"machine_type": kubeflow.trainer_machine_type}
    if kubeflow.gpus:
        machine.update(accelerator_type=kubeflow.accelerator_for("vertex"), accelerator_count=kubeflow.gpus)
    pool = {"machine_spec": machine, "container_spec": {"image_uri": image}}
    return [{**pool, "replica_count": 1}, {**pool, "replica_count": kubeflow.trainer_workers - 1}]


def vertex_training(pipeline, kubeflow: KubeflowConfig, image: str, num_shards: int) -> None:
    """Turns the Trainer step into a launcher of a multi-worker Vertex AI custom job (same run_fn, same inputs)."""
    from tfx.dsl.components.base import executor_spec
    from tfx.extensions.google_cloud_ai_platform import constants
    from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor

    from inatvision.components.trainer.component import TaxonVertexTrainerExecutor

    if num_shards < kubeflow.trainer_workers:
        raise CompileError(f"--trainer-workers {kubeflow.trainer_workers}: each worker reads whole Examples files; "
                           f"compile with --set export.num_shards={kubeflow.trainer_workers} or more (now {num_shards})")
    trainer = next(component for component in pipeline.components if component.id == TRAINER)
    trainer.executor_spec = executor_spec.ExecutorClassSpec(TaxonVertexTrainerExecutor)
    custom = json.loads(trainer.exec_properties["custom_config"])
    custom.update({
        constants.ENABLE_VERTEX_KEY: True, constants.VERTEX_REGION_KEY: kubeflow.vertex_region,
        vertex_executor.TRAINING_ARGS_KEY: {"project": kubeflow.vertex_project,
                                            "job_spec": {"worker_pool_specs": worker_pool_specs(kubeflow, image)}}})
    trainer.exec_properties["custom_config"] = json.dumps(custom)


def build_pipeline(config, where: Locations):
    """`create_pipeline` with runtime parameters; returns (pipeline, their default values)."""
    from tfx import v1 as tfx

    from inatvision.pipeline.pipeline import create_pipeline

    defaults = {"export_dir": where.export_dir, "config_overrides": "", "push_destination": where.destination,
                "photo_root": where.photo_root}
    params = {name: tfx.dsl.experimental.RuntimeParameter(name=name, ptype=str, default=value)
              for name, value in defaults.items()}
    pipeline = create_pipeline(
        config, export_dir=params["export_dir"], pipeline_root=where.pipeline_root,
        push_destination=params["push_destination"], config_overrides=params["config_overrides"],
        photo_root=params["photo_root"],
        curated_schema_path="",  # the schema file inside the image, not this machine's path
        enable_cache=True)
    return pipeline, defaults


def finish_spec(spec: dict, defaults: dict, pipeline_root: str) -> None:
    """Defaults for the root parameters (TFX writes them only into the PipelineJob's runtimeConfig, which the
    YAML form drops), the default pipeline root, and no cache for the steps that read outside state."""
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name, value in defaults.items():
        if name in parameters:
            parameters[name]["defaultValue"] = value
            parameters[name]["isOptional"] = True
    spec["defaultPipelineRoot"] = pipeline_root
    for name in UNCACHED_STEPS:
        spec["root"]["dag"]["tasks"][name]["cachingOptions"] = {}


def executor_label(spec: dict, task: str) -> str:
    component = spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    return spec["components"][component]["executorLabel"]


def check_executors(spec: dict, target: str) -> None:
    """Open-source KFP runs only container and importer executors (no TFX Resolver)."""
    for name, executor in spec["deploymentSpec"]["executors"].items():
        kinds = set(executor)
        if not kinds:
            raise CompileError(f"executor {name} is empty")
        if target == "kfp" and not kinds <= ALLOWED_KFP_EXECUTORS:
            raise CompileError(f"executor {name} is {sorted(kinds)}: open-source Kubeflow Pipelines runs only "
                               f"container and importer executors (find baselines in a container step, not a Resolver)")


def platform_spec(spec: dict, gpu_node_selector: dict[str, str]) -> dict | None:
    """The kfp-kubernetes `PlatformSpec` document: a node selector on the Trainer's executor."""
    if not gpu_node_selector:
        return None
    executor = executor_label(spec, TRAINER)
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
        executor: {"nodeSelector": {"labels": dict(gpu_node_selector)}}}}}}}


def write_spec(out: str, job: dict, spec: dict, platform: dict | None, as_yaml: bool, header: str) -> None:
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    with open(out, "w") as f:
        if as_yaml:
            f.write(f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n# {header}\n")
            yaml.safe_dump_all([spec] + ([platform] if platform else []), f, sort_keys=True)
        else:
            json.dump(job, f, indent=2, sort_keys=True)


def load_spec(path: str) -> tuple[dict, dict]:
    """(PipelineSpec, PlatformSpec or {}) from a compiled YAML or PipelineJob JSON."""
    with open(path) as f:
        if path.endswith(".json"):
            return json.load(f)["pipelineSpec"], {}
        docs = [doc for doc in yaml.safe_load_all(f) if doc]
    return docs[0], (docs[1] if len(docs) > 1 else {})


def compiled_config_json(spec: dict) -> str:
    """The whole configuration compiled into the spec (the pusher's `config_json`; other steps get sections)."""
    tasks = spec["root"]["dag"]["tasks"]
    names = ["ReleasePusher"] + sorted(tasks)
    for name in names:
        parameter = tasks.get(name, {}).get("inputs", {}).get("parameters", {}).get("config_json")
        if parameter:
            return parameter["runtimeValue"]["constant"]
    raise CompileError("the package has no compiled configuration (no step takes config_json)")


def parse_node_selector(pairs) -> dict[str, str]:
    result = {}
    for pair in pairs:
        if "=" not in pair:
            raise CompileError(f"--gpu-node-selector expects LABEL=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        result[key.strip()] = value.strip()
    return result


def submission_arguments(spec: dict, overrides=(), export_dir: str | None = None, destination: str | None = None,
                         photo_root: str | None = None) -> tuple[dict[str, str], list[str]]:
    """The run's runtime parameters, checked before anything is sent; returns (arguments, warnings).

    `--set` overrides are validated against the configuration compiled into the package and joined with `;` into
    `config_overrides`, which every executor applies with `resolve_config`. `push.destination` also sets the
    `push_destination` parameter (the components read the parameter, not the configuration key).
    """
    from inatvision.config import ConfigError, resolve_config

    overrides = [item.strip() for item in overrides if item.strip()]
    warnings = []
    for item in overrides:
        if ";" in item or "\n" in item:
            raise ConfigError(f"--set {item!r}: a value cannot contain ';' or a newline (they separate overrides)")
        key = item.split("=", 1)[0].strip()
        if key.startswith(COMPILE_TIME_KEYS):
            raise ConfigError(f"--set {item!r}: {key} is fixed when the spec is compiled (Beam options are container "
                              f"arguments); give it to compile-kubeflow")
        if key == "gate.min_top1":
            warnings.append("gate.min_top1: the release gate applies the new floor, but the Evaluator's own TFMA "
                            "threshold was compiled in; lowering the floor needs a recompile")
        if key == "push.destination" and destination is None:
            destination = item.split("=", 1)[1].strip()
    joined = ";".join(overrides)
    resolve_config(compiled_config_json(spec), joined)  # unknown keys and bad values fail here, not in a pod
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    arguments = {"config_overrides": joined}
    for name, value in (("export_dir", export_dir), ("push_destination", destination), ("photo_root", photo_root)):
        if value is not None:
            if value and "://" not in value:
                raise ConfigError(f"{name} {value!r}: the pods cannot see this machine's folders; give a gs:// URI")
            arguments[name] = value
    if not arguments.get("export_dir", parameters["export_dir"].get("defaultValue", "")):
        raise ConfigError("no export: give --export gs://BUCKET/PATH (the package has no default export)")
    return arguments, warnings


def check_kfp_package(spec: dict) -> None:
    """A package compiled for Vertex names accelerators the KFP backend cannot schedule."""
    resources = spec["deploymentSpec"]["executors"][executor_label(spec, TRAINER)]["container"].get("resources", {})
    accelerator = resources.get("accelerator", {}).get("type", "")
    if accelerator and not _K8S_RESOURCE_NAME.match(accelerator):
        raise CompileError(f"the package asks for accelerator {accelerator!r}, a Vertex AI name: compile it with "
                           f"--target kfp for a Kubeflow Pipelines cluster")
