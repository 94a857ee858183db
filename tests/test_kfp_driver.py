"""Both compiled specs, executed on paper: the ExecutorInput KFP's driver would give every task, parsed as TFX's
container entrypoint parses it (no podman here; tests/test_containers.py runs the same driver in containers)."""
import json

import pytest
import yaml
from google.protobuf import json_format

from tests import kfp_driver

IMAGE = "localhost/inatvision:test"


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    out = tmp_path_factory.mktemp("specs")
    return {"kfp": kfp_driver.compile_spec("kfp", IMAGE, str(out)),
            "vertex": kfp_driver.compile_spec("vertex", IMAGE, str(out), "production")}


@pytest.fixture(scope="module")
def planned(specs, tmp_path_factory):
    """Every task's ExecutorInput and filled command line, upstream outputs as the driver plans them."""
    result = {}
    for target, spec in specs.items():
        run = kfp_driver.Run(spec, pipeline_root=str(tmp_path_factory.mktemp(target)), run_id="run-1",
                             arguments={"export_dir": "/data/export", "push_destination": "/data/releases"})
        steps = {}
        kfp_driver.run_pipeline(run, lambda step: 0, log_dir=str(tmp_path_factory.mktemp("logs")), plan_only=True)
        for task in kfp_driver.topological_order(spec):
            executor_input = run.executor_input(task)
            steps[task] = (executor_input, *run.command_and_args(task, executor_input))
        result[target] = (run, steps)
    return result


def artifact_types(spec: dict) -> set[str]:
    titles = set()
    for component in spec["components"].values():
        for side in ("inputDefinitions", "outputDefinitions"):
            for definition in component.get(side, {}).get("artifacts", {}).values():
                titles.add(kfp_driver.type_title(definition["artifactType"]))
    return titles


def test_every_artifact_type_in_both_specs_imports_as_the_entrypoint_imports_it(specs):
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint
    from tfx.types.artifact import Artifact
    from tfx.utils import import_utils

    custom = set()
    for spec in specs.values():
        for title in artifact_types(spec):
            schema = pipeline_spec_pb2.ArtifactTypeSchema(instance_schema=yaml.safe_dump({"title": title}))
            cls = import_utils.import_class_by_path(entrypoint._retrieve_class_path(schema))
            assert issubclass(cls, Artifact), title
            if title.startswith("inatvision."):  # named by their import path
                assert cls.TYPE_NAME == title
                custom.add(title)
            else:  # TFX's own: tfx.<TYPE_NAME>
                assert f"tfx.{cls.TYPE_NAME}" == title
    assert custom == {"inatvision.Taxonomy", "inatvision.ExportReport", "inatvision.ValidationReport",
                      "inatvision.GateReport", "inatvision.Release"}


def test_the_dag_runs_export_first_and_push_last(specs):
    for spec in specs.values():
        order = kfp_driver.topological_order(spec)
        assert order[0] == "ExportExamples" and order[-1] == "ReleasePusher"
        assert set(order) == set(spec["root"]["dag"]["tasks"])
        for position, task in enumerate(order):
            assert set(spec["root"]["dag"]["tasks"][task].get("dependentTasks", [])) <= set(order[:position])


def test_every_input_artifact_is_an_upstream_output_of_the_same_type(planned):
    for run, steps in planned.values():
        for task, (executor_input, _, _) in steps.items():
            definitions = kfp_driver.component(run.spec, task).get("inputDefinitions", {}).get("artifacts", {})
            for key, value in executor_input["inputs"]["artifacts"].items():
                artifact, = value["artifacts"]
                producer = artifact["name"].split("/")[1]
                assert artifact["uri"] == f"{run.task_root(producer)}/{artifact['name'].split('/')[2]}"
                assert kfp_driver.type_title(artifact["type"]) == \
                    kfp_driver.type_title(definitions[key]["artifactType"]), (task, key)
            outputs = executor_input["outputs"]
            assert outputs["outputFile"].startswith(run.task_root(task))
            assert all(a["artifacts"][0]["uri"].startswith(run.task_root(task)) for a in outputs["artifacts"].values())


