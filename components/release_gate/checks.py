"""The gate's check policy: which checks run, their limits, and when each passes (the rules: docs/gate.md).

Every release:
- `top1_floor`: the candidate's top-1 on every test example reaches `gate.min_top1`.

A first release (no baseline), unless `gate.first_release_vs_chance` is off:
- `top1_vs_chance`, `vision_top1_vs_chance`: the served top-1, and the vision scores' alone (what a user who
  gives no location gets), beat chance by a one-sided exact binomial test at `gate.confidence`. Chance is the
  larger of 1/classes and the commonest test taxon's share (a model that always names it learned nothing).

A later release, on the shared examples of common taxa (leaves with at least
`gate.common_taxa_min_train_photos` training photos):
- `common_evidence`: at least `gate.min_common_examples` of them; with fewer, no verdict of "not worse".
- `common_top{1,5}_regression`: non-inferiority: the lower end of the paired bootstrap interval (at
  `gate.confidence`) of the change (candidate - baseline) is at or above `-gate.max_top{1,5}_drop`.
- `common_vision_top{1,5}_regression`: the same rule on the two releases' vision scores alone, so that a
  good prior cannot hide a vision regression (on a test set where every example has coordinates, the served
  scores alone would).
- `iconic_top1_regression/<iconic taxon>`: the paired top-1 rule per iconic taxon, for slices of at least
  `gate.iconic_min_examples` (only when `gate.iconic_max_top1_drop` is set).
With no shared common-taxon example the paired checks cannot be computed: they are listed in `skipped_checks`
and `common_evidence` fails (unless `gate.min_common_examples` is 0).

The caller's checks (component): `geo_prior_top1`, the served scores against the candidate's own vision scores
alone on the test examples with coordinates, and `tfma_validation`, the floor on TFMA's top-1 of every slice.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from inatvision.components.release_gate.inputs import GateInputs
from inatvision.components.release_gate.report_data import SkippedCheck, ThresholdResult
from inatvision.components.release_gate.statistics import binomial_p_above, correct_at, paired_bootstrap_ci, topk_accuracy
from inatvision.config import GateConfig

COMMON_CHECKS = ("common_top1_regression", "common_top5_regression")
COMMON_VISION_CHECKS = ("common_vision_top1_regression", "common_vision_top5_regression")
CHANCE_CHECKS = ("top1_vs_chance", "vision_top1_vs_chance")
EVIDENCE_CHECK = "common_evidence"
NO_BASELINE_REASON = "First release: there is no previous release to compare with."
CHANCE_OFF_REASON = ("gate.first_release_vs_chance is off (a rehearsal): the first release is not tested "
                     "against chance.")
NO_SHARED_REASON = ("No shared test example of a common taxon: the releases have no such leaf in common, so "
                    "there is nothing to compare (see common_evidence).")

FLOOR_TEST = "absolute floor"
CHANCE_TEST = "one-sided exact binomial test against chance"
NONINFERIORITY_TEST = "non-inferiority: paired bootstrap interval, lower end against the margin"
EVIDENCE_TEST = "evidence: shared common-taxon examples"
PLAIN_TEST = "plain comparison (interval shown)"
TFMA_TEST = "floor on TFMA's top-1 of every slice"


def _percent(fraction: float) -> str:
    return f"{fraction:.1%}"


def _points(fraction: float) -> str:
    return f"{fraction * 100:+.2f} points"


def _all(inputs: GateInputs) -> np.ndarray:
    return np.ones(inputs.leaf_taxon_id.shape, dtype=bool)


def top1_floor_check(inputs: GateInputs, min_top1: float) -> ThresholdResult:
    """The candidate's top-1 on every test example must reach `min_top1` (`gate.min_top1`)."""
    top1 = topk_accuracy(inputs.candidate_rank, 1)
    passed = top1 >= min_top1
    n = int(inputs.candidate_rank.size)
    return ThresholdResult(
        name="top1_floor", passed=passed, value=top1, limit=min_top1, n=n, taxa=inputs.taxa_in(_all(inputs)),
        test=FLOOR_TEST,
        explanation=(f"Candidate top-1 on all {n:,} test examples is {_percent(top1)}; the floor "
                     f"(gate.min_top1) is {_percent(min_top1)}: {'passed' if passed else 'below the floor'}."))


