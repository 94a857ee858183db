"""TFX's Evaluator, extended for releases with different class sets.

The executor adapts the compiled EvalConfig at run time: without a previous release the
baseline model is dropped (first release: absolute checks only); with one, the taxon-id
comparison learns the baseline's leaf taxa. A candidate with the baseline's fingerprint
(a rerun on unchanged inputs) is not evaluated again: it is marked identical.
"""
import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.components import Evaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs as specs
from tfx.utils import path_utils, proto_utils

from inatvision.components.evaluator.taxon_metrics import METRIC_NAME
from inatvision.components.pusher import release_layout
from inatvision.taxonomy import MODEL_TAXONOMY_FILE, read_taxonomy

IDENTICAL_MARKER = "IDENTICAL_TO_BASELINE"


def baseline_found(baseline_artifacts) -> bool:
    return bool(baseline_artifacts) and baseline_artifacts[0].get_int_custom_property("found") == 1


def adapt_eval_config(eval_config: tfma.EvalConfig, baseline_leaf_taxa) -> tfma.EvalConfig:
    """Drops the baseline spec when there is none; gives the taxon metric the baseline's leaves."""
    adapted = tfma.EvalConfig()
    adapted.CopyFrom(eval_config)
    if baseline_leaf_taxa is None:
        keep = [spec for spec in adapted.model_specs if not spec.is_baseline]
        del adapted.model_specs[:]
        adapted.model_specs.extend(keep)
    for metrics_spec in adapted.metrics_specs:
        for metric in metrics_spec.metrics:
            if metric.class_name == "TaxonOutcomes":
                metric.config = json.dumps({"name": METRIC_NAME, "baseline_leaf_taxa": list(baseline_leaf_taxa or [])})
    return adapted


class TaxonEvaluatorExecutor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):
        baseline = input_dict.get(specs.BASELINE_MODEL_KEY) or []
        candidate_dir = path_utils.serving_model_path(artifact_utils.get_single_uri(input_dict[specs.MODEL_KEY]))
        baseline_taxa = None
        if baseline_found(baseline):
            baseline_dir = path_utils.serving_model_path(baseline[0].uri)
            if release_layout.model_fingerprint(candidate_dir) == baseline[0].get_string_custom_property(
                    "model_fingerprint"):
                self._mark_identical(output_dict, baseline[0])
                return
            baseline_taxa = read_taxonomy(os.path.join(baseline_dir, MODEL_TAXONOMY_FILE)).leaf_taxon_ids
        else:
            input_dict = {key: value for key, value in input_dict.items() if key != specs.BASELINE_MODEL_KEY}
        eval_config = tfma.EvalConfig()
        proto_utils.json_to_proto(exec_properties[specs.EVAL_CONFIG_KEY], eval_config)
        exec_properties = dict(exec_properties)
        exec_properties[specs.EVAL_CONFIG_KEY] = proto_utils.proto_to_json(
            adapt_eval_config(eval_config, baseline_taxa))
        super().Do(input_dict, output_dict, exec_properties)

    @staticmethod
    def _mark_identical(output_dict, baseline_artifact) -> None:
        evaluation_uri = artifact_utils.get_single_uri(output_dict[specs.EVALUATION_KEY])
        tf.io.gfile.makedirs(evaluation_uri)
        with tf.io.gfile.GFile(os.path.join(evaluation_uri, IDENTICAL_MARKER), "w") as f:
            f.write(baseline_artifact.get_string_custom_property("release"))
        blessing = artifact_utils.get_single_instance(output_dict[specs.BLESSING_KEY])
        blessing.set_int_custom_property("blessed", 0)
        blessing.set_int_custom_property("identical_to_baseline", 1)
        tf.io.gfile.makedirs(blessing.uri)
        with tf.io.gfile.GFile(os.path.join(blessing.uri, "NOT_BLESSED"), "w") as f:
            f.write("identical to the baseline release")


class TaxonEvaluator(Evaluator):
    """Evaluator whose executor compares releases by taxon (see module docstring)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(TaxonEvaluatorExecutor)
