"""The gate's inputs: per-test-example outcomes of the candidate and, unless this is the first release, the
baseline, expanded from the Evaluator's taxon outcomes (`inatvision.taxon_outcomes`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from inatvision.taxon_outcomes import decode

NO_ICONIC_TAXON = "(none)"


@dataclass
class GateInputs:
    """Per-test-example outcomes of the candidate and, unless this is the first release, the baseline.

    `vision_rank`: the candidate's vision scores alone (without the location prior; its served rank when it
    has no prior); `has_location`: the example has coordinates. `shared`: the example's leaf taxon is a leaf
    in both releases. `candidate_taxa` and `baseline_taxa` map each release's leaf taxon ids to names.
    `confusions`: the candidate's (true taxon id, predicted top-1 taxon id, count) pairs. The baseline's
    arrays and taxa come together or not at all.
    """

    leaf_taxon_id: np.ndarray
    iconic_taxon: np.ndarray  # "" when the leaf has no iconic taxon
    leaf_rank: np.ndarray
    leaf_train_photos: np.ndarray
    candidate_rank: np.ndarray
    vision_rank: np.ndarray
    has_location: np.ndarray
    candidate_taxa: dict[int, str]
    confusions: list[tuple[int, int, int]] = field(default_factory=list)
    baseline_rank: Optional[np.ndarray] = None
    # The baseline's vision scores alone (its served ranks when it had no prior).
    baseline_vision_rank: Optional[np.ndarray] = None
    shared: Optional[np.ndarray] = None
    baseline_taxa: Optional[dict[int, str]] = None
    baseline_release: Optional[str] = None  # the baseline's version, shown in the report

    def __post_init__(self):
        self.leaf_taxon_id = np.asarray(self.leaf_taxon_id, dtype=np.int64)
        self.iconic_taxon = np.asarray(self.iconic_taxon, dtype=str)
        self.leaf_rank = np.asarray(self.leaf_rank, dtype=str)
        self.leaf_train_photos = np.asarray(self.leaf_train_photos, dtype=np.int64)
        self.candidate_rank = np.asarray(self.candidate_rank, dtype=np.int64)
        self.vision_rank = np.asarray(self.vision_rank, dtype=np.int64)
        self.has_location = np.asarray(self.has_location, dtype=bool)
        baseline_parts = (self.baseline_rank, self.shared, self.baseline_taxa)
        if any(part is None for part in baseline_parts) and any(part is not None for part in baseline_parts):
            raise ValueError("baseline_rank, shared and baseline_taxa come together or not at all")
        if self.has_baseline != (self.baseline_vision_rank is not None):
            raise ValueError("baseline_vision_rank comes only with a baseline, and a baseline needs it")
        if self.has_baseline:
            self.baseline_rank = np.asarray(self.baseline_rank, dtype=np.int64)
            self.baseline_vision_rank = np.asarray(self.baseline_vision_rank, dtype=np.int64)
            self.shared = np.asarray(self.shared, dtype=bool)
        else:
            self.shared = np.zeros(self.leaf_taxon_id.shape, dtype=bool)
        self._check_lengths()

    def _check_lengths(self) -> None:
        arrays = {name: getattr(self, name) for name in (
            "leaf_taxon_id", "iconic_taxon", "leaf_rank", "leaf_train_photos", "candidate_rank", "vision_rank",
            "has_location", "shared")}
        if self.has_baseline:
            arrays.update(baseline_rank=self.baseline_rank, baseline_vision_rank=self.baseline_vision_rank)
        lengths = {name: array.shape for name, array in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"per-example arrays differ in shape: {lengths}")
        if self.leaf_taxon_id.size == 0:
            raise ValueError("the gate needs at least one test example")

    @property
    def has_baseline(self) -> bool:
        return self.baseline_rank is not None

    def iconic_names(self) -> np.ndarray:
        """Each example's iconic taxon, NO_ICONIC_TAXON where the leaf has none."""
        return np.where(self.iconic_taxon == "", NO_ICONIC_TAXON, self.iconic_taxon)

    def common_shared(self, min_train_photos: int) -> np.ndarray:
        """The shared examples of common taxa: leaves with at least `min_train_photos` training photos."""
        return self.shared & (self.leaf_train_photos >= min_train_photos)

    def taxa_in(self, mask: np.ndarray) -> int:
        """How many leaf taxa the examples under `mask` belong to (a check's evidence)."""
        return int(np.unique(self.leaf_taxon_id[mask]).size)

    def chance_top1(self) -> tuple[float, str]:
        """The top-1 a model that learned nothing reaches on this test set, and how: the larger of a uniform
        guess among the candidate's classes (1/classes) and always naming the commonest test taxon."""
        classes = max(len(self.candidate_taxa), 1)
        _, counts = np.unique(self.leaf_taxon_id, return_counts=True)
        commonest = float(counts.max() / self.leaf_taxon_id.size)
        uniform = f"1/{classes} classes"
        if commonest > 1 / classes:
            return commonest, (f"always naming the commonest test taxon ({int(counts.max()):,} of "
                               f"{self.leaf_taxon_id.size:,} test examples; above {uniform})")
        return 1 / classes, f"a uniform guess, {uniform}"

    def taxon_name(self, taxon_id: int) -> str:
        """The leaf's name in the candidate, else in the baseline, else its id."""
        return self.candidate_taxa.get(taxon_id) or (self.baseline_taxa or {}).get(taxon_id) or f"taxon {taxon_id}"


def gate_inputs(outcomes: str | dict, candidate_taxa: dict, baseline_taxa: dict | None,
                release: str | None) -> GateInputs:
    """The per-example arrays of the Evaluator's taxon outcomes (the metric's JSON value, or it parsed): each
    `taxon_outcomes.OutcomeKey` repeated by its count. The baseline's columns are read only with `baseline_taxa`."""
    rows, confusions = decode(outcomes)
    counts = np.array([count for _, count in rows], dtype=np.int64)

    def column(name: str, dtype) -> np.ndarray:
        return np.repeat(np.array([getattr(key, name) for key, _ in rows], dtype=dtype), counts)

    with_baseline = baseline_taxa is not None
    return GateInputs(
        leaf_taxon_id=column("leaf_taxon_id", np.int64), iconic_taxon=column("iconic_taxon", str),
        leaf_rank=column("leaf_rank", str), leaf_train_photos=column("leaf_train_photos", np.int64),
        candidate_rank=column("candidate_rank", np.int64), vision_rank=column("vision_rank", np.int64),
        has_location=column("has_location", bool), candidate_taxa=candidate_taxa, confusions=confusions,
        baseline_rank=column("baseline_rank", np.int64) if with_baseline else None,
        baseline_vision_rank=column("baseline_vision_rank", np.int64) if with_baseline else None,
        shared=column("shared", bool) if with_baseline else None,
        baseline_taxa=baseline_taxa, baseline_release=release)