def chance_check(name: str, scores: str, ranks: np.ndarray, inputs: GateInputs, gate: GateConfig) -> ThresholdResult:
    """Top-1 of `ranks` must beat chance: a one-sided exact binomial test, p at most 1 - `gate.confidence`."""
    n = int(ranks.size)
    right = int(correct_at(ranks, 1).sum())
    chance, how = inputs.chance_top1()
    p_value = binomial_p_above(right, n, chance)
    alpha = 1 - gate.confidence
    passed = p_value <= alpha
    outcome = ("Passed: significantly better than chance." if passed
               else "Not better than chance: the model may have learned nothing, so it is not released "
                    "(gate.first_release_vs_chance=false turns this test off, for rehearsals only).")
    return ThresholdResult(
        name=name, passed=passed, value=right / n, limit=chance, p_value=p_value, n=n,
        taxa=inputs.taxa_in(_all(inputs)), test=CHANCE_TEST,
        explanation=(f"{scores}: {right:,} of {n:,} test examples right at top-1 ({_percent(right / n)}); chance is "
                     f"{_percent(chance)} ({how}). One-sided exact binomial p = {p_value:.3g}, needs at most "
                     f"{alpha:.3g} (gate.confidence {gate.confidence:.0%}). {outcome}"))


def chance_checks(inputs: GateInputs, gate: GateConfig) -> list[ThresholdResult]:
    """A first release's tests against chance: the served scores, then vision alone; [] when turned off."""
    if inputs.has_baseline or not gate.first_release_vs_chance:
        return []
    return [chance_check(CHANCE_CHECKS[0], "Served scores", inputs.candidate_rank, inputs, gate),
            chance_check(CHANCE_CHECKS[1], "Vision scores alone (no location)", inputs.vision_rank, inputs, gate)]


def paired_regression_check(name: str, slice_description: str, candidate_correct: np.ndarray,
                            baseline_correct: np.ndarray, max_drop: float, gate: GateConfig, seed: int,
                            taxa: Optional[int] = None) -> ThresholdResult:
    """Non-inferiority: passes only when the lower end of the paired interval of (candidate - baseline) is at
    or above -max_drop. Needs at least one example (`common_paired_mask` decides when there are none)."""
    n = int(candidate_correct.size)
    if n == 0:
        raise ValueError(f"{name}: a paired check needs shared examples")
    change = float(candidate_correct.mean() - baseline_correct.mean())
    low, high = paired_bootstrap_ci(candidate_correct, baseline_correct, gate.confidence,
                                    gate.bootstrap_resamples, seed)
    passed = low >= -max_drop
    outcome = (f"Not worse: the interval's lower end is at or above the margin of {_points(-max_drop)}."
               if passed else
               f"Not shown to be not worse: the interval's lower end is below the margin of {_points(-max_drop)}, "
               "so the candidate may have lost more than the margin allows.")
    return ThresholdResult(
        name=name, passed=passed, value=change, limit=-max_drop, margin=max_drop, ci_low=low, ci_high=high, n=n,
        taxa=taxa, test=NONINFERIORITY_TEST,
        explanation=(f"{slice_description} on {n:,} shared examples: candidate {_percent(candidate_correct.mean())}, "
                     f"baseline {_percent(baseline_correct.mean())}, change {_points(change)} "
                     f"({gate.confidence:.0%} paired bootstrap interval {low * 100:+.2f} to {high * 100:+.2f}). "
                     f"{outcome}"))


