"""ExportExamples: an iNaturalist export in, an Examples artifact (train/eval/test), taxonomy and report out."""
from __future__ import annotations

import json
import os

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from inatvision import features, progress
from inatvision.artifacts import ExportReport, Taxonomy, set_num_classes
from inatvision.components.export_examples import beam_pipeline, report, sufficiency
from inatvision.components.export_examples.tables import check_tables
from inatvision.taxonomy import TAXONOMY_FILE, read_taxonomy
from inatvision.config import resolve_config


class ExportExamplesSpec(ComponentSpec):
    PARAMETERS = {
        "export_dir": ExecutionParameter(type=str),
        "photo_root": ExecutionParameter(type=str, optional=True),
        "config_json": ExecutionParameter(type=str),
        "config_overrides": ExecutionParameter(type=str, optional=True),
        "export_fingerprint": ExecutionParameter(type=str, optional=True),  # keys the cache on the export's content
    }
    INPUTS = {}
    OUTPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "taxonomy": ChannelParameter(type=Taxonomy),
        "report": ChannelParameter(type=ExportReport),
    }


class RejectedTooMuch(RuntimeError):
    """The share of rejected photos passed `export.max_rejected_fraction`."""


class ExportExamplesExecutor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        config = resolve_config(exec_properties["config_json"], exec_properties.get("config_overrides") or "").export
        export_dir = exec_properties["export_dir"]
        tables = check_tables(export_dir)
        examples = artifact_utils.get_single_instance(output_dict["examples"])
        taxonomy = artifact_utils.get_single_instance(output_dict["taxonomy"])
        report_artifact = artifact_utils.get_single_instance(output_dict["report"])
        tally_dir = os.path.join(report_artifact.uri, "tally")
        with self._make_beam_pipeline() as pipeline:
            beam_pipeline.build(pipeline, tables, exec_properties.get("photo_root") or export_dir, config,
                                examples.uri, taxonomy.uri, tally_dir)
        examples.split_names = artifact_utils.encode_split_names(list(features.SPLITS))
        examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
        examples.set_string_custom_property("file_format", "tfrecords_gzip")  # TFX: TFRecords, compression by name
        tree = read_taxonomy(os.path.join(taxonomy.uri, TAXONOMY_FILE))
        set_num_classes(taxonomy, tree.num_classes)  # computed once here; later stages read the property
        leaf_ranks = [row.rank for row in tree.leaves]
        summary = report.build_report(export_dir, config, beam_pipeline.read_tally(tally_dir), leaf_ranks)
        summary["classes_without_training_photos"] = sufficiency.classes_without_training_photos(summary)
        report.write_report(summary, report_artifact.uri)
        if summary["rejected_photo_fraction"] > config.max_rejected_fraction:
            raise RejectedTooMuch(
                f"{summary['photos_rejected_total']} of {summary['photos_selected']} selected photos were rejected "
                f"({summary['rejected_photo_fraction']:.1%} > export.max_rejected_fraction="
                f"{config.max_rejected_fraction:.1%}): {summary['photos_rejected']}")
        sufficiency.check(summary)
        if summary["classes_without_training_photos"]:
            progress.report("ExportExamples", f"warning: {len(summary['classes_without_training_photos'])} "
                            f"class(es) have no training photo (taxon ids "
                            f"{summary['classes_without_training_photos'][:20]})")
        splits = summary["examples_per_split"]
        progress.summary("ExportExamples", f"{splits['train']}/{splits['eval']}/{splits['test']} examples "
                                           f"(train/eval/test), {summary['num_classes']} classes")


class ExportExamples(base_beam_component.BaseBeamComponent):
    """Applies the inclusion criteria, the leaf model, splits and photo checks (components/export_examples)."""

    SPEC_CLASS = ExportExamplesSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ExportExamplesExecutor)

    def __init__(self, export_dir: str, config_json: str, photo_root: str = "", config_overrides="",
                 export_fingerprint: str = ""):
        super().__init__(spec=ExportExamplesSpec(
            export_dir=export_dir, photo_root=photo_root, config_json=config_json,
            config_overrides=config_overrides, export_fingerprint=export_fingerprint,
            examples=types.Channel(type=standard_artifacts.Examples),
            taxonomy=types.Channel(type=Taxonomy), report=types.Channel(type=ExportReport)))
