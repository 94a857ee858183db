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

Key shapes, oldest first (the gate reads all three): 7 fields (no vision rank), 9 (+ vision rank, has
location), 10 (+ baseline vision rank).
"""
from __future__ import annotations

import collections
import json
from typing import Iterable, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.utils import model_util

from inatvision import features

METRIC_NAME = "taxon_outcomes"
TOP_TAXON_IDS = "top_taxon_ids"
VISION_TOP_TAXON_IDS = "vision_top_taxon_ids"
SLICE_FEATURES = [features.LEAF_TAXON_ID, features.ICONIC_TAXON, features.LEAF_RANK, features.LEAF_TRAIN_PHOTOS]
LOCATION_FEATURES = [features.LATITUDE, features.LONGITUDE]


def rank_of(taxon_id: int, top_taxon_ids: np.ndarray) -> int:
    """1-based rank of the taxon among the predictions, 0 when absent."""
    hits = np.flatnonzero(np.asarray(top_taxon_ids).ravel() == taxon_id)
    return int(hits[0]) + 1 if hits.size else 0


def outcome_key(leaf_taxon_id: int, iconic: str, leaf_rank: str, train_photos: int,
                candidate_rank: int, baseline_rank: Optional[int], shared: bool,
                vision_rank: Optional[int] = None, located: bool = False,
                baseline_vision_rank: Optional[int] = None) -> tuple:
    """(taxon, iconic, rank, train photos, candidate rank, baseline rank or -1, shared, vision-only rank,
    has location, baseline vision-only rank or -1); a vision-only rank is the model's combined rank when the
    model has no separate vision scores (-1 for the baseline's when there is no baseline)."""
    if baseline_rank is None:
        baseline_rank = baseline_vision_rank = -1
    return (leaf_taxon_id, iconic, leaf_rank, train_photos, candidate_rank, baseline_rank, shared,
            candidate_rank if vision_rank is None else vision_rank, bool(located),
            baseline_rank if baseline_vision_rank is None else baseline_vision_rank)


def located(latitude, longitude) -> bool:
    """The example has usable coordinates (both present, finite and in range), as the served model decides."""
    if latitude is None or longitude is None:
        return False
    try:
        latitude, longitude = float(latitude), float(longitude)
    except (TypeError, ValueError):
        return False
    return bool(abs(latitude) <= 90.0 and abs(longitude) <= 180.0)  # NaN compares false


class TaxonOutcomes(metric_types.Metric):
    """Counts of outcome keys (`outcome_key`: taxon, slices, the releases' ranks, shared, located) plus
    the candidate's top-1 confusions.

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
            preprocessors=[metric_types.FeaturePreprocessor(feature_keys=SLICE_FEATURES + LOCATION_FEATURES)],
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
    `vision_top_taxon_ids`: `top_taxon_ids` is required)."""
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
        candidate_rank = rank_of(taxon, candidate_top)
        vision_top = _top_taxon_ids(element.predictions, self._model_name, VISION_TOP_TAXON_IDS)
        vision_rank = None if vision_top is None else rank_of(taxon, vision_top)
        baseline_rank = baseline_vision_rank = None
        if self._baseline_name:
            baseline_rank = rank_of(taxon, _top_taxon_ids(element.predictions, self._baseline_name))
            baseline_vision_top = _top_taxon_ids(element.predictions, self._baseline_name, VISION_TOP_TAXON_IDS)
            if baseline_vision_top is not None:
                baseline_vision_rank = rank_of(taxon, baseline_vision_top)
        outcomes[outcome_key(taxon, _first(feats.get(features.ICONIC_TAXON), ""),
                             _first(feats.get(features.LEAF_RANK), ""),
                             int(_first(feats.get(features.LEAF_TRAIN_PHOTOS), 0)),
                             candidate_rank, baseline_rank,
                             bool(self._baseline_name) and taxon in self._baseline_leaf_taxa,
                             vision_rank, located(_first(feats.get(features.LATITUDE)),
                                                  _first(feats.get(features.LONGITUDE))),
                             baseline_vision_rank)] += 1
        if candidate_rank != 1:
            confusions[(taxon, int(candidate_top.ravel()[0]))] += 1
        return accumulator

    def merge_accumulators(self, accumulators):
        outcomes, confusions = collections.Counter(), collections.Counter()
        for more_outcomes, more_confusions in accumulators:
            outcomes.update(more_outcomes)
            confusions.update(more_confusions)
        return outcomes, confusions

    def extract_output(self, accumulator):
        outcomes, confusions = accumulator
        return {self._key: json.dumps({
            "outcomes": [list(key) + [count] for key, count in sorted(outcomes.items())],
            "confusions": [[true, predicted, count] for (true, predicted), count in confusions.most_common(200)],
        })}


metric_types.register_metric(TaxonOutcomes)
