"""The Kubeflow deployment: compiled specs for both targets, runtime parameters, resources, submission (no network)."""
import json
import re
from unittest import mock

import pytest
from click.testing import CliRunner

from inatvision.kubeflow import commands, runner
from inatvision.config import ConfigError

IMAGE = "registry.example/inatvision:test"
NODE_LABEL = {"cloud.google.com/gke-accelerator": "nvidia-tesla-v100"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Both targets compiled once (importing the components dominates: about 40 s)."""
    out = tmp_path_factory.mktemp("kubeflow")
    kfp_path, vertex_path = str(out / "pipeline.yaml"), str(out / "pipeline.json")
    kfp_spec = runner.compile_pipeline(
        "kfp", IMAGE, kfp_path, profile="production", root="gs://bucket/inatvision",
        kubeflow=runner.KubeflowConfig(gpu_node_selector=NODE_LABEL))
    vertex_spec = runner.compile_pipeline(
        "vertex", IMAGE, vertex_path, profile="production", overrides=["trainer.epochs=20"],
        root="gs://bucket/inatvision", export_dir="gs://bucket/exports/2026",
        kubeflow=runner.KubeflowConfig(gpus=2, accelerator="NVIDIA_H100_80GB"))
    return {"kfp": (kfp_path, kfp_spec), "vertex": (vertex_path, vertex_spec)}


@pytest.fixture(scope="module")
def graph():
    """The component ids of the production graph, and those that take `config_overrides`."""
    from inatvision.config import build_config

    pipeline, _ = runner.build_pipeline(build_config("production"), runner.Locations("gs://b/a", "gs://b/r"))
    steps = {component.id for component in pipeline.components}
    configurable = {component.id for component in pipeline.components if "config_overrides" in component.exec_properties}
    assert {"ExportExamples", "Trainer", "ValidationGate", "ReleasePusher"} <= configurable
    return steps, configurable


def executors(spec):
    return spec["deploymentSpec"]["executors"]


def container(spec, task):
    return executors(spec)[runner.executor_label(spec, task)]["container"]


def test_kfp_spec_has_only_container_and_importer_executors(compiled, graph):
    _, spec = compiled["kfp"]
    assert set(spec["root"]["dag"]["tasks"]) == graph[0]  # every component compiled, class-based and @component alike
    assert {"PreviousRelease", "CuratedSchema", "ExportExamples", "Trainer", "Evaluator"} <= graph[0]
    for name, executor in executors(spec).items():
        assert set(executor) <= {"container", "importer"}, name
    with open(compiled["kfp"][0]) as f:
        assert "resolver" not in f.read().lower()


def test_every_executor_uses_the_given_image(compiled, graph):
    for target in runner.TARGETS:
        _, spec = compiled[target]
        assert len(executors(spec)) == len(graph[0])
        assert {e["container"]["image"] for e in executors(spec).values()} == {IMAGE}


def test_trainer_requests_gpus_and_data_steps_request_cpu_and_memory(compiled):
    _, kfp_spec = compiled["kfp"]
    trainer = container(kfp_spec, "Trainer")["resources"]
    assert trainer["accelerator"] == {"type": "nvidia.com/gpu", "count": "1"}
    assert trainer["memoryRequest"] == trainer["memoryLimit"] == 64
    for step in runner.DATA_STEPS:
        resources = container(kfp_spec, step)["resources"]
        assert resources["cpuRequest"] == 8 and resources["memoryRequest"] == 32 and "accelerator" not in resources
    assert container(kfp_spec, "ReleasePusher")["resources"]["cpuRequest"] == 1

    _, vertex_spec = compiled["vertex"]
    trainer = container(vertex_spec, "Trainer")["resources"]
    assert trainer["accelerator"] == {"type": "NVIDIA_H100_80GB", "count": "2"}
    assert trainer["cpuLimit"] == 8 and trainer["memoryLimit"] == 64


def test_gpu_node_selector_is_a_kubernetes_platform_spec(compiled):
    path, spec = compiled["kfp"]
    _, platform = runner.load_spec(path)
    executor = runner.executor_label(spec, "Trainer")
    config = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert config == {executor: {"nodeSelector": {"labels": NODE_LABEL}}}


def test_runtime_parameters_are_root_inputs_with_defaults(compiled):
    _, kfp_spec = compiled["kfp"]
    parameters = kfp_spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == set(runner.RUNTIME_PARAMETERS)
    assert all(p["parameterType"] == "STRING" and p["isOptional"] for p in parameters.values())
    assert parameters["push_destination"]["defaultValue"] == "gs://bucket/inatvision/releases"
    assert kfp_spec["defaultPipelineRoot"] == "gs://bucket/inatvision/artifacts"

    path, vertex_spec = compiled["vertex"]
    with open(path) as f:
        job = json.load(f)
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/inatvision/artifacts"
    assert job["runtimeConfig"]["parameterValues"]["export_dir"] == "gs://bucket/exports/2026"
    assert vertex_spec["root"]["inputDefinitions"]["parameters"]["export_dir"]["defaultValue"] == \
        "gs://bucket/exports/2026"


def test_config_overrides_reach_every_configurable_step(compiled, graph):
    for target in runner.TARGETS:
        _, spec = compiled[target]
        wired = {name for name, task in spec["root"]["dag"]["tasks"].items()
                 if task["inputs"].get("parameters", {}).get("config_overrides") ==
                 {"componentInputParameter": "config_overrides"}}
        assert wired == graph[1]
        tasks = spec["root"]["dag"]["tasks"]
        assert tasks["ExportExamples"]["inputs"]["parameters"]["export_dir"] == {"componentInputParameter": "export_dir"}
        for step in ("PreviousRelease", "ReleasePusher"):
            assert tasks[step]["inputs"]["parameters"]["destination"] == {"componentInputParameter": "push_destination"}


def executor_properties(spec, task, arguments):
    """What TFX's container entrypoint hands the executor once the KFP driver resolved the task's parameters."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

    root_defaults = {name: p.get("defaultValue", "") for name, p in
                     spec["root"]["inputDefinitions"]["parameters"].items()}
    values = {}
    for name, parameter in spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"].items():
        if "componentInputParameter" in parameter:
            source = parameter["componentInputParameter"]
            values[name] = arguments.get(source, root_defaults[source])
        else:
            values[name] = parameter["runtimeValue"]["constant"]
    executor_input = json_format.ParseDict({"inputs": {"parameterValues": values}},
                                           pipeline_spec_pb2.ExecutorInput())
    args = container(spec, task)["args"]
    inputs_spec = json_format.Parse(args[args.index("--json_serialized_inputs_spec_args") + 1],
                                    pipeline_spec_pb2.ComponentInputsSpec())
    return kubeflow_v2_entrypoint_utils.parse_execution_properties(
        executor_input.inputs.parameter_values, executor_input.inputs.parameters, inputs_spec)


def test_an_override_given_at_submission_reaches_the_executors(compiled):
    from inatvision.config import resolve_config

    for target in runner.TARGETS:
        _, spec = compiled[target]
        arguments, _ = runner.submission_arguments(spec, ["trainer.epochs=3", "validation.warn_only=a,b"],
                                                   export_dir="gs://bucket/exports/2027")
        assert arguments["config_overrides"] == "trainer.epochs=3;validation.warn_only=a,b"
        trainer = executor_properties(spec, "Trainer", arguments)  # as TaxonTrainerExecutor.Do reads them
        config = resolve_config(json.loads(trainer["custom_config"])["config"], trainer["config_overrides"])
        assert config.trainer.epochs == 3 and config.validation.warn_only == ["a", "b"]
        gate = executor_properties(spec, "ValidationGate", arguments)  # an @component step
        assert resolve_config(gate["config_json"], gate["config_overrides"]).trainer.epochs == 3
        export = executor_properties(spec, "ExportExamples", arguments)
        assert export["export_dir"] == "gs://bucket/exports/2027"
        compiled_config = json.loads(trainer["custom_config"])["config"]  # the compile-time --set is kept
        assert resolve_config(compiled_config, "").trainer.epochs == (20 if target == "vertex" else 80)


def test_spec_loads_back_with_the_kfp_sdk(compiled):
    import kfp.components
    from google.protobuf import json_format
    from kfp.client import client as kfp_client
    from kfp.pipeline_spec import pipeline_spec_pb2

    path, _ = compiled["kfp"]
    component = kfp.components.load_component_from_file(path)
    assert component.name == "inatvision"
    assert set(component.component_spec.inputs) == set(runner.RUNTIME_PARAMETERS)
    document = kfp_client._extract_pipeline_yaml(path)  # what Client.upload_pipeline parses
    assert document.pipeline_spec.schema_version == "2.1.0"
    assert "kubernetes" in document.platform_spec.platforms
    with open(compiled["vertex"][0]) as f:
        job = json_format.ParseDict(json.load(f), pipeline_spec_pb2.PipelineJob())
    assert job.pipeline_spec["pipelineInfo"]["name"] == "inatvision"


def test_steps_reading_outside_state_are_never_cached(compiled):
    _, spec = compiled["kfp"]
    for name, task in spec["root"]["dag"]["tasks"].items():
        assert task["cachingOptions"].get("enableCache", False) == (name not in runner.UNCACHED_STEPS), name


def test_the_image_uses_its_own_schema_file_and_beam_workers_match_the_cpu_request(compiled):
    _, spec = compiled["kfp"]
    schema = spec["root"]["dag"]["tasks"]["CuratedSchema"]["inputs"]["parameters"]["curated_schema_path"]
    assert schema["runtimeValue"]["constant"] == ""
    assert "--direct_num_workers=8" in container(spec, "ExportExamples")["args"]


def test_the_local_pipeline_keeps_its_defaults():
    from inatvision.components.data_validation.curated_schema import CURATED_SCHEMA
    from inatvision.config import build_config
    from inatvision.pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(build_config("demo"), export_dir="/x", pipeline_root="/r", push_destination="/d")
    schema = next(c for c in pipeline.components if c.id == "CuratedSchema")
    assert schema.exec_properties["curated_schema_path"] == CURATED_SCHEMA


@pytest.mark.parametrize("kwargs, message", [
    ({"target": "kfp", "out": "p.json"}, "YAML"),
    ({"target": "argo"}, "choose one of"),
    ({"target": "kfp", "kubeflow": runner.KubeflowConfig(accelerator="NVIDIA_TESLA_V100")}, "nvidia.com/gpu"),
    ({"target": "vertex", "kubeflow": runner.KubeflowConfig(accelerator="nvidia.com/gpu")}, "NVIDIA_TESLA_V100"),
    ({"target": "vertex", "kubeflow": runner.KubeflowConfig(gpu_node_selector=NODE_LABEL)}, "open-source"),
    ({"target": "kfp", "pipeline_root": "minio://mlpipeline/v2/artifacts"}, "gs://"),
    ({"target": "kfp", "image": ""}, "--image"),
])
def test_compile_rejects_what_a_target_cannot_run(tmp_path, kwargs, message):
    arguments = {"image": IMAGE, "out": "p.yaml", **kwargs}
    arguments["out"] = str(tmp_path / arguments["out"])
    with pytest.raises(runner.CompileError, match=message):
        runner.compile_pipeline(**arguments)


def test_compile_command_writes_the_spec(compiled, tmp_path):
    out = tmp_path / "p.yaml"
    result = CliRunner().invoke(commands.compile_kubeflow, [
        "--target", "kfp", "--image", IMAGE, "--out", str(out), "--gpus", "2", "--set", "trainer.epochs=5"])
    assert result.exit_code == 0, result.output
    spec, platform = runner.load_spec(str(out))
    assert container(spec, "Trainer")["resources"]["accelerator"]["count"] == "2" and platform == {}
    assert "placeholder" in result.output  # no --root: the documented placeholder bucket
    result = CliRunner().invoke(commands.compile_kubeflow, [
        "--target", "kfp", "--image", IMAGE, "--out", str(out), "--set", "trainer.epoks=5"])
    assert result.exit_code != 0 and "trainer.epochs" in result.output


class FakeClient:
    instances = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []
        FakeClient.instances.append(self)

    def create_run_from_pipeline_package(self, pipeline_file, **kwargs):
        self.calls.append((pipeline_file, kwargs))
        return mock.Mock(run_id="run-1", wait_for_run_completion=mock.Mock(return_value=mock.Mock(state="SUCCEEDED")))


@pytest.fixture
def fake_kfp(monkeypatch):
    import kfp

    FakeClient.instances = []
    monkeypatch.setattr(kfp, "Client", FakeClient)
    return FakeClient


def submit(package, *args):
    return CliRunner().invoke(commands.submit_kubeflow, ["--host", "http://kfp.example", "--package", package, *args])


def test_submit_passes_runtime_parameters_to_the_client(compiled, fake_kfp):
    package, _ = compiled["kfp"]
    result = submit(package, "--set", "trainer.epochs=3", "--set", "export.seed=2", "--export", "gs://b/export",
                    "--pipeline-root", "gs://b/root", "--set", "push.destination=gs://b/releases", "--wait")
    assert result.exit_code == 0, result.output
    client, = fake_kfp.instances
    assert client.kwargs == {"host": "http://kfp.example"}
    (path, kwargs), = client.calls
    assert path == package and kwargs["pipeline_root"] == "gs://b/root" and kwargs["experiment_name"] == "inatvision"
    assert kwargs["arguments"] == {"config_overrides": "trainer.epochs=3;export.seed=2;push.destination=gs://b/releases",
                                   "export_dir": "gs://b/export", "push_destination": "gs://b/releases"}
    assert kwargs["enable_caching"] is None
    assert "run-1" in result.output and "SUCCEEDED" in result.output


@pytest.mark.parametrize("args, message", [
    (["--set", "trainer.epoks=3", "--export", "gs://b/e"], "trainer.epochs"),
    (["--set", "trainer.epochs=many", "--export", "gs://b/e"], "bad value"),
    (["--set", "beam.runner=DataflowRunner", "--export", "gs://b/e"], "compile-kubeflow"),
    (["--export", "/home/me/export"], "gs://"),
    ([], "--export"),
])
def test_submit_refuses_before_contacting_the_cluster(compiled, fake_kfp, args, message):
    result = submit(compiled["kfp"][0], *args)
    assert result.exit_code != 0 and message in result.output
    assert fake_kfp.instances == []


def test_submit_refuses_a_vertex_package(compiled, fake_kfp, tmp_path):
    result = submit(compiled["vertex"][0], "--export", "gs://b/e")
    assert result.exit_code != 0 and "Vertex" in result.output
    spec, _ = runner.load_spec(compiled["vertex"][0])
    with pytest.raises(runner.CompileError, match="--target kfp"):
        runner.check_kfp_package(spec)
    with pytest.raises(ConfigError):
        runner.submission_arguments(spec, ["nope=1"])


def test_dry_run_prints_the_parameters_for_any_package(compiled, fake_kfp):
    result = CliRunner().invoke(commands.submit_kubeflow, [
        "--package", compiled["vertex"][0], "--dry-run", "--set", "trainer.epochs=3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"config_overrides": "trainer.epochs=3"}  # the export was compiled in
    assert fake_kfp.instances == []
    result = CliRunner().invoke(commands.submit_kubeflow, ["--package", compiled["kfp"][0], "--export", "gs://b/e"])
    assert result.exit_code != 0 and "--host" in result.output


def test_vertex_multi_worker_trainer_asks_for_worker_pools(tmp_path):
    """--trainer-workers 3 --gpus 4: the Trainer step launches a Vertex AI custom job (TFX's Vertex training
    extension) with a chief pool and a pool of 2 workers, 4 GPUs each; the launcher step itself asks for no GPU."""
    kubeflow = runner.KubeflowConfig(gpus=4, accelerator="NVIDIA_H100_80GB", trainer_workers=3,
                                     vertex_project="my-project", vertex_region="europe-west4")
    spec = runner.compile_pipeline("vertex", IMAGE, str(tmp_path / "multi.json"), profile="production",
                                   overrides=["export.num_shards=8"], root="gs://bucket/inatvision", kubeflow=kubeflow)
    container = spec["deploymentSpec"]["executors"][runner.executor_label(spec, "Trainer")]["container"]
    assert "accelerator" not in container["resources"]
    assert container["args"][container["args"].index("--executor_class_path") + 1] == (
        "inatvision.components.trainer.component.TaxonVertexTrainerExecutor")
    custom = json.loads(spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["custom_config"]
                        ["runtimeValue"]["constant"])
    assert custom["ai_platform_enable_vertex"] is True and custom["ai_platform_vertex_region"] == "europe-west4"
    job = custom["ai_platform_training_args"]
    assert job["project"] == "my-project"
    pools = job["job_spec"]["worker_pool_specs"]
    assert [pool["replica_count"] for pool in pools] == [1, 2]
    for pool in pools:
        assert pool["machine_spec"]["accelerator_type"] == "NVIDIA_H100_80GB"
        assert pool["machine_spec"]["accelerator_count"] == 4
        assert pool["container_spec"]["image_uri"] == IMAGE
    assert "config" in custom  # run_fn's own configuration travels with the job


@pytest.mark.parametrize("target, kubeflow, overrides, message", [
    ("vertex", runner.KubeflowConfig(trainer_workers=4, vertex_project="p"), ["export.num_shards=2"],
     "export.num_shards=4"),
    ("kfp", runner.KubeflowConfig(trainer_workers=2, vertex_project="p"), [], "need Vertex AI"),
    ("vertex", runner.KubeflowConfig(trainer_workers=2), ["export.num_shards=2"], "--vertex-project"),
])
def test_multi_worker_compile_errors(tmp_path, target, kubeflow, overrides, message):
    out = str(tmp_path / ("p.json" if target == "vertex" else "p.yaml"))
    with pytest.raises(runner.CompileError, match=re.escape(message)):
        runner.compile_pipeline(target, IMAGE, out, overrides=overrides, root="gs://bucket/inatvision",
                                kubeflow=kubeflow)