def evidence_check(inputs: GateInputs, gate: GateConfig) -> ThresholdResult:
    """At least `gate.min_common_examples` shared common-taxon examples, or no verdict of "not worse"."""
    mask = inputs.common_shared(gate.common_taxa_min_train_photos)
    n, taxa, minimum = int(mask.sum()), inputs.taxa_in(mask), gate.min_common_examples
    common = f"shared test examples of common taxa (>= {gate.common_taxa_min_train_photos} training photos)"
    passed = n >= minimum
    if n == 0 and passed:
        verdict = ("There are none: the comparisons with the baseline cannot be made, and gate.min_common_examples "
                   "= 0 accepts a release without that evidence.")
    elif n == 0:
        verdict = ("There are none (the releases share no common leaf taxon): there is no evidence that the "
                   "candidate is not worse than the baseline, so it is not blessed. gate.min_common_examples=0 "
                   "accepts a release without that evidence knowingly.")
    elif passed:
        verdict = f"Enough evidence for a verdict (gate.min_common_examples is {minimum:,})."
    else:
        verdict = (f"Too little evidence for a verdict of 'not worse': fewer than gate.min_common_examples = "
                   f"{minimum:,}, so the candidate is not blessed whatever the intervals say. "
                   f"gate.min_common_examples={n} accepts a verdict on this evidence knowingly.")
    return ThresholdResult(name=EVIDENCE_CHECK, passed=passed, value=None, limit=None, n=n, taxa=taxa, min_n=minimum,
                           test=EVIDENCE_TEST, explanation=f"{n:,} {common}, of {taxa:,} taxa. {verdict}")


def _common_paired_checks(names: Sequence[str], scores: str, candidate_rank: np.ndarray, baseline_rank: np.ndarray,
                          inputs: GateInputs, gate: GateConfig, seed: int) -> list[ThresholdResult]:
    """Top-1 and top-5 paired checks (`names`, in that order) of two rankings on the shared common-taxa examples;
    [] when there are none."""
    mask = inputs.common_shared(gate.common_taxa_min_train_photos)
    if not mask.any():
        return []
    common = f"Common taxa (>= {gate.common_taxa_min_train_photos} training photos){scores}"
    return [
        paired_regression_check(name, f"{common}, top-{k}", correct_at(candidate_rank[mask], k),
                                correct_at(baseline_rank[mask], k), max_drop, gate, seed, inputs.taxa_in(mask))
        for name, (k, max_drop) in zip(names, ((1, gate.max_top1_drop), (5, gate.max_top5_drop)))
    ]


def common_taxa_checks(inputs: GateInputs, gate: GateConfig, seed: int) -> list[ThresholdResult]:
    """Paired top-1 and top-5 non-inferiority checks of the served scores on shared examples of common taxa."""
    return _common_paired_checks(COMMON_CHECKS, "", inputs.candidate_rank, inputs.baseline_rank, inputs, gate, seed)


def common_vision_checks(inputs: GateInputs, gate: GateConfig, seed: int) -> list[ThresholdResult]:
    """The same paired top-1 and top-5 checks on the two releases' vision scores alone (what a user who gives
    no location gets), on the same examples with the same margins."""
    return _common_paired_checks(COMMON_VISION_CHECKS, ", vision alone (no location)", inputs.vision_rank,
                                 inputs.baseline_vision_rank, inputs, gate, seed)


def skipped_checks(inputs: GateInputs, gate: GateConfig) -> list[SkippedCheck]:
    """The checks that do not apply, each with the reason: on a first release the comparisons with the baseline
    (and the tests against chance when turned off); with a baseline but no shared common-taxon example, the
    paired checks; otherwise []."""
    paired = COMMON_CHECKS + COMMON_VISION_CHECKS
    if not inputs.has_baseline:
        return ([SkippedCheck(name, NO_BASELINE_REASON) for name in paired]
                + ([] if gate.first_release_vs_chance else [SkippedCheck(name, CHANCE_OFF_REASON)
                                                            for name in CHANCE_CHECKS]))
    if not inputs.common_shared(gate.common_taxa_min_train_photos).any():
        return [SkippedCheck(name, NO_SHARED_REASON) for name in paired]
    return []


