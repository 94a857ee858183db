"""The tables of the gate's report, computed from its inputs: accuracy by slice, taxa added and removed, the
most regressed taxa, the commonest confusions, accuracy by training photos (by bucket and by taxon) and the
location prior's effect.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from inatvision.components.release_gate.inputs import GateInputs
from inatvision.components.release_gate.report_data import (ConfusedPair, GeoPriorComparison, SliceComparison,
                                                            Taxon, TaxonAccuracy, TaxonRegression, TrainPhotosBucket)
from inatvision.components.release_gate.statistics import correct_at, topk_accuracy
from inatvision.config import GateConfig

TRAIN_PHOTO_BUCKET_EDGES = (20, 50, 100, 500)  # buckets: <20, 20-49, 50-99, 100-499, 500+
MAX_LISTED = 20  # rows in the regressed-taxa and confused-pairs lists


def compare_slice(name: str, inputs: GateInputs, mask: np.ndarray) -> SliceComparison:
    """Candidate accuracy on the slice, and both releases on the slice's shared examples."""
    shared = mask & inputs.shared
    baseline_rank = inputs.baseline_rank[shared] if inputs.has_baseline else np.zeros(0)
    return SliceComparison(
        name=name, n=int(mask.sum()),
        candidate_top1=topk_accuracy(inputs.candidate_rank[mask], 1),
        candidate_top5=topk_accuracy(inputs.candidate_rank[mask], 5),
        candidate_top10=topk_accuracy(inputs.candidate_rank[mask], 10),
        n_shared=int(shared.sum()),
        shared_candidate_top1=topk_accuracy(inputs.candidate_rank[shared], 1),
        shared_candidate_top5=topk_accuracy(inputs.candidate_rank[shared], 5),
        shared_baseline_top1=topk_accuracy(baseline_rank, 1),
        shared_baseline_top5=topk_accuracy(baseline_rank, 5))


def _values_by_frequency(values: np.ndarray) -> list[str]:
    names, counts = np.unique(values, return_counts=True)
    return [str(names[i]) for i in np.argsort(-counts, kind="stable")]


def overall_comparison(inputs: GateInputs, gate: GateConfig) -> list[SliceComparison]:
    """All examples, shared and common shared examples (with a baseline), then each leaf rank."""
    rows = [compare_slice("all test examples", inputs, np.ones(inputs.shared.shape, dtype=bool))]
    if inputs.has_baseline:
        rows.append(compare_slice("shared taxa", inputs, inputs.shared))
        rows.append(compare_slice(f"common shared taxa (>= {gate.common_taxa_min_train_photos} training photos)",
                                  inputs, inputs.common_shared(gate.common_taxa_min_train_photos)))
    rows += [compare_slice(f"{rank} leaves", inputs, inputs.leaf_rank == rank)
             for rank in _values_by_frequency(inputs.leaf_rank)]
    return rows


def iconic_comparison(inputs: GateInputs) -> list[SliceComparison]:
    """One row per iconic taxon, largest first."""
    iconic = inputs.iconic_names()
    return [compare_slice(name, inputs, iconic == name) for name in _values_by_frequency(iconic)]


def taxa_difference(taxa: dict[int, str], other: dict[int, str]) -> list[Taxon]:
    """Leaves of `taxa` that are not leaves of `other`, by taxon id."""
    return [Taxon(taxon_id=int(taxon_id), name=taxa[taxon_id]) for taxon_id in sorted(set(taxa) - set(other))]


def most_regressed_taxa(inputs: GateInputs, limit: int = MAX_LISTED) -> list[TaxonRegression]:
    """Shared taxa whose top-1 fell, most test examples lost first so one-photo taxa do not crowd the list."""
    if not inputs.has_baseline:
        return []
    shared = inputs.shared
    taxa, first, index, n = np.unique(inputs.leaf_taxon_id[shared], return_index=True, return_inverse=True,
                                      return_counts=True)
    candidate = np.bincount(index, weights=correct_at(inputs.candidate_rank[shared], 1), minlength=taxa.size)
    baseline = np.bincount(index, weights=correct_at(inputs.baseline_rank[shared], 1), minlength=taxa.size)
    lost = baseline - candidate
    change = -lost / n
    iconic = inputs.iconic_names()[shared]
    order = [i for i in np.lexsort((change, -lost)) if lost[i] > 0][:limit]
    return [TaxonRegression(taxon_id=int(taxa[i]), name=inputs.taxon_name(int(taxa[i])),
                            iconic_taxon=str(iconic[first[i]]), n=int(n[i]), candidate_correct=int(candidate[i]),
                            baseline_correct=int(baseline[i]), change=float(change[i]))
            for i in order]


