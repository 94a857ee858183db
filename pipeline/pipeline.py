"""`create_pipeline`: the component graph and nothing else (runners pick paths and orchestrators)."""
from __future__ import annotations

from tfx import v1 as tfx

from inatvision.components.data_validation.curated_schema import CURATED_SCHEMA, CuratedSchema
from inatvision.components.data_validation.feature_statistics import statistics_options
from inatvision.components.data_validation.gate import ValidationGate
from inatvision.components.evaluator.component import TaxonEvaluator
from inatvision.components.evaluator.eval_config import build_eval_config
from inatvision.components.export_examples.component import ExportExamples
from inatvision.components.previous_release.component import PreviousRelease
from inatvision.components.pusher.component import ReleasePusher
from inatvision.components.release_gate.component import ReleaseGate
from inatvision.components.serving.compose import ComposeServing
from inatvision.components.trainer.component import TaxonTrainer
from inatvision.components.transform.fingerprint import source_fingerprint
from inatvision.config import Config

TRANSFORM_MODULE = "inatvision.components.transform.preprocessing.preprocessing_fn"
VISION_RUN_FN = "inatvision.components.trainer.run.run_fn"
GEO_RUN_FN = "inatvision.components.geo_prior.run.run_fn"


def transform_config(config: Config) -> dict:
    """What `preprocessing_fn` reads from the configuration, compiled into the Transform graph, and the
    fingerprint of its source (a code change reruns Transform and everything after it)."""
    return {"max_positional_accuracy_m": config.geo.max_positional_accuracy_m,
            "image_size": config.trainer.image_size, "source_fingerprint": source_fingerprint()}


def create_pipeline(config: Config, export_dir, pipeline_root, push_destination, metadata_connection_config=None,
                    export_fingerprint: str = "", releases_state: str = "", config_overrides="",
                    photo_root="", enable_cache: bool = True,
                    curated_schema_path: str = CURATED_SCHEMA) -> tfx.dsl.Pipeline:
    """export -> statistics -> curated schema -> validation gate -> Transform -> Trainer -> Evaluator -> gate -> push.

    With `config.geo.enabled`, a second Trainer (GeoTrainer) fits the location prior on the same examples;
    ComposeServing joins both models into the serving model, which is what the Evaluator evaluates, the
    gate judges and the Pusher releases as `serving/` (with `vision/`, `geo/` and `thresholds.csv`).

    `export_dir`, `push_destination`, `photo_root` and `config_overrides` may be Kubeflow runtime parameters.
    `curated_schema_path=""` means the schema file shipped with the installed code (images compiled elsewhere).
    """
    config_json = config.to_json()
    export = ExportExamples(export_dir=export_dir, config_json=config.sections_json("export"), photo_root=photo_root,
                            config_overrides=config_overrides, export_fingerprint=export_fingerprint)
    schema = CuratedSchema(taxonomy=export.outputs["taxonomy"], curated_schema_path=curated_schema_path)
    statistics = tfx.components.StatisticsGen(examples=export.outputs["examples"], schema=schema.outputs["schema"],
                                              stats_options=statistics_options())
    inferred_schema = tfx.components.SchemaGen(statistics=statistics.outputs["statistics"]).with_id("InferredSchemaGen")
    validator = tfx.components.ExampleValidator(statistics=statistics.outputs["statistics"],
                                                schema=schema.outputs["schema"])
    previous = PreviousRelease(destination=push_destination, releases_state=releases_state)
    validation_gate = ValidationGate(anomalies=validator.outputs["anomalies"],
                                     statistics=statistics.outputs["statistics"], schema=schema.outputs["schema"],
                                     taxonomy=export.outputs["taxonomy"],
                                     baseline_statistics=previous.outputs["baseline_statistics"],
                                     config_json=config.sections_json("validation"),
                                     config_overrides=config_overrides)
    # Not materialized: the Trainers apply the graph as they read. No statistics of the transformed features:
    # they would decode every photo, and StatisticsGen has described the raw features already.
    transform = tfx.components.Transform(
        examples=export.outputs["examples"], schema=schema.outputs["schema"],
        preprocessing_fn=TRANSFORM_MODULE, materialize=False, disable_statistics=True,
        custom_config=transform_config(config))
    transform.add_upstream_node(validation_gate)
    trainer = TaxonTrainer(
        examples=export.outputs["examples"], taxonomy=export.outputs["taxonomy"],
        schema=schema.outputs["schema"], transform_graph=transform.outputs["transform_graph"],
        base_model=previous.outputs["baseline_model"] if config.trainer.warm_start else None, run_fn=VISION_RUN_FN,
        config_json=config.sections_json("trainer", "export"),
        config_overrides=config_overrides).with_id("Trainer")
    geo_models = {}
    geo_trainer = None
    if config.geo.enabled:
        geo_trainer = TaxonTrainer(
            examples=export.outputs["examples"], taxonomy=export.outputs["taxonomy"], run_fn=GEO_RUN_FN,
            transform_graph=transform.outputs["transform_graph"],
            config_json=config.sections_json("geo", "export"),
            config_overrides=config_overrides).with_id("GeoTrainer")
        geo_models = {"geo_model": geo_trainer.outputs["model"]}
    compose = ComposeServing(
        vision_model=trainer.outputs["model"], taxonomy=export.outputs["taxonomy"],
        transform_graph=transform.outputs["transform_graph"], config_json=config.sections_json("geo"),
        config_overrides=config_overrides,
        **geo_models).with_id("ComposeServing")
    evaluator = TaxonEvaluator(
        examples=export.outputs["examples"], model=compose.outputs["model"],
        baseline_model=previous.outputs["baseline_model"],
        eval_config=build_eval_config(config.gate, with_baseline=True),
        example_splits=["test"]).with_id("Evaluator")
    gate = ReleaseGate(
        evaluation=evaluator.outputs["evaluation"],
        model=compose.outputs["model"], baseline_model=previous.outputs["baseline_model"],
        taxonomy=export.outputs["taxonomy"], config_json=config.sections_json("gate", "export"),
        config_overrides=config_overrides)
    pusher = ReleasePusher(
        model=compose.outputs["model"], vision_model=trainer.outputs["model"], blessing=gate.outputs["blessing"],
        gate_report=gate.outputs["report"], taxonomy=export.outputs["taxonomy"], export_report=export.outputs["report"],
        statistics=statistics.outputs["statistics"],
        destination=push_destination, config_json=config_json, config_overrides=config_overrides, **geo_models)
    components = [export, schema, statistics, inferred_schema, validator, previous, validation_gate, transform,
                  trainer] + ([geo_trainer] if geo_trainer else []) + [compose, evaluator, gate, pusher]
    data_steps = [export, statistics, transform, evaluator]
    for component in data_steps:
        component.with_beam_pipeline_args(config.beam.pipeline_args())
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name, pipeline_root=pipeline_root, components=components,
        enable_cache=enable_cache, metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=config.beam.pipeline_args())
