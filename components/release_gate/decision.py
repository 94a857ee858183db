"""The release gate's verdict: runs every check (`checks`), blesses the candidate when all pass, and builds
the report's result (`report_data.GateResult`) with its tables (`tables`).

The candidate is the served model, vision combined with the location prior; the baseline is the previous
release. The TFX glue (`component`) builds `GateInputs` from the Evaluator's taxon outcomes and calls
`evaluate_gate`; `statistics` holds the paired bootstrap and the binomial test the checks use.
"""
from __future__ import annotations

from typing import Optional, Sequence

from inatvision.components.release_gate.checks import (chance_checks, common_taxa_checks, common_vision_checks,
                                                       evidence_check, iconic_checks, skipped_checks,
                                                       top1_floor_check)
from inatvision.components.release_gate.inputs import GateInputs
from inatvision.components.release_gate.report_data import GateResult, GeoPriorComparison, ThresholdResult
from inatvision.components.release_gate.tables import (accuracy_by_taxon, accuracy_by_train_photos, iconic_comparison,
                                                       most_confused_pairs, most_regressed_taxa, overall_comparison,
                                                       taxa_difference)
from inatvision.config import GateConfig

FIRST_RELEASE_SENTENCE = ("This is the first release: there is no previous release to compare with, "
                          "so only the absolute checks (the floor and the tests against chance) apply.")


def _summary(thresholds: list[ThresholdResult], first_release: bool) -> str:
    failed = [check.name for check in thresholds if not check.passed]
    verdict = (f"Not blessed: {len(failed)} of {len(thresholds)} checks failed ({', '.join(failed)})." if failed
               else f"Blessed: all {len(thresholds)} checks passed.")
    return f"{verdict} {FIRST_RELEASE_SENTENCE}" if first_release else verdict


def evaluate_gate(inputs: GateInputs, gate: GateConfig, extra_checks: Sequence[ThresholdResult] = (),
                  seed: int = 0, geo_prior: Optional[GeoPriorComparison] = None) -> GateResult:
    """Runs every check (plus the caller's already evaluated `extra_checks`) and builds the report's tables.

    The candidate is blessed when every check passes. Without a baseline only the absolute checks apply (the
    floor, and the tests against chance unless `gate.first_release_vs_chance` is off); the
    comparisons with the baseline are listed in `skipped_checks` with the reason. `geo_prior` (from
    `geo_prior_comparison`) is shown in the report; its check, `geo_prior_check`, comes with the caller's
    extra checks.
    """
    thresholds = [top1_floor_check(inputs, gate.min_top1)] + chance_checks(inputs, gate)
    if inputs.has_baseline:
        thresholds += ([evidence_check(inputs, gate)] + common_taxa_checks(inputs, gate, seed)
                       + common_vision_checks(inputs, gate, seed) + iconic_checks(inputs, gate, seed))
    thresholds += list(extra_checks)
    first_release = not inputs.has_baseline
    baseline_taxa = inputs.baseline_taxa or {}
    return GateResult(
        blessed=all(check.passed for check in thresholds), first_release=first_release,
        summary=_summary(thresholds, first_release), confidence=gate.confidence,
        baseline_release=inputs.baseline_release, thresholds=thresholds,
        overall=overall_comparison(inputs, gate), per_iconic=iconic_comparison(inputs),
        taxa_added=[] if first_release else taxa_difference(inputs.candidate_taxa, baseline_taxa),
        taxa_removed=taxa_difference(baseline_taxa, inputs.candidate_taxa),
        regressed_taxa=most_regressed_taxa(inputs), confused_pairs=most_confused_pairs(inputs),
        train_photo_buckets=accuracy_by_train_photos(inputs), taxon_accuracy=accuracy_by_taxon(inputs),
        geo_prior=geo_prior,
        skipped_checks=skipped_checks(inputs, gate))
