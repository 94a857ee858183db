"""TFX's Trainer with the run's taxonomy as an input and warm start from the previous release.

The standard Trainer cannot take the `taxonomy.csv` artifact, and its `custom_config` is
fixed at compile time; this component adds both (the taxonomy channel and a
`config_overrides` parameter that Kubeflow can set at submission) and runs TFX's own
GenericExecutor with the same `run_fn` interface.
"""
import json
import os

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_trainer_executor
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs as specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from inatvision.artifacts import Taxonomy
from inatvision.components.pusher import release_layout
from inatvision.config import resolve_config
from inatvision.taxonomy import TAXONOMY_FILE

TAXONOMY_KEY = "taxonomy"
CONFIG_OVERRIDES_KEY = "config_overrides"


class TaxonTrainerSpec(ComponentSpec):
    PARAMETERS = {
        **specs.TrainerSpec.PARAMETERS,
        CONFIG_OVERRIDES_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {**specs.TrainerSpec.INPUTS, TAXONOMY_KEY: ChannelParameter(type=Taxonomy)}
    OUTPUTS = specs.TrainerSpec.OUTPUTS


class TaxonTrainerExecutor(trainer_executor.GenericExecutor):
    """Adds the taxonomy path, the resolved configuration and durable state folders to custom_config."""

    def Do(self, input_dict, output_dict, exec_properties):
        custom = json.loads(exec_properties.get(specs.CUSTOM_CONFIG_KEY) or "{}")
        config = resolve_config(custom["config"], exec_properties.get(CONFIG_OVERRIDES_KEY) or "")
        component_root = os.path.dirname(os.path.dirname(artifact_utils.get_single_uri(output_dict[specs.MODEL_KEY])))
        taxonomy_uri = artifact_utils.get_single_uri(input_dict[TAXONOMY_KEY])
        custom.update(config=config.to_json(), taxonomy_path=os.path.join(taxonomy_uri, TAXONOMY_FILE),
                      state_root=component_root)
        base = input_dict.get(specs.BASE_MODEL_KEY) or []
        if base and base[0].get_int_custom_property("found") == 1:
            custom["warm_start_model"] = release_layout.baseline_vision_dir(base[0].uri)
        input_dict = {key: value for key, value in input_dict.items() if key != specs.BASE_MODEL_KEY}
        exec_properties = {**exec_properties, specs.CUSTOM_CONFIG_KEY: json.dumps(custom)}
        super().Do(input_dict, output_dict, exec_properties)


class TaxonVertexTrainerExecutor(vertex_trainer_executor.GenericExecutor):
    """Runs TaxonTrainerExecutor as a Vertex AI custom job: `custom_config` carries TFX's Vertex training keys
    (`ai_platform_training_args` with `worker_pool_specs`: a chief pool and a worker pool, which Vertex joins with
    TF_CONFIG, so that run_fn trains under MultiWorkerMirroredStrategy)."""

    def _GetExecutorClass(self):
        return TaxonTrainerExecutor


class TaxonTrainer(base_component.BaseComponent):
    """Trains with `run_fn` on the examples, taking its classes from the taxonomy artifact."""

    SPEC_CLASS = TaxonTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TaxonTrainerExecutor)

    def __init__(self, examples, taxonomy, run_fn: str, config_json: str, schema=None, transform_graph=None,
                 base_model=None, config_overrides="", eval_split: str = "eval"):
        super().__init__(spec=TaxonTrainerSpec(
            examples=examples, taxonomy=taxonomy, schema=schema, transform_graph=transform_graph,
            base_model=base_model, run_fn=run_fn,
            train_args=trainer_pb2.TrainArgs(splits=["train"]),
            eval_args=trainer_pb2.EvalArgs(splits=[eval_split]),
            custom_config=json.dumps({"config": config_json}),
            config_overrides=config_overrides,
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun)))
