"""Release-gate decisions: an absolute floor and paired no-regression tests against the previous release.

Plain numpy and scipy; the TFX glue builds `GateInputs` from per-example outcomes and calls `evaluate_gate`.
A rank is the 1-based position of the true taxon in a model's predictions, found by taxon id so that
releases with different class sets compare (inat-recipe.md, section 3); 0, or anything past the model's
top-k, is a miss.

The candidate is the served model, vision combined with the location prior. `geo_prior_check` compares it
with its own vision scores alone on the test examples that have coordinates (the only ones the prior
changes): a prior that lowers top-1 there blocks the release. `common_vision_checks` compare the two
releases' vision scores alone on the shared common-taxa examples, with the same paired rule as the served
scores: a user who gives no location gets vision alone, so a good prior must not hide a vision regression
(on a test set where every example has coordinates, the served scores alone would).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from scipy import stats

from inatvision.config import GateConfig

NO_ICONIC_TAXON = "(none)"
TRAIN_PHOTO_BUCKET_EDGES = (20, 50, 100, 500)  # buckets: <20, 20-49, 50-99, 100-499, 500+
MAX_LISTED = 20  # rows in the regressed-taxa and confused-pairs lists
COMMON_CHECKS = ("common_top1_regression", "common_top5_regression")
COMMON_VISION_CHECKS = ("common_vision_top1_regression", "common_vision_top5_regression")
NO_BASELINE_REASON = "First release: there is no previous release to compare with."
NO_VISION_RANKS_REASON = ("The evaluation recorded no vision-only ranks for {which} (outcomes written by an "
                          "older Evaluator): the vision-alone comparison cannot be made. Re-run the Evaluator "
                          "to apply it.")
FIRST_RELEASE_SENTENCE = ("This is the first release: there is no previous release to compare with, "
                          "so only the absolute checks apply.")


@dataclass
class GateInputs:
    """Per-test-example outcomes of the candidate and, unless this is the first release, the baseline.

    `shared`: the example's leaf taxon is a leaf in both releases. `candidate_taxa` and `baseline_taxa` map
    each release's leaf taxon ids to names. `confusions`: the candidate's (true taxon id, predicted top-1
    taxon id, count) pairs.
    """

    leaf_taxon_id: np.ndarray
    iconic_taxon: np.ndarray  # "" when the leaf has no iconic taxon
    leaf_rank: np.ndarray
    leaf_train_photos: np.ndarray
    candidate_rank: np.ndarray
    candidate_taxa: dict[int, str]
    confusions: list[tuple[int, int, int]] = field(default_factory=list)
    baseline_rank: Optional[np.ndarray] = None
    shared: Optional[np.ndarray] = None
    baseline_taxa: Optional[dict[int, str]] = None
    baseline_release: Optional[str] = None  # the baseline's version, shown in the report
    vision_rank: Optional[np.ndarray] = None  # the candidate's vision scores alone (without the location prior)
    has_location: Optional[np.ndarray] = None  # the test example has coordinates
    # The baseline's vision scores alone (its served ranks when it had no prior); only with a baseline.
    baseline_vision_rank: Optional[np.ndarray] = None

    def __post_init__(self):
        self.leaf_taxon_id = np.asarray(self.leaf_taxon_id, dtype=np.int64)
        self.iconic_taxon = np.asarray(self.iconic_taxon, dtype=str)
        self.leaf_rank = np.asarray(self.leaf_rank, dtype=str)
        self.leaf_train_photos = np.asarray(self.leaf_train_photos, dtype=np.int64)
        self.candidate_rank = np.asarray(self.candidate_rank, dtype=np.int64)
        baseline_parts = (self.baseline_rank, self.shared, self.baseline_taxa)
        if any(part is None for part in baseline_parts) and any(part is not None for part in baseline_parts):
            raise ValueError("baseline_rank, shared and baseline_taxa come together or not at all")
        if self.has_baseline:
            self.baseline_rank = np.asarray(self.baseline_rank, dtype=np.int64)
            self.shared = np.asarray(self.shared, dtype=bool)
        else:
            self.shared = np.zeros(self.leaf_taxon_id.shape, dtype=bool)
        if (self.vision_rank is None) != (self.has_location is None):
            raise ValueError("vision_rank and has_location come together or not at all")
        if self.vision_rank is not None:
            self.vision_rank = np.asarray(self.vision_rank, dtype=np.int64)
            self.has_location = np.asarray(self.has_location, dtype=bool)
        if self.baseline_vision_rank is not None:
            if not self.has_baseline:
                raise ValueError("baseline_vision_rank comes only with a baseline")
            self.baseline_vision_rank = np.asarray(self.baseline_vision_rank, dtype=np.int64)
        self._check_lengths()

    def _check_lengths(self) -> None:
        arrays = {name: getattr(self, name) for name in (
            "leaf_taxon_id", "iconic_taxon", "leaf_rank", "leaf_train_photos", "candidate_rank", "shared")}
        if self.has_baseline:
            arrays["baseline_rank"] = self.baseline_rank
        if self.vision_rank is not None:
            arrays.update(vision_rank=self.vision_rank, has_location=self.has_location)
        if self.baseline_vision_rank is not None:
            arrays["baseline_vision_rank"] = self.baseline_vision_rank
        lengths = {name: array.shape for name, array in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"per-example arrays differ in shape: {lengths}")
        if self.leaf_taxon_id.size == 0:
            raise ValueError("the gate needs at least one test example")

    @property
    def has_baseline(self) -> bool:
        return self.baseline_rank is not None

    def taxon_name(self, taxon_id: int) -> str:
        """The leaf's name in the candidate, else in the baseline, else its id."""
        return self.candidate_taxa.get(taxon_id) or (self.baseline_taxa or {}).get(taxon_id) or f"taxon {taxon_id}"