def most_confused_pairs(inputs: GateInputs, limit: int = MAX_LISTED) -> list[ConfusedPair]:
    """The candidate's commonest mistakes (true taxon named as another), with the true taxon's test count."""
    taxa, counts = np.unique(inputs.leaf_taxon_id, return_counts=True)
    examples = dict(zip(taxa.tolist(), counts.tolist()))
    mistakes = sorted(((int(t), int(p), int(c)) for t, p, c in inputs.confusions if t != p and c > 0),
                      key=lambda pair: (-pair[2], pair[0], pair[1]))
    return [ConfusedPair(true_taxon_id=t, true_name=inputs.taxon_name(t), predicted_taxon_id=p,
                         predicted_name=inputs.taxon_name(p), count=c, true_examples=examples.get(t, 0))
            for t, p, c in mistakes[:limit]]


def train_photo_bucket_labels() -> list[str]:
    edges = TRAIN_PHOTO_BUCKET_EDGES
    return ([f"<{edges[0]}"] + [f"{low}-{high - 1}" for low, high in zip(edges, edges[1:])] + [f"{edges[-1]}+"])


def accuracy_by_train_photos(inputs: GateInputs) -> list[TrainPhotosBucket]:
    """Candidate accuracy of test examples grouped by their leaf's number of training photos."""
    bucket = np.digitize(inputs.leaf_train_photos, TRAIN_PHOTO_BUCKET_EDGES)
    rows = []
    for index, label in enumerate(train_photo_bucket_labels()):
        mask = bucket == index
        rows.append(TrainPhotosBucket(
            label=label, taxa=int(np.unique(inputs.leaf_taxon_id[mask]).size), n=int(mask.sum()),
            candidate_top1=topk_accuracy(inputs.candidate_rank[mask], 1),
            candidate_top5=topk_accuracy(inputs.candidate_rank[mask], 5)))
    return rows


def accuracy_by_taxon(inputs: GateInputs) -> list[TaxonAccuracy]:
    """Every leaf with test examples: its training photos, its test examples and the candidate's correct top-1."""
    taxa, first, index, n = np.unique(inputs.leaf_taxon_id, return_index=True, return_inverse=True,
                                      return_counts=True)
    correct = np.bincount(index, weights=correct_at(inputs.candidate_rank, 1), minlength=taxa.size)
    return [TaxonAccuracy(taxon_id=int(taxon), name=inputs.taxon_name(int(taxon)),
                          train_photos=int(inputs.leaf_train_photos[first[i]]), n=int(n[i]),
                          candidate_correct=int(correct[i]))
            for i, taxon in enumerate(taxa)]


def geo_prior_comparison(inputs: GateInputs, status: str = "trained", explanation: str = "",
                         map_caption: Optional[str] = None) -> GeoPriorComparison:
    """The report's vision-alone vs with-prior table on the test examples with coordinates; `status` and
    `explanation` say whether the candidate has a prior and why."""
    mask = inputs.has_location
    prior, vision = inputs.candidate_rank[mask], inputs.vision_rank[mask]
    return GeoPriorComparison(
        status=status, explanation=explanation, n=int(mask.size), n_located=int(mask.sum()),
        vision_top1=topk_accuracy(vision, 1), vision_top5=topk_accuracy(vision, 5),
        prior_top1=topk_accuracy(prior, 1), prior_top5=topk_accuracy(prior, 5),
        gained=int((correct_at(prior, 1) & ~correct_at(vision, 1)).sum()),
        lost=int((~correct_at(prior, 1) & correct_at(vision, 1)).sum()), map_caption=map_caption)
