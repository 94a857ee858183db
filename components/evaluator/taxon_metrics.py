"""A TFMA cross-model metric that compares releases by taxon id, never by class index.

For each test example it records the rank of the true leaf taxon among the candidate's
(and the baseline's) top taxon ids, with the slices the gate needs. The accumulator is a
counter of outcome keys, so it stays small however many examples there are, merges on
any Beam runner, and lets the gate run paired tests on the shared examples.

The candidate is the composed serving model (vision with the location prior): its rank is that of the
combined scores, and the key also holds the rank of its vision scores alone (`vision_top_taxon_ids`; the
combined rank for a model without that output) and whether the example has a location, so the gate can
compare vision alone with vision and prior on the test examples with coordinates. Last comes the baseline's
vision-only rank (its `vision_top_taxon_ids`; its `top_taxon_ids` when it has no such output, i.e. it is
vision-only), so the gate can also compare the two releases' vision alone: what a user who gives no
location gets.

The key is `inatvision.taxon_outcomes.OutcomeKey`, one record that the gate reads by field name.
"""
from __future__ import annotations

import collections
from typing import Iterable, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.utils import model_util

from inatvision import features
from inatvision.taxon_outcomes import NO_BASELINE_RANK, OutcomeKey, encode

METRIC_NAME = "taxon_outcomes"
TOP_TAXON_IDS = "top_taxon_ids"
VISION_TOP_TAXON_IDS = "vision_top_taxon_ids"
HAS_LOCATION = "has_location"  # the served model's decision (inatvision/location.py's rule)
SLICE_FEATURES = [features.LEAF_TAXON_ID, features.ICONIC_TAXON, features.LEAF_RANK, features.LEAF_TRAIN_PHOTOS]


def rank_of(taxon_id: int, top_taxon_ids: np.ndarray) -> int:
    """1-based rank of the taxon among the predictions, 0 when absent."""
    hits = np.flatnonzero(np.asarray(top_taxon_ids).ravel() == taxon_id)
    return int(hits[0]) + 1 if hits.size else 0


class TaxonOutcomes(metric_types.Metric):
    """Counts of `OutcomeKey`s (taxon, slices, the releases' ranks, shared, located) plus the candidate's
    top-1 confusions.

    `baseline_leaf_taxa`: the previous release's leaf taxon ids (the shared examples are those
    whose leaf is a leaf in both releases).
    """

    def __init__(self, baseline_leaf_taxa: Iterable[int] = (), name: str = METRIC_NAME):
        super().__init__(_computations, baseline_leaf_taxa=list(baseline_leaf_taxa), name=name)


def _computations(name, eval_config, model_names, baseline_leaf_taxa=(), output_names=("",), sub_keys=None,
                  **unused):
    baseline_spec = model_util.get_baseline_model_spec(eval_config)
    baseline_name = baseline_spec.name if baseline_spec else None
    computations = []
    for model_name in model_names:
        if model_name == baseline_name:
            continue
        key = metric_types.MetricKey(name=name, model_name=model_name)
        computations.append(metric_types.MetricComputation(
            keys=[key],
            preprocessors=[metric_types.FeaturePreprocessor(feature_keys=SLICE_FEATURES)],
            combiner=_OutcomeCombiner(key, model_name, baseline_name, frozenset(baseline_leaf_taxa))))
    return computations


def _first(value, default=None):
    array = np.asarray(value).ravel() if value is not None else np.asarray([])
    if array.size == 0:
        return default
    item = array[0]
    return item.decode() if isinstance(item, bytes) else item.item() if hasattr(item, "item") else item


def _top_taxon_ids(predictions, model_name: str, key: str = TOP_TAXON_IDS) -> Optional[np.ndarray]:
    """The model's `key` output for the example; None when the model has no such output (only for
    `vision_top_taxon_ids`, which a plain vision model lacks: `top_taxon_ids` is required)."""
    by_model = predictions.get(model_name, predictions) if isinstance(predictions, dict) else predictions
    if key != TOP_TAXON_IDS and (not isinstance(by_model, dict) or key not in by_model):
        return None
    return np.asarray(by_model[key])


class _OutcomeCombiner(beam.CombineFn):
    def __init__(self, key, model_name, baseline_name, baseline_leaf_taxa):
        self._key, self._model_name, self._baseline_name = key, model_name, baseline_name
        self._baseline_leaf_taxa = baseline_leaf_taxa

    def create_accumulator(self):
        return collections.Counter(), collections.Counter()

    def add_input(self, accumulator, element):
        outcomes, confusions = accumulator
        feats = element.features
        taxon = int(_first(feats[features.LEAF_TAXON_ID]))
        candidate_top = _top_taxon_ids(element.predictions, self._model_name)
        candidate_rank, vision_rank = self._ranks(taxon, candidate_top, element.predictions, self._model_name)
        baseline_rank = baseline_vision_rank = NO_BASELINE_RANK
        if self._baseline_name:
            baseline_rank, baseline_vision_rank = self._ranks(
                taxon, _top_taxon_ids(element.predictions, self._baseline_name), element.predictions,
                self._baseline_name)
        outcomes[OutcomeKey(
            leaf_taxon_id=taxon, iconic_taxon=_first(feats.get(features.ICONIC_TAXON), ""),
            leaf_rank=_first(feats.get(features.LEAF_RANK), ""),
            leaf_train_photos=int(_first(feats.get(features.LEAF_TRAIN_PHOTOS), 0)),
            candidate_rank=candidate_rank, baseline_rank=baseline_rank,
            shared=bool(self._baseline_name) and taxon in self._baseline_leaf_taxa, vision_rank=vision_rank,
            has_location=self._located(element.predictions),
            baseline_vision_rank=baseline_vision_rank)] += 1
        if candidate_rank != 1:
            confusions[(taxon, int(candidate_top.ravel()[0]))] += 1
        return accumulator

    def _located(self, predictions) -> bool:
        """Whether the candidate used the example's location: its `has_location` output (ComposeServing's, the
        Transform graph's rule); a model without that output is vision-only and used none."""
        decided = _top_taxon_ids(predictions, self._model_name, HAS_LOCATION)
        return decided is not None and bool(decided.ravel()[0])

    @staticmethod
    def _ranks(taxon: int, top_taxon_ids: np.ndarray, predictions, model_name: str) -> tuple[int, int]:
        """(served rank, vision-only rank) of the taxon; a model without `vision_top_taxon_ids` is
        vision-only, so its served rank is its vision-only rank."""
        rank = rank_of(taxon, top_taxon_ids)
        vision_top = _top_taxon_ids(predictions, model_name, VISION_TOP_TAXON_IDS)
        return rank, rank if vision_top is None else rank_of(taxon, vision_top)

    def merge_accumulators(self, accumulators):
        outcomes, confusions = collections.Counter(), collections.Counter()
        for more_outcomes, more_confusions in accumulators:
            outcomes.update(more_outcomes)
            confusions.update(more_confusions)
        return outcomes, confusions

    def extract_output(self, accumulator):
        outcomes, confusions = accumulator
        return {self._key: encode(outcomes, [(true, predicted, count)
                                             for (true, predicted), count in confusions.most_common(200)])}


metric_types.register_metric(TaxonOutcomes)