@dataclass
class ThresholdResult:
    """One check of the gate. `value`, `limit` and the CI are accuracies or accuracy changes, as fractions."""

    name: str
    passed: bool
    value: Optional[float]
    limit: Optional[float]
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    p_value: Optional[float] = None
    n: Optional[int] = None
    explanation: str = ""

    def __post_init__(self):
        """Plain Python numbers, so that checks built from numpy values serialise."""
        self.passed = bool(self.passed)
        for name in ("value", "limit", "ci_low", "ci_high", "p_value"):
            if getattr(self, name) is not None:
                setattr(self, name, float(getattr(self, name)))
        if self.n is not None:
            self.n = int(self.n)


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
    "confused_pairs": ConfusedPair, "train_photo_buckets": TrainPhotosBucket,
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
    geo_prior: Optional[GeoPriorComparison] = None  # None for a model without the location prior outputs
    skipped_checks: list[SkippedCheck] = field(default_factory=list)  # absent from reports written before it

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


def correct_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """True where the true taxon is among the first k predictions."""
    ranks = np.asarray(ranks)
    return (ranks >= 1) & (ranks <= k)


def topk_accuracy(ranks: np.ndarray, k: int) -> Optional[float]:
    """Share of examples whose true taxon is in the top k; None when there are no examples."""
    hits = correct_at(ranks, k)
    return float(hits.mean()) if hits.size else None


def paired_bootstrap_ci(candidate_correct: np.ndarray, baseline_correct: np.ndarray, confidence: float,
                        resamples: int, seed: int) -> tuple[float, float]:
    """Two-sided percentile bootstrap CI of the mean paired change (candidate - baseline correctness).

    Each paired difference is -1, 0 or +1, so resampling the n examples with replacement is exactly one
    multinomial draw of those three counts: the bootstrap costs O(resamples), also on a million examples.
    """
    difference = candidate_correct.astype(np.int64) - baseline_correct.astype(np.int64)
    n = difference.size
    counts = np.array([np.sum(difference == value) for value in (-1, 0, 1)])
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=resamples)
    means = (draws[:, 2] - draws[:, 0]) / n
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def mcnemar_exact_p(candidate_correct: np.ndarray, baseline_correct: np.ndarray) -> float:
    """Two-sided exact McNemar test: a binomial test on the discordant pairs; 1.0 when there are none."""
    candidate_correct, baseline_correct = np.asarray(candidate_correct, bool), np.asarray(baseline_correct, bool)
    only_candidate = int(np.sum(candidate_correct & ~baseline_correct))
    discordant = only_candidate + int(np.sum(~candidate_correct & baseline_correct))
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(only_candidate, discordant, 0.5).pvalue)