def test_every_parameter_is_filled_and_no_placeholder_is_left(planned):
    for target, (run, steps) in planned.items():
        for task, (executor_input, command, args) in steps.items():
            declared = kfp_driver.component(run.spec, task).get("inputDefinitions", {}).get("parameters", {})
            values = executor_input["inputs"]["parameterValues"]
            assert set(values) == set(declared), (target, task)
            assert all(value is not None for value in values.values()), (target, task)
            assert command == ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
            assert json.loads(args[args.index("--json_serialized_invocation_args") + 1]) == executor_input
            assert not [item for item in command + args if kfp_driver.PLACEHOLDER in item]
        tasks = steps
        assert tasks["ExportExamples"][0]["inputs"]["parameterValues"]["export_dir"] == "/data/export"
        assert tasks["ReleasePusher"][0]["inputs"]["parameterValues"]["destination"] == "/data/releases"


def test_the_entrypoint_parses_every_executor_input(planned):
    """What kubeflow_v2_run_executor does before `executor.Do`: flags, artifacts, properties, executor class."""
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
    from tfx.utils import import_utils

    for run, steps in planned.values():
        for task, (_, command, args) in steps.items():
            flags, beam_args = kubeflow_v2_run_executor._parse_flags(args)
            executor_input = json_format.Parse(flags.json_serialized_invocation_args, pipeline_spec_pb2.ExecutorInput())
            inputs_spec = json_format.Parse(flags.json_serialized_inputs_spec_args,
                                            pipeline_spec_pb2.ComponentInputsSpec())
            inputs = entrypoint.parse_raw_artifact_dict(executor_input.inputs.artifacts)
            outputs = entrypoint.parse_raw_artifact_dict(executor_input.outputs.artifacts)
            properties = entrypoint.parse_execution_properties(
                executor_input.inputs.parameter_values, executor_input.inputs.parameters, inputs_spec)
            assert set(properties) == set(inputs_spec.parameters), task
            assert all(a[0].uri for a in list(inputs.values()) + list(outputs.values())), task
            assert "--runner=DirectRunner" in beam_args and "--direct_num_workers=2" in beam_args
            assert import_utils.import_class_by_path(flags.executor_class_path), task


def fake_entrypoint(step: kfp_driver.Step) -> int:
    """Writes the executor output the TFX entrypoint would write, with a custom property on each output."""
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint

    executor_input = json_format.ParseDict(step.executor_input, pipeline_spec_pb2.ExecutorInput())
    names = {}
    outputs = entrypoint.parse_raw_artifact_dict(executor_input.outputs.artifacts, names)
    for artifacts in outputs.values():
        artifacts[0].set_string_custom_property("written_by", step.task)
    executor_output = pipeline_spec_pb2.ExecutorOutput()
    for key, value in entrypoint.translate_executor_output(outputs, names).items():
        executor_output.artifacts[key].CopyFrom(value)
    with open(executor_input.outputs.output_file, "w") as f:
        f.write(json_format.MessageToJson(executor_output))
    with open(step.log_path, "w") as f:
        f.write(" ".join(step.command))
    return 0 if step.task != "ReleaseGate" else 1


def test_outputs_metadata_flows_downstream_and_a_failed_step_ends_the_run(specs, tmp_path):
    run = kfp_driver.Run(specs["kfp"], pipeline_root=str(tmp_path / "root"), run_id="run-2",
                         arguments={"export_dir": "/data/export"})
    results = kfp_driver.run_pipeline(run, fake_entrypoint, log_dir=str(tmp_path / "logs"))
    order = kfp_driver.topological_order(run.spec)
    assert [r.task for r in results] == order[:order.index("ReleaseGate") + 1]
    assert [r.exit_code for r in results][-2:] == [0, 1]
    assert "ReleasePusher" not in run.outputs
    baseline = run.executor_input("Evaluator")["inputs"]["artifacts"]["baseline_model"]["artifacts"][0]
    assert baseline["metadata"]["written_by"] == "PreviousRelease"
    assert baseline["name"] == "run-2/PreviousRelease/baseline_model"


def test_the_driver_refuses_what_kfp_would_refuse(specs, tmp_path):
    run = kfp_driver.Run(specs["kfp"], pipeline_root=str(tmp_path), run_id="run-3", arguments={"exportdir": "/x"})
    with pytest.raises(kfp_driver.SpecError, match="not runtime parameters"):
        run.executor_input("ExportExamples")
    run.arguments = {}
    with pytest.raises(kfp_driver.SpecError, match="produced no output"):
        run.executor_input("CuratedSchema")  # ExportExamples has not run
