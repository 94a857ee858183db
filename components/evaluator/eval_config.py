"""The TFMA EvalConfig: top-1/5/10 overall and by iconic taxon and leaf rank, plus taxon outcomes."""
import json

import tensorflow_model_analysis as tfma

from inatvision import features
from inatvision.components.evaluator.taxon_metrics import METRIC_NAME
from inatvision.config import GateConfig

CANDIDATE, BASELINE = "candidate", "baseline"
SIGNATURE = "serving_examples"


def _model_spec(name: str, is_baseline: bool) -> tfma.ModelSpec:
    return tfma.ModelSpec(name=name, signature_name=SIGNATURE, label_key=features.LABEL,
                          prediction_key="probabilities", is_baseline=is_baseline)


def build_eval_config(gate: GateConfig, with_baseline: bool, baseline_leaf_taxa=()) -> tfma.EvalConfig:
    """Class-index metrics for the candidate alone; the taxon-id comparison for both models."""
    floor = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(lower_bound={"value": gate.min_top1}))
    topk = [tfma.MetricConfig(class_name="SparseTopKCategoricalAccuracy", config=json.dumps({"k": k, "name": f"top{k}"}),
                              threshold=floor if k == 1 else None) for k in (1, 5, 10)]
    metrics_specs = [
        tfma.MetricsSpec(metrics=topk + [tfma.MetricConfig(class_name="ExampleCount")], model_names=[CANDIDATE]),
        tfma.MetricsSpec(metrics=[tfma.MetricConfig(
            class_name="TaxonOutcomes", module="inatvision.components.evaluator.taxon_metrics",
            config=json.dumps({"baseline_leaf_taxa": list(baseline_leaf_taxa), "name": METRIC_NAME}))],
            model_names=[CANDIDATE]),
    ]
    models = [_model_spec(CANDIDATE, False)] + ([_model_spec(BASELINE, True)] if with_baseline else [])
    return tfma.EvalConfig(
        model_specs=models,
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[features.ICONIC_TAXON]),
                       tfma.SlicingSpec(feature_keys=[features.LEAF_RANK])],
        metrics_specs=metrics_specs)