def _percent(fraction: float) -> str:
    return f"{fraction:.1%}"


def _points(fraction: float) -> str:
    return f"{fraction * 100:+.2f} points"


def top1_floor_check(candidate_rank: np.ndarray, min_top1: float) -> ThresholdResult:
    """The candidate's top-1 on every test example must reach `min_top1`."""
    top1 = topk_accuracy(candidate_rank, 1)
    passed = top1 >= min_top1
    return ThresholdResult(
        name="top1_floor", passed=passed, value=top1, limit=min_top1, n=int(candidate_rank.size),
        explanation=(f"Candidate top-1 on all {candidate_rank.size:,} test examples is {_percent(top1)}; "
                     f"the floor is {_percent(min_top1)}: {'passed' if passed else 'below the floor'}."))


def paired_regression_check(name: str, slice_description: str, candidate_correct: np.ndarray,
                            baseline_correct: np.ndarray, max_drop: float, gate: GateConfig,
                            seed: int) -> ThresholdResult:
    """Declares a regression only when the whole CI of the paired change lies below -max_drop."""
    n = int(candidate_correct.size)
    if n == 0:
        return ThresholdResult(name=name, passed=True, value=None, limit=-max_drop, n=0,
                               explanation=f"{slice_description}: no shared examples, nothing to compare.")
    change = float(candidate_correct.mean() - baseline_correct.mean())
    low, high = paired_bootstrap_ci(candidate_correct, baseline_correct, gate.confidence,
                                    gate.bootstrap_resamples, seed)
    p_value = mcnemar_exact_p(candidate_correct, baseline_correct)
    passed = high >= -max_drop
    outcome = (f"Passed: the interval reaches above the limit of {_points(-max_drop)}, so any drop is within "
               "the tolerance or the noise." if passed
               else f"Regression: the whole interval lies below the limit of {_points(-max_drop)}.")
    return ThresholdResult(
        name=name, passed=passed, value=change, limit=-max_drop, ci_low=low, ci_high=high, p_value=p_value, n=n,
        explanation=(f"{slice_description} on {n:,} shared examples: candidate {_percent(candidate_correct.mean())}, "
                     f"baseline {_percent(baseline_correct.mean())}, change {_points(change)} "
                     f"({gate.confidence:.0%} CI {low * 100:+.2f} to {high * 100:+.2f}; McNemar p = {p_value:.3g}). "
                     f"{outcome}"))


def _common_shared(inputs: GateInputs, gate: GateConfig) -> np.ndarray:
    return inputs.shared & (inputs.leaf_train_photos >= gate.common_taxa_min_train_photos)


def _common_paired_checks(names: Sequence[str], scores: str, candidate_rank: np.ndarray, baseline_rank: np.ndarray,
                          inputs: GateInputs, gate: GateConfig, seed: int) -> list[ThresholdResult]:
    """Top-1 and top-5 paired checks (`names`, in that order) of two rankings on the shared common-taxa examples."""
    mask = _common_shared(inputs, gate)
    common = f"Common taxa (>= {gate.common_taxa_min_train_photos} training photos){scores}"
    return [
        paired_regression_check(name, f"{common}, top-{k}", correct_at(candidate_rank[mask], k),
                                correct_at(baseline_rank[mask], k), max_drop, gate, seed)
        for name, (k, max_drop) in zip(names, ((1, gate.max_top1_drop), (5, gate.max_top5_drop)))
    ]


def common_taxa_checks(inputs: GateInputs, gate: GateConfig, seed: int) -> list[ThresholdResult]:
    """Paired top-1 and top-5 no-regression checks of the served scores on shared examples of common taxa."""
    return _common_paired_checks(COMMON_CHECKS, "", inputs.candidate_rank, inputs.baseline_rank, inputs, gate, seed)


