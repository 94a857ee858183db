"""What the gate's report holds: the verdict, each check, the tables, as dataclasses that round-trip JSON.

`GateResult.to_json` is `gate_report.json`; `GateResult.from_json` reads it back (`inatvision report` rebuilds
the HTML from it). Accuracies and their changes are fractions.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional


@dataclass
class ThresholdResult:
    """One check of the gate. `value`, `limit`, `margin` and the CI are accuracies or accuracy changes, as
    fractions (`limit` is what `value` or, for a paired check, the CI's lower end must reach; `margin` is the
    paired checks' tolerated drop, so `limit` = -`margin`). `test` names the rule, `p_value` belongs to it
    (the binomial test against chance). The evidence: `n` examples of `taxa` leaf taxa; `min_n`, where the
    check requires a number of examples.
    """

    name: str
    passed: bool
    value: Optional[float]
    limit: Optional[float]
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    p_value: Optional[float] = None
    n: Optional[int] = None
    explanation: str = ""
    test: str = ""
    margin: Optional[float] = None
    taxa: Optional[int] = None
    min_n: Optional[int] = None

    def __post_init__(self):
        """Plain Python numbers, so that checks built from numpy values serialise."""
        self.passed = bool(self.passed)
        for name in ("value", "limit", "ci_low", "ci_high", "p_value", "margin"):
            if getattr(self, name) is not None:
                setattr(self, name, float(getattr(self, name)))
        for name in ("n", "taxa", "min_n"):
            if getattr(self, name) is not None:
                setattr(self, name, int(getattr(self, name)))


@dataclass
class SkippedCheck:
    """A check the gate could not apply, and why (shown in the report; it neither passes nor fails)."""

    name: str
    reason: str


@dataclass
class SliceComparison:
    """Candidate accuracy on a slice's test examples, and both releases on the slice's shared examples."""

    name: str
    n: int
    candidate_top1: float
    candidate_top5: float
    candidate_top10: float
    n_shared: int
    shared_candidate_top1: Optional[float]
    shared_candidate_top5: Optional[float]
    shared_baseline_top1: Optional[float]
    shared_baseline_top5: Optional[float]


@dataclass
class Taxon:
    taxon_id: int
    name: str


@dataclass
class TaxonRegression:
    """A shared taxon whose top-1 fell: correct test examples before and after."""

    taxon_id: int
    name: str
    iconic_taxon: str
    n: int
    candidate_correct: int
    baseline_correct: int
    change: float  # top-1 change as a fraction


@dataclass
class ConfusedPair:
    """Test examples of `true` that the candidate named `predicted` (top-1), of `true_examples`."""

    true_taxon_id: int
    true_name: str
    predicted_taxon_id: int
    predicted_name: str
    count: int
    true_examples: int


@dataclass
class TrainPhotosBucket:
    """Candidate accuracy on the test examples of leaves with this many training photos."""

    label: str
    taxa: int
    n: int
    candidate_top1: Optional[float]
    candidate_top5: Optional[float]


@dataclass
class TaxonAccuracy:
    """The candidate's top-1 on one leaf's test examples, beside the leaf's training photos."""

    taxon_id: int
    name: str
    train_photos: int
    n: int
    candidate_correct: int


@dataclass
class GeoPriorComparison:
    """Vision alone against vision with the location prior, on the test examples with coordinates.

    `status`: `trained`, `none` (no usable coordinates in the training data: vision-only) or `disabled`.
    `gained` / `lost`: located examples whose top-1 the prior made right / wrong.
    """

    status: str
    explanation: str
    n: int
    n_located: int
    vision_top1: Optional[float]
    vision_top5: Optional[float]
    prior_top1: Optional[float]
    prior_top5: Optional[float]
    gained: int
    lost: int
    map_caption: Optional[str] = None


_NESTED_ROWS = {
    "thresholds": ThresholdResult, "skipped_checks": SkippedCheck, "overall": SliceComparison,
    "per_iconic": SliceComparison,
    "taxa_added": Taxon, "taxa_removed": Taxon, "regressed_taxa": TaxonRegression,
    "confused_pairs": ConfusedPair, "train_photo_buckets": TrainPhotosBucket, "taxon_accuracy": TaxonAccuracy,
}


@dataclass
class GateResult:
    """The verdict, every check behind it and the tables the report shows."""

    blessed: bool
    first_release: bool
    summary: str
    confidence: float
    baseline_release: Optional[str]
    thresholds: list[ThresholdResult]
    overall: list[SliceComparison]
    per_iconic: list[SliceComparison]
    taxa_added: list[Taxon]  # empty on a first release
    taxa_removed: list[Taxon]
    regressed_taxa: list[TaxonRegression]
    confused_pairs: list[ConfusedPair]
    train_photo_buckets: list[TrainPhotosBucket]
    geo_prior: Optional[GeoPriorComparison]  # None when the caller gives no prior comparison
    skipped_checks: list[SkippedCheck]
    taxon_accuracy: list[TaxonAccuracy] = dataclasses.field(default_factory=list)  # every leaf with test examples
    # What made the report (inatvision/provenance.py): the gate fills `created` and `code_version`, a local run
    # adds its id, export and release to its copy. Reports written before either existed read back empty.
    provenance: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain dict of lists, numbers, strings and None: `json.dumps` takes it as is."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "GateResult":
        def parse(key, value):
            if key in _NESTED_ROWS:
                return [_NESTED_ROWS[key](**row) for row in value]
            if key == "geo_prior" and value is not None:
                return GeoPriorComparison(**value)
            return value
        return cls(**{key: parse(key, value) for key, value in data.items()})
