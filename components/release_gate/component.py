"""The release gate: reads TFMA's taxon outcomes, applies the paired tests, writes the report.

Its ModelBlessing is what the Pusher obeys. TFMA's own validation (the absolute top-1 floor
on the Evaluator's blessing) is one of the gate's checks. `model` is the composed serving model
(ComposeServing): its `geo` property and geo map feed the report's location prior section, the
`geo_prior_top1` check blocks a prior that lowers top-1 below vision alone, and the
`common_vision_top{1,5}_regression` checks block a candidate whose vision alone (what a user without a
location gets) regressed against the baseline's vision alone, however good its prior.
"""
import json
import os

import numpy as np
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
from inatvision.components.release_gate.decision import (GateInputs, ThresholdResult, evaluate_gate, geo_prior_check,
                                               geo_prior_comparison)
from inatvision.components.release_gate.report import write_gate_report
from inatvision.components.serving.compose import GEO_MAP_FILE, GEO_MAP_INFO_FILE
from inatvision.taxonomy import leaf_taxa
from inatvision.components.trainer.export import TAXONOMY_FILE
from inatvision.config import resolve_config


def taxon_outcomes(evaluation_uri: str) -> dict:
    """The TaxonOutcomes metric of the overall slice, as written by TFMA."""
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        if metrics_for_slice.slice_key.single_slice_keys:
            continue
        for item in metrics_for_slice.metric_keys_and_values:
            if item.key.name == METRIC_NAME and item.key.model_name in ("", CANDIDATE):
                return json.loads(item.value.bytes_value)
    raise ValueError(f"{evaluation_uri}: no {METRIC_NAME} metric in the evaluation")


def gate_inputs(outcomes: dict, candidate_taxa: dict, baseline_taxa: dict | None, release: str | None) -> GateInputs:
    """Expands the outcome counts into the per-example arrays the decision logic takes.

    Each row is an outcome key (`taxon_metrics.outcome_key`) and its count. Older evaluations wrote shorter
    keys: without the vision-only rank and location (7 fields), or without the baseline's vision-only rank
    (9); the arrays they lack stay None and the gate skips the checks that need them.
    """
    rows = outcomes["outcomes"]
    counts = np.array([row[-1] for row in rows], dtype=np.int64)

    def column(i, dtype=None):
        return np.repeat(np.array([row[i] for row in rows], dtype=dtype), counts)

    with_baseline = baseline_taxa is not None
    key_fields = len(rows[0]) - 1 if rows else 0
    with_vision = key_fields >= 9  # outcome keys with the vision-only rank and location
    with_baseline_vision = with_baseline and key_fields >= 10  # and the baseline's vision-only rank
    return GateInputs(
        leaf_taxon_id=column(0, np.int64), iconic_taxon=column(1, str), leaf_rank=column(2, str),
        leaf_train_photos=column(3, np.int64), candidate_rank=column(4, np.int64),
        candidate_taxa=candidate_taxa, confusions=[tuple(c) for c in outcomes["confusions"]],
        baseline_rank=column(5, np.int64) if with_baseline else None,
        shared=column(6, bool) if with_baseline else None,
        baseline_taxa=baseline_taxa, baseline_release=release,
        vision_rank=column(7, np.int64) if with_vision else None,
        has_location=column(8, bool) if with_vision else None,
        baseline_vision_rank=column(9, np.int64) if with_baseline_vision else None)


def _taxa(taxonomy_csv: str) -> dict:
    ids, names = leaf_taxa(taxonomy_csv)
    return dict(zip(ids, names))


def _read_optional(path: str, binary: bool = False):
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb" if binary else "r") as f:
        return f.read()


def tfma_floor_check(evaluator_blessing) -> ThresholdResult:
    blessed = evaluator_blessing.get_int_custom_property("blessed") == 1
    return ThresholdResult(name="tfma_validation", passed=blessed, value=None, limit=None,
                           explanation="TFMA's own thresholds on the Evaluator (top-1 floor): "
                                       + ("passed" if blessed else "failed"))


@component
def ReleaseGate(evaluation: InputArtifact[ModelEvaluation], evaluator_blessing: InputArtifact[ModelBlessing],  # noqa: N802
                model: InputArtifact[Model], baseline_model: InputArtifact[Model], taxonomy: InputArtifact[Taxonomy],
                config_json: Parameter[str], config_overrides: Parameter[str],
                blessing: OutputArtifact[ModelBlessing], report: OutputArtifact[GateReport]) -> None:
    """Blesses the candidate only when every threshold holds; `identical_to_baseline` means no change."""
    config = resolve_config(config_json, config_overrides)
    tf.io.gfile.makedirs(report.uri)
    if tf.io.gfile.exists(os.path.join(evaluation.uri, IDENTICAL_MARKER)):
        _bless(blessing, False, identical=True)
        with tf.io.gfile.GFile(os.path.join(report.uri, "gate_report.json"), "w") as f:
            json.dump({"blessed": False, "identical_to_baseline": True,
                       "summary": "The candidate is the baseline release's model: nothing to release."}, f)
        return
    has_baseline = baseline_found([baseline_model])
    baseline_taxa = None
    if has_baseline:
        baseline_taxa = _taxa(os.path.join(path_utils.serving_model_path(baseline_model.uri), TAXONOMY_FILE))
    inputs = gate_inputs(taxon_outcomes(evaluation.uri), _taxa(os.path.join(taxonomy.uri, "taxonomy.csv")),
                         baseline_taxa, baseline_model.get_string_custom_property("release") or None)
    map_info = json.loads(_read_optional(os.path.join(model.uri, GEO_MAP_INFO_FILE)) or "{}")
    geo_prior = geo_prior_comparison(inputs, model.get_string_custom_property("geo") or "unknown",
                                     model.get_string_custom_property("geo_explanation") or "",
                                     map_info.get("caption"))
    geo_check = geo_prior_check(inputs, config.gate, seed=config.export.seed)
    result = evaluate_gate(inputs, config.gate, extra_checks=[check for check in (
        geo_check, tfma_floor_check(evaluator_blessing)) if check is not None],
        seed=config.export.seed, geo_prior=geo_prior)
    html_path, json_path = write_gate_report(result, report.uri,
                                             _read_optional(os.path.join(model.uri, GEO_MAP_FILE), binary=True))
    _bless(blessing, result.blessed)
    report.set_string_custom_property("verdict", "blessed" if result.blessed else "not_blessed")
    report.set_string_custom_property("html", str(html_path))


def _bless(blessing, blessed: bool, identical: bool = False) -> None:
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_int_custom_property("identical_to_baseline", int(identical))
    tf.io.gfile.makedirs(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as f:
        f.write("")