def common_vision_skip_reason(inputs: GateInputs) -> Optional[str]:
    """Why `common_vision_checks` cannot run on these inputs; None when they can."""
    if not inputs.has_baseline:
        return NO_BASELINE_REASON
    missing = [which for which, ranks in (("the candidate", inputs.vision_rank),
                                          ("the baseline", inputs.baseline_vision_rank)) if ranks is None]
    return NO_VISION_RANKS_REASON.format(which=" and ".join(missing)) if missing else None


def common_vision_checks(inputs: GateInputs, gate: GateConfig, seed: int) -> list[ThresholdResult]:
    """The same paired top-1 and top-5 checks on the two releases' vision scores alone (what a user who gives
    no location gets), on the same examples with the same limits; [] when `common_vision_skip_reason` says
    why they cannot run."""
    if common_vision_skip_reason(inputs) is not None:
        return []
    return _common_paired_checks(COMMON_VISION_CHECKS, ", vision alone (no location)", inputs.vision_rank,
                                 inputs.baseline_vision_rank, inputs, gate, seed)


def skipped_checks(inputs: GateInputs) -> list[SkippedCheck]:
    """The named checks these inputs cannot support, each with the reason: on a first release every
    comparison with the baseline; with a baseline, the vision-alone checks when either release's
    vision-only ranks were not recorded."""
    if not inputs.has_baseline:
        return [SkippedCheck(name, NO_BASELINE_REASON) for name in COMMON_CHECKS + COMMON_VISION_CHECKS]
    reason = common_vision_skip_reason(inputs)
    return [SkippedCheck(name, reason) for name in COMMON_VISION_CHECKS] if reason else []


def _iconic_names(inputs: GateInputs) -> np.ndarray:
    return np.where(inputs.iconic_taxon == "", NO_ICONIC_TAXON, inputs.iconic_taxon)


def iconic_checks(inputs: GateInputs, gate: GateConfig, seed: int) -> list[ThresholdResult]:
    """Paired top-1 checks per iconic taxon on its shared common-taxa examples, for slices large enough."""
    if gate.iconic_max_top1_drop is None:
        return []
    common = _common_shared(inputs, gate)
    iconic = _iconic_names(inputs)
    checks = []
    for name in sorted(set(iconic[common])):
        mask = common & (iconic == name)
        if mask.sum() >= gate.iconic_min_examples:
            checks.append(paired_regression_check(
                f"iconic_top1_regression/{name}", f"{name} (common taxa), top-1",
                correct_at(inputs.candidate_rank[mask], 1), correct_at(inputs.baseline_rank[mask], 1),
                gate.iconic_max_top1_drop, gate, seed))
    return checks


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
                                  inputs, _common_shared(inputs, gate)))
    rows += [compare_slice(f"{rank} leaves", inputs, inputs.leaf_rank == rank)
             for rank in _values_by_frequency(inputs.leaf_rank)]
    return rows


def iconic_comparison(inputs: GateInputs) -> list[SliceComparison]:
    """One row per iconic taxon, largest first."""
    iconic = _iconic_names(inputs)
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
    iconic = _iconic_names(inputs)[shared]
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


def geo_prior_check(inputs: GateInputs, gate: GateConfig, seed: int = 0) -> Optional[ThresholdResult]:
    """Blocks when the prior lowers top-1 below vision alone on the test examples with coordinates.

    A plain comparison, not the paired rule: both rankings come from the same model on the same examples,
    so any net loss is the prior's doing, and "a prior that makes top-1 worse blocks the release". The
    paired interval and McNemar's p are reported to show how sure the difference is. None when the inputs
    carry no vision-only ranks.
    """
    if inputs.vision_rank is None:
        return None
    mask = inputs.has_location
    n = int(mask.sum())
    if n == 0:
        return ThresholdResult(name="geo_prior_top1", passed=True, value=None, limit=0.0, n=0,
                               explanation="No test example has coordinates: the location prior changes "
                                           "nothing on this test set.")
    prior, vision = correct_at(inputs.candidate_rank[mask], 1), correct_at(inputs.vision_rank[mask], 1)
    change = float(prior.mean() - vision.mean())
    low, high = paired_bootstrap_ci(prior, vision, gate.confidence, gate.bootstrap_resamples, seed)
    p_value = mcnemar_exact_p(prior, vision)
    passed = change >= 0
    return ThresholdResult(
        name="geo_prior_top1", passed=passed, value=change, limit=0.0, ci_low=low, ci_high=high, p_value=p_value,
        n=n, explanation=(f"Top-1 on {n:,} test examples with coordinates: vision with the location prior "
                          f"{_percent(prior.mean())}, vision alone {_percent(vision.mean())}, change {_points(change)} "
                          f"({int((prior & ~vision).sum())} gained, {int((~prior & vision).sum())} lost; "
                          f"McNemar p = {p_value:.3g}). "
                          + ("Passed: the prior does not lower top-1." if passed
                             else "Blocked: the prior makes top-1 worse than vision alone.")))


