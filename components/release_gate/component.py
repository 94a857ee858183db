"""The release gate: reads TFMA's taxon outcomes, applies the paired tests, writes the report.

Its ModelBlessing is what the Pusher obeys. TFMA's own validation (the absolute top-1 floor
on the Evaluator's blessing) is one of the gate's checks. `model` is the composed serving model
(ComposeServing): its `geo` property and the map the gate draws of its prior (`geo_map`) feed the report's
location prior section, the `geo_prior_top1` check blocks a prior that lowers top-1 below vision alone, and
the `common_vision_top{1,5}_regression` checks block a candidate whose vision alone (what a user without a
location gets) regressed against the baseline's vision alone, however good its prior. The checks are
`checks`, the verdict `decision`, the report's data `report_data` and `tables`, its files `report`.
"""
import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Model, ModelBlessing, ModelEvaluation
from tfx.utils import path_utils

from inatvision.artifacts import GateReport, Taxonomy
from inatvision.components.evaluator.component import IDENTICAL_MARKER, baseline_found
from inatvision.components.evaluator.eval_config import CANDIDATE
from inatvision.components.evaluator.taxon_metrics import METRIC_NAME
from inatvision.components.release_gate.checks import geo_prior_check, tfma_floor_check
from inatvision.components.release_gate.decision import evaluate_gate
from inatvision.components.release_gate.geo_map import draw_geo_map
from inatvision.components.release_gate.inputs import gate_inputs
from inatvision.components.release_gate.report import write_gate_report
from inatvision.components.release_gate.tables import geo_prior_comparison
from inatvision.taxonomy import MODEL_TAXONOMY_FILE, TAXONOMY_FILE, read_taxonomy
from inatvision.config import resolve_config
from inatvision.provenance import component_provenance


def read_evaluation(evaluation_uri: str) -> tuple[dict, dict[str, float]]:
    """From one read of TFMA's metrics: the candidate's TaxonOutcomes metric (overall slice) and its top-1 on
    every slice, by slice name ("Overall", "iconic_taxon:Aves", ...)."""
    outcomes, slice_top1 = None, {}
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        overall = not metrics_for_slice.slice_key.single_slice_keys
        for item in metrics_for_slice.metric_keys_and_values:
            if item.key.model_name not in ("", CANDIDATE):
                continue
            if item.key.name == METRIC_NAME and overall:
                outcomes = json.loads(item.value.bytes_value)
            elif item.key.name == "top1":
                key = tfma.slicer.deserialize_slice_key(metrics_for_slice.slice_key)
                slice_top1[tfma.slicer.stringify_slice_key(key)] = item.value.double_value.value
    if outcomes is None:
        raise ValueError(f"{evaluation_uri}: no {METRIC_NAME} metric in the evaluation")
    return outcomes, slice_top1


def taxon_outcomes(evaluation_uri: str) -> dict:
    """The TaxonOutcomes metric of the overall slice, as written by TFMA."""
    return read_evaluation(evaluation_uri)[0]


def _taxa(taxonomy_csv: str) -> dict:
    tree = read_taxonomy(taxonomy_csv)
    return dict(zip(tree.leaf_taxon_ids, tree.leaf_names))


@component
def ReleaseGate(evaluation: InputArtifact[ModelEvaluation],  # noqa: N802
                model: InputArtifact[Model], baseline_model: InputArtifact[Model], taxonomy: InputArtifact[Taxonomy],
                config_json: Parameter[str], config_overrides: Parameter[str],
                blessing: OutputArtifact[ModelBlessing], report: OutputArtifact[GateReport]) -> None:
    """Blesses the candidate only when every threshold holds; `identical_to_baseline` means no change."""
    config = resolve_config(config_json, config_overrides)
    tf.io.gfile.makedirs(report.uri)
    if tf.io.gfile.exists(os.path.join(evaluation.uri, IDENTICAL_MARKER)):
        _bless(blessing, False, identical=True)
        with tf.io.gfile.GFile(os.path.join(report.uri, "gate_report.json"), "w") as f:
            json.dump({"blessed": False, "identical_to_baseline": True, "provenance": component_provenance(),
                       "summary": "The candidate is the baseline release's model: nothing to release."}, f)
        return
    has_baseline = baseline_found([baseline_model])
    baseline_taxa = None
    if has_baseline:
        baseline_taxa = _taxa(os.path.join(path_utils.serving_model_path(baseline_model.uri), MODEL_TAXONOMY_FILE))
    candidate_taxa = _taxa(os.path.join(taxonomy.uri, TAXONOMY_FILE))
    outcomes, slice_top1 = read_evaluation(evaluation.uri)
    inputs = gate_inputs(outcomes, candidate_taxa, baseline_taxa,
                         baseline_model.get_string_custom_property("release") or None)
    geo_map = draw_geo_map(path_utils.serving_model_path(model.uri), candidate_taxa)
    geo_prior = geo_prior_comparison(inputs, model.get_string_custom_property("geo") or "unknown",
                                     model.get_string_custom_property("geo_explanation") or "",
                                     geo_map[1].caption() if geo_map else None)
    checks = [geo_prior_check(inputs, config.gate, seed=config.export.seed),
              tfma_floor_check(slice_top1, config.gate.min_top1)]
    result = evaluate_gate(inputs, config.gate, extra_checks=checks, seed=config.export.seed, geo_prior=geo_prior)
    result.provenance = component_provenance()
    html_path, json_path = write_gate_report(result, report.uri, geo_map[0] if geo_map else None)
    _bless(blessing, result.blessed)
    report.set_string_custom_property("verdict", "blessed" if result.blessed else "not_blessed")
    report.set_string_custom_property("html", str(html_path))


def _bless(blessing, blessed: bool, identical: bool = False) -> None:
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_int_custom_property("identical_to_baseline", int(identical))
    tf.io.gfile.makedirs(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as f:
        f.write("")