def iconic_checks(inputs: GateInputs, gate: GateConfig, seed: int) -> list[ThresholdResult]:
    """Paired top-1 checks per iconic taxon on its shared common-taxa examples, for slices large enough."""
    if gate.iconic_max_top1_drop is None:
        return []
    common = inputs.common_shared(gate.common_taxa_min_train_photos)
    iconic = inputs.iconic_names()
    checks = []
    for name in sorted(set(iconic[common])):
        mask = common & (iconic == name)
        if mask.sum() >= gate.iconic_min_examples:
            checks.append(paired_regression_check(
                f"iconic_top1_regression/{name}", f"{name} (common taxa), top-1",
                correct_at(inputs.candidate_rank[mask], 1), correct_at(inputs.baseline_rank[mask], 1),
                gate.iconic_max_top1_drop, gate, seed, inputs.taxa_in(mask)))
    return checks


def geo_prior_check(inputs: GateInputs, gate: GateConfig, seed: int = 0) -> ThresholdResult:
    """Blocks when the prior lowers top-1 below vision alone on the test examples with coordinates.

    A plain comparison, not the paired rule: both rankings come from the same model on the same examples,
    so any net loss is the prior's doing, and "a prior that makes top-1 worse blocks the release". The
    paired interval is reported to show how sure the difference is.
    """
    mask = inputs.has_location
    n = int(mask.sum())
    if n == 0:
        return ThresholdResult(name="geo_prior_top1", passed=True, value=None, limit=0.0, n=0, taxa=0, test=PLAIN_TEST,
                               explanation="No test example has coordinates: the location prior changes "
                                           "nothing on this test set.")
    prior, vision = correct_at(inputs.candidate_rank[mask], 1), correct_at(inputs.vision_rank[mask], 1)
    change = float(prior.mean() - vision.mean())
    low, high = paired_bootstrap_ci(prior, vision, gate.confidence, gate.bootstrap_resamples, seed)
    passed = change >= 0
    return ThresholdResult(
        name="geo_prior_top1", passed=passed, value=change, limit=0.0, ci_low=low, ci_high=high, n=n,
        taxa=inputs.taxa_in(mask), test=PLAIN_TEST,
        explanation=(f"Top-1 on {n:,} test examples with coordinates: vision with the location prior "
                     f"{_percent(prior.mean())}, vision alone {_percent(vision.mean())}, change {_points(change)} "
                     f"({int((prior & ~vision).sum())} gained, {int((~prior & vision).sum())} lost). "
                     + ("Passed: the prior does not lower top-1." if passed
                        else "Blocked: the prior makes top-1 worse than vision alone.")))


def tfma_floor_check(slice_top1: dict[str, float], min_top1: float) -> ThresholdResult:
    """Every slice TFMA evaluated (overall, each iconic taxon, each leaf rank: `slice_top1`, name -> top-1)
    reaches `gate.min_top1` as this run sets it. The Evaluator's own TFMA threshold is compiled into a Kubeflow
    spec, so a submission's `config_overrides` would not reach it; the gate judges TFMA's metrics itself."""
    below = sorted(name for name, top1 in slice_top1.items() if top1 < min_top1)
    passed = bool(slice_top1) and not below
    if not slice_top1:
        explanation = "TFMA computed no top-1 for the candidate: nothing to hold against the floor."
    elif below:
        explanation = (f"TFMA's top-1 of {len(below)} of {len(slice_top1)} slices is below the floor "
                       f"{_percent(min_top1)} (gate.min_top1): " + ", ".join(
                           f"{name} {_percent(slice_top1[name])}" for name in below[:10]) + ".")
    else:
        explanation = (f"TFMA's top-1 of every one of its {len(slice_top1)} slices (overall, iconic taxa, leaf "
                       f"ranks) reaches the floor {_percent(min_top1)} (gate.min_top1).")
    return ThresholdResult(name="tfma_validation", passed=passed, value=min(slice_top1.values(), default=None),
                           limit=min_top1, test=TFMA_TEST, explanation=explanation)