def geo_prior_comparison(inputs: GateInputs, status: str = "trained", explanation: str = "",
                         map_caption: Optional[str] = None) -> Optional[GeoPriorComparison]:
    """The report's vision-alone vs with-prior table; None when the inputs carry no vision-only ranks."""
    if inputs.vision_rank is None:
        return None
    mask = inputs.has_location
    prior, vision = inputs.candidate_rank[mask], inputs.vision_rank[mask]
    return GeoPriorComparison(
        status=status, explanation=explanation, n=int(mask.size), n_located=int(mask.sum()),
        vision_top1=topk_accuracy(vision, 1), vision_top5=topk_accuracy(vision, 5),
        prior_top1=topk_accuracy(prior, 1), prior_top5=topk_accuracy(prior, 5),
        gained=int((correct_at(prior, 1) & ~correct_at(vision, 1)).sum()),
        lost=int((~correct_at(prior, 1) & correct_at(vision, 1)).sum()), map_caption=map_caption)


def _summary(thresholds: list[ThresholdResult], first_release: bool, skipped: Sequence[SkippedCheck] = ()) -> str:
    failed = [check.name for check in thresholds if not check.passed]
    verdict = (f"Not blessed: {len(failed)} of {len(thresholds)} checks failed ({', '.join(failed)})." if failed
               else f"Blessed: all {len(thresholds)} checks passed.")
    if first_release:
        return f"{verdict} {FIRST_RELEASE_SENTENCE}"
    if skipped:
        verdict += f" Not applied: {', '.join(check.name for check in skipped)} (see the report)."
    return verdict


def evaluate_gate(inputs: GateInputs, gate: GateConfig, extra_checks: Sequence[ThresholdResult] = (),
                  seed: int = 0, geo_prior: Optional[GeoPriorComparison] = None) -> GateResult:
    """Runs every check (plus the caller's already evaluated `extra_checks`) and builds the report's tables.

    The candidate is blessed when every check passes. Without a baseline only the absolute checks apply; the
    comparisons that could not run are listed in `skipped_checks` with the reason. `geo_prior` (from
    `geo_prior_comparison`) is shown in the report; its check, `geo_prior_check`, comes with the caller's
    extra checks.
    """
    thresholds = [top1_floor_check(inputs.candidate_rank, gate.min_top1)]
    if inputs.has_baseline:
        thresholds += (common_taxa_checks(inputs, gate, seed) + common_vision_checks(inputs, gate, seed)
                       + iconic_checks(inputs, gate, seed))
    thresholds += list(extra_checks)
    first_release = not inputs.has_baseline
    skipped = skipped_checks(inputs)
    baseline_taxa = inputs.baseline_taxa or {}
    return GateResult(
        blessed=all(check.passed for check in thresholds), first_release=first_release,
        summary=_summary(thresholds, first_release, skipped), confidence=gate.confidence,
        baseline_release=inputs.baseline_release, thresholds=thresholds,
        overall=overall_comparison(inputs, gate), per_iconic=iconic_comparison(inputs),
        taxa_added=[] if first_release else taxa_difference(inputs.candidate_taxa, baseline_taxa),
        taxa_removed=taxa_difference(baseline_taxa, inputs.candidate_taxa),
        regressed_taxa=most_regressed_taxa(inputs), confused_pairs=most_confused_pairs(inputs),
        train_photo_buckets=accuracy_by_train_photos(inputs), geo_prior=geo_prior, skipped_checks=skipped)
