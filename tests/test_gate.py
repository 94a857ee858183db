"""Release gate: non-inferiority on common taxa, evidence, the first release against chance, lists and the report."""
import json

import numpy as np
import pytest

from inatvision.components.release_gate.checks import (CHANCE_CHECKS, CHANCE_OFF_REASON, COMMON_VISION_CHECKS,
                                                       common_vision_checks)
from inatvision.components.release_gate.decision import evaluate_gate
from inatvision.components.release_gate.inputs import GateInputs
from inatvision.components.release_gate import report
from inatvision.components.release_gate.report_data import GateResult, SliceComparison, ThresholdResult
from inatvision.components.release_gate.statistics import paired_bootstrap_ci, topk_accuracy, wilson_interval
from inatvision.components.release_gate.report import load_gate_result_json, write_gate_report
from inatvision.config import GateConfig

# The production margins; evidence from 100 shared examples and no test against chance, unless a test is about them.
GATE = GateConfig(max_top1_drop=0.005, max_top5_drop=0.005, common_taxa_min_train_photos=50,
                  bootstrap_resamples=2000, min_common_examples=100, first_release_vs_chance=False, min_top1=0.0)
HIT, MISS = 1, 0


def paired_outcomes(n, both, only_baseline, only_candidate):
    """Top-1 ranks for n examples: `both` right in both releases, then baseline-only, then candidate-only hits."""
    candidate = np.full(n, MISS)
    baseline = np.full(n, MISS)
    candidate[:both] = baseline[:both] = HIT
    baseline[both:both + only_baseline] = HIT
    candidate[both + only_baseline:both + only_baseline + only_candidate] = HIT
    return candidate, baseline


def make_inputs(candidate_rank, baseline_rank=None, *, taxa=None, iconic="Aves", train_photos=100, shared=True,
                rank="species", confusions=(), candidate_taxa=None, baseline_taxa=None, vision_rank=None,
                baseline_vision_rank=None, located=True):
    """GateInputs with one leaf per example unless `taxa` is given; scalars are broadcast. `vision_rank` and
    `baseline_vision_rank`: the releases' vision-only ranks, by default their served ranks (vision-only
    releases); `located`: the examples have coordinates."""
    n = len(candidate_rank)
    taxa = np.arange(1, n + 1) if taxa is None else np.asarray(taxa)
    names = {int(t): f"species {t}" for t in np.unique(taxa)}
    has_baseline = baseline_rank is not None
    vision_rank = candidate_rank if vision_rank is None else vision_rank
    if has_baseline and baseline_vision_rank is None:
        baseline_vision_rank = baseline_rank
    return GateInputs(
        leaf_taxon_id=taxa, iconic_taxon=np.broadcast_to(iconic, n), leaf_rank=np.broadcast_to(rank, n),
        leaf_train_photos=np.broadcast_to(train_photos, n), candidate_rank=candidate_rank,
        candidate_taxa=candidate_taxa or names, confusions=list(confusions), baseline_rank=baseline_rank,
        shared=np.broadcast_to(shared, n) if has_baseline else None,
        baseline_taxa=(baseline_taxa or names) if has_baseline else None, vision_rank=vision_rank,
        has_location=np.broadcast_to(located, n), baseline_vision_rank=baseline_vision_rank)


def check(result, name):
    return next(threshold for threshold in result.thresholds if threshold.name == name)


def test_topk_accuracy_counts_ranks_up_to_k_and_misses_as_zero():
    ranks = np.array([1, 2, 6, 0, 11])
    assert topk_accuracy(ranks, 1) == pytest.approx(0.2)
    assert topk_accuracy(ranks, 5) == pytest.approx(0.4)
    assert topk_accuracy(ranks, 10) == pytest.approx(0.6)
    assert topk_accuracy(np.array([], dtype=int), 1) is None


def test_a_drop_that_may_exceed_the_margin_is_not_blessed_even_when_not_proven():
    """Issue 21: 3 points worse, interval about [-6, 0], margin 0.5 points: the burden is on the candidate."""
    candidate, baseline = paired_outcomes(300, both=200, only_baseline=12, only_candidate=3)  # -3 points
    result = evaluate_gate(make_inputs(candidate, baseline), GATE)
    top1 = check(result, "common_top1_regression")
    assert top1.value == pytest.approx(-0.03) and top1.n == 300 and top1.taxa == 300
    assert top1.ci_low < -0.05 and top1.ci_high > -GATE.max_top1_drop  # not proven worse beyond the margin
    assert not top1.passed and not result.blessed
    assert top1.margin == GATE.max_top1_drop and top1.limit == -GATE.max_top1_drop
    assert "non-inferiority" in top1.test


def test_a_drop_within_a_wide_margin_passes():
    candidate, baseline = paired_outcomes(300, both=200, only_baseline=12, only_candidate=6)  # -2 points
    wide = GATE.model_copy(update=dict(max_top1_drop=0.08, max_top5_drop=0.08))
    top1 = check(evaluate_gate(make_inputs(candidate, baseline), wide), "common_top1_regression")
    assert top1.value == pytest.approx(-0.02) and top1.ci_low < -0.02 < top1.ci_high
    assert top1.ci_low >= -0.08 and top1.passed


def test_a_large_drop_on_a_big_slice_is_a_regression():
    candidate, baseline = paired_outcomes(5000, both=3000, only_baseline=300, only_candidate=50)  # -5 points
    result = evaluate_gate(make_inputs(candidate, baseline), GATE)
    top1 = check(result, "common_top1_regression")
    assert top1.value == pytest.approx(-0.05)
    assert top1.ci_high < -GATE.max_top1_drop
    assert not top1.passed and not result.blessed
    assert "common_top1_regression" in result.summary


def test_identical_candidate_and_baseline_pass_with_an_interval_at_zero():
    ranks = np.array([1, 3, 0, 1, 7, 1, 2, 0] * 50)
    result = evaluate_gate(make_inputs(ranks, ranks.copy()), GATE)
    for name in ("common_top1_regression", "common_top5_regression"):
        threshold = check(result, name)
        assert (threshold.value, threshold.ci_low, threshold.ci_high) == (0, 0, 0) and threshold.passed
    assert result.blessed and not result.first_release
    assert not result.regressed_taxa


def test_good_served_ranks_do_not_hide_a_vision_regression():
    """The generated sample's case: every test example has a location, the prior carries a chance-level
    vision model to within noise of the baseline's served top-1, but a user without a location gets chance."""
    served, baseline_served = paired_outcomes(600, both=540, only_baseline=0, only_candidate=0)  # the same
    vision = np.where(np.arange(600) % 50 == 0, 1, 0)  # chance: 2% top-1, nothing else in the top 5
    baseline_vision, _ = paired_outcomes(600, both=480, only_baseline=0, only_candidate=0)  # 80% top-1
    inputs = make_inputs(served, baseline_served, vision_rank=vision, baseline_vision_rank=baseline_vision)
    result = evaluate_gate(inputs, GATE)
    assert check(result, "common_top1_regression").passed and check(result, "common_top5_regression").passed
    vision_top1 = check(result, "common_vision_top1_regression")
    assert vision_top1.value == pytest.approx(0.02 - 0.8) and vision_top1.n == 600
    assert vision_top1.ci_high < -GATE.max_top1_drop
    assert vision_top1.limit == -GATE.max_top1_drop and "vision alone" in vision_top1.explanation
    assert not check(result, "common_vision_top5_regression").passed
    assert [t.name for t in result.thresholds if not t.passed] == list(COMMON_VISION_CHECKS)
    assert not result.blessed and "common_vision_top1_regression" in result.summary
    assert result.skipped_checks == []


def test_the_vision_checks_follow_the_served_rule_and_ignore_rare_taxa():
    served = np.ones(300, dtype=int)
    vision, baseline_vision = paired_outcomes(300, both=200, only_baseline=12, only_candidate=6)  # -2 points
    inputs = make_inputs(served, served.copy(), vision_rank=vision, baseline_vision_rank=baseline_vision)
    vision_top1 = check(evaluate_gate(inputs, GATE), "common_vision_top1_regression")
    assert vision_top1.value == pytest.approx(-0.02) and vision_top1.ci_low < -0.02 < vision_top1.ci_high
    assert not vision_top1.passed  # within noise, but not shown within half a point
    wide = GATE.model_copy(update=dict(max_top1_drop=0.08, max_top5_drop=0.08))
    assert evaluate_gate(inputs, wide).blessed
    lost_on_rare = paired_outcomes(2000, both=1000, only_baseline=600, only_candidate=0)
    photos = np.where(np.arange(2000) < 1000, 500, 10)
    checks = common_vision_checks(make_inputs(np.ones(2000, int), np.ones(2000, int), train_photos=photos,
                                              vision_rank=lost_on_rare[0], baseline_vision_rank=lost_on_rare[1]),
                                  GATE, seed=0)
    assert [(c.name, c.n, c.value, c.passed) for c in checks] == [
        ("common_vision_top1_regression", 1000, 0.0, True), ("common_vision_top5_regression", 1000, 0.0, True)]


def test_the_vision_checks_run_on_every_comparison_with_a_baseline():
    ranks = np.array([1, 2, 0, 1] * 25)
    complete = make_inputs(ranks, ranks.copy(), vision_rank=ranks.copy(), baseline_vision_rank=ranks.copy())
    assert all(t.passed and t.value == 0 for t in common_vision_checks(complete, GATE, seed=0))
    result = evaluate_gate(complete, GATE)
    assert [t.name for t in result.thresholds if t.name in COMMON_VISION_CHECKS] == list(COMMON_VISION_CHECKS)
    assert result.skipped_checks == [] and result.blessed


def test_the_bootstrap_matches_resampling_examples_and_is_seeded():
    candidate, baseline = paired_outcomes(400, both=250, only_baseline=30, only_candidate=20)
    candidate, baseline = candidate == HIT, baseline == HIT
    rng = np.random.default_rng(1)
    resampled = rng.integers(0, 400, size=(4000, 400))
    naive = np.quantile((candidate[resampled].astype(int) - baseline[resampled]).mean(axis=1), [0.025, 0.975])
    fast = paired_bootstrap_ci(candidate, baseline, 0.95, 4000, seed=0)
    assert fast == pytest.approx(tuple(naive), abs=0.006)
    assert fast == paired_bootstrap_ci(candidate, baseline, 0.95, 4000, seed=0)


def test_first_release_is_blessed_on_the_absolute_checks_and_says_so():
    result = evaluate_gate(make_inputs(np.array([1, 1, 0, 2])), GATE.model_copy(update=dict(min_top1=0.5)))
    assert result.blessed and result.first_release
    assert [threshold.name for threshold in result.thresholds] == ["top1_floor"]
    assert "first release" in result.summary
    assert [(skipped.name, skipped.reason) for skipped in result.skipped_checks] == [
        (name, "First release: there is no previous release to compare with.") for name in (
            "common_top1_regression", "common_top5_regression", *COMMON_VISION_CHECKS)] + [
        (name, CHANCE_OFF_REASON) for name in CHANCE_CHECKS]
    assert result.taxa_added == [] and result.taxa_removed == [] and result.regressed_taxa == []
    assert result.overall[0].shared_baseline_top1 is None


def test_an_absolute_floor_failure_blocks_even_without_a_regression():
    ranks = np.array([1] * 70 + [0] * 30)
    result = evaluate_gate(make_inputs(ranks, ranks.copy()), GATE.model_copy(update=dict(min_top1=0.9)))
    floor = check(result, "top1_floor")
    assert not floor.passed and floor.value == pytest.approx(0.7) and floor.limit == 0.9
    assert check(result, "common_top1_regression").passed
    assert not result.blessed


def test_a_drop_on_rare_or_unshared_taxa_is_outside_the_common_taxa_checks():
    candidate, baseline = paired_outcomes(2000, both=1000, only_baseline=600, only_candidate=0)
    photos = np.where(np.arange(2000) < 1000, 500, 10)  # the lost examples belong to rare taxa
    result = evaluate_gate(make_inputs(candidate, baseline, train_photos=photos), GATE)
    assert check(result, "common_top1_regression").n == 1000
    assert result.blessed
    not_shared = evaluate_gate(make_inputs(candidate, baseline, shared=np.arange(2000) < 1000), GATE)
    assert check(not_shared, "common_top1_regression").value == 0 and not_shared.blessed


def test_iconic_limits_apply_only_to_slices_above_the_minimum_size():
    aves_candidate, aves_baseline = paired_outcomes(1000, both=500, only_baseline=100, only_candidate=0)
    reptile_candidate, reptile_baseline = paired_outcomes(150, both=50, only_baseline=50, only_candidate=0)
    plant_candidate, plant_baseline = paired_outcomes(3000, both=2000, only_baseline=0, only_candidate=400)
    inputs = make_inputs(
        np.concatenate([aves_candidate, reptile_candidate, plant_candidate]),
        np.concatenate([aves_baseline, reptile_baseline, plant_baseline]),
        iconic=np.repeat(["Aves", "Reptilia", "Plantae"], [1000, 150, 3000]))
    gate = GATE.model_copy(update=dict(iconic_max_top1_drop=0.02, iconic_min_examples=200))
    result = evaluate_gate(inputs, gate)
    iconic = {t.name: t for t in result.thresholds if t.name.startswith("iconic")}
    assert set(iconic) == {"iconic_top1_regression/Aves", "iconic_top1_regression/Plantae"}
    assert not iconic["iconic_top1_regression/Aves"].passed and iconic["iconic_top1_regression/Plantae"].passed
    assert check(result, "common_top1_regression").passed  # overall the candidate improved
    assert not result.blessed
    assert not any(t.name.startswith("iconic") for t in evaluate_gate(inputs, GATE).thresholds)
    assert [row.name for row in result.per_iconic] == ["Plantae", "Aves", "Reptilia"]


def test_extra_checks_from_the_caller_join_the_verdict():
    ranks = np.array([1, 1, 0, 1])
    geo = ThresholdResult("geo_prior_top1", passed=np.bool_(False), value=np.float32(-0.03), limit=0.0,
                          explanation="the geo prior lowers top-1")
    result = evaluate_gate(make_inputs(ranks), GATE, extra_checks=[geo])
    assert not result.blessed and result.thresholds[-1] is geo
    json.dumps(result.to_json())


def test_taxa_added_removed_and_confused_pairs_on_hand_made_data():
    taxa = [2, 2, 2, 2, 3, 1, 5]
    candidate = np.array([0, 0, 0, 1, 0, 1, 1])
    baseline = np.array([1, 1, 1, 1, 1, 0, 0])
    confusions = [(2, 3, 5), (3, 2, 9), (2, 2, 40), (1, 3, 1), (5, 2, 0)]
    inputs = make_inputs(candidate, baseline, taxa=taxa, shared=np.array(taxa) != 1, confusions=confusions,
                         candidate_taxa={1: "Aa", 2: "Bb", 3: "Cc", 5: "Ee"},
                         baseline_taxa={2: "Bb", 3: "Cc", 4: "Dd", 5: "Ee"})
    result = evaluate_gate(inputs, GATE.model_copy(update=dict(min_common_examples=0)))
    assert [(t.taxon_id, t.name) for t in result.taxa_added] == [(1, "Aa")]
    assert [(t.taxon_id, t.name) for t in result.taxa_removed] == [(4, "Dd")]
    assert [(p.true_name, p.predicted_name, p.count, p.true_examples) for p in result.confused_pairs] == [
        ("Cc", "Bb", 9, 1), ("Bb", "Cc", 5, 4), ("Aa", "Cc", 1, 1)]
    regressed = [(t.taxon_id, t.n, t.baseline_correct, t.candidate_correct, t.change) for t in result.regressed_taxa]
    assert regressed == [(2, 4, 4, 1, -0.75), (3, 1, 1, 0, -1.0)]
    many = [(t, 100 + t, 30 - t) for t in range(25)]
    assert len(evaluate_gate(make_inputs(candidate, confusions=many), GATE).confused_pairs) == 20


def test_accuracy_by_training_photos_buckets():
    inputs = make_inputs(np.array([1, 0, 1, 3, 1, 1]), train_photos=np.array([5, 19, 20, 60, 200, 1000]))
    buckets = evaluate_gate(inputs, GATE).train_photo_buckets
    assert [(b.label, b.taxa, b.n, b.candidate_top1, b.candidate_top5) for b in buckets] == [
        ("<20", 2, 2, 0.5, 0.5), ("20-49", 1, 1, 1.0, 1.0), ("50-99", 1, 1, 0.0, 1.0),
        ("100-499", 1, 1, 1.0, 1.0), ("500+", 1, 1, 1.0, 1.0)]


def test_inputs_with_mismatched_lengths_or_half_a_baseline_are_rejected():
    with pytest.raises(ValueError, match="differ"):
        make_inputs(np.array([1, 0]), np.array([1, 0, 1]))
    with pytest.raises(ValueError, match="together"):
        GateInputs(leaf_taxon_id=[1], iconic_taxon=["Aves"], leaf_rank=["species"], leaf_train_photos=[9],
                   candidate_rank=[1], vision_rank=[1], has_location=[True], candidate_taxa={1: "a"}, baseline_rank=[1])
    with pytest.raises(ValueError, match="only with a baseline"):
        make_inputs(np.array([1, 0]), baseline_vision_rank=np.array([1, 1]))
    with pytest.raises(ValueError, match="a baseline needs it"):
        GateInputs(leaf_taxon_id=[1], iconic_taxon=["Aves"], leaf_rank=["species"], leaf_train_photos=[9],
                   candidate_rank=[1], vision_rank=[1], has_location=[True], candidate_taxa={1: "a"},
                   baseline_rank=[1], shared=[True], baseline_taxa={1: "a"})
    with pytest.raises(ValueError, match="differ"):
        make_inputs(np.array([1, 0]), np.array([1, 0]), baseline_vision_rank=np.array([1]))


@pytest.mark.parametrize("with_baseline", [True, False])
def test_the_report_writes_html_and_json_that_round_trips(tmp_path, with_baseline):
    candidate, baseline = paired_outcomes(400, both=250, only_baseline=40, only_candidate=10)
    vision, baseline_vision = paired_outcomes(400, both=200, only_baseline=100, only_candidate=0)
    inputs = make_inputs(candidate, baseline if with_baseline else None, taxa=np.arange(400) % 40,
                         iconic=np.where(np.arange(400) % 3, "Aves", ""), confusions=[(1, 2, 3)],
                         vision_rank=vision, baseline_vision_rank=baseline_vision if with_baseline else None)
    result = evaluate_gate(inputs, GATE)
    html_path, json_path = write_gate_report(result, tmp_path / "report")
    html = html_path.read_text()
    assert html.index("BLESSED") < html.index("top1_floor")  # the verdict comes first
    assert ("NOT BLESSED" in html) == with_baseline
    vision_top1 = check(result, "common_vision_top1_regression") if with_baseline else None
    assert ("Checks not applied" in html) != with_baseline  # a first release lists the comparisons it skips
    assert "common_vision_top1_regression" in html
    if with_baseline:
        assert not vision_top1.passed and vision_top1.ci_low is not None
        assert f"{vision_top1.ci_low * 100:.2f} to {vision_top1.ci_high * 100:.2f}" in html
        row = next(t for t in json.loads(json_path.read_text())["thresholds"]
                   if t["name"] == "common_vision_top1_regression")
        assert row["ci_high"] < -GATE.max_top1_drop and row["margin"] == GATE.max_top1_drop and not row["passed"]
        assert "non-inferiority" in row["test"] and row["n"] == 400 and row["taxa"] == 40
    assert html.count("data:image/png;base64,") == (3 if with_baseline else 2)
    assert "(none)" in html and "species 1" in html
    assert json.loads(json_path.read_text())["blessed"] == result.blessed
    assert load_gate_result_json(json_path) == result
    assert GateResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_an_equal_candidate_with_enough_evidence_is_blessed_and_too_little_evidence_is_not():
    ranks = np.array([1, 3, 0, 1, 7, 1, 2, 0] * 50)  # 400 shared common-taxon examples
    enough = evaluate_gate(make_inputs(ranks, ranks.copy()), GATE.model_copy(update=dict(min_common_examples=400)))
    evidence = check(enough, "common_evidence")
    assert evidence.passed and evidence.n == 400 and evidence.min_n == 400 and enough.blessed
    short = evaluate_gate(make_inputs(ranks, ranks.copy()), GATE.model_copy(update=dict(min_common_examples=401)))
    evidence = check(short, "common_evidence")
    assert not evidence.passed and not short.blessed
    assert "gate.min_common_examples=400 accepts a verdict on this evidence knowingly" in evidence.explanation


def test_releases_with_no_taxon_in_common_are_not_blessed_and_the_report_renders(tmp_path):
    """Issue 21: two worlds that share no leaf taxon: no evidence of "not worse", a verdict, not a template error."""
    ranks = np.array([1, 1, 0, 1] * 50)
    inputs = make_inputs(ranks, ranks.copy(), shared=False, baseline_taxa={9001: "other world"})
    result = evaluate_gate(inputs, GATE)
    assert not result.blessed and not check(result, "common_evidence").passed
    assert check(result, "common_evidence").n == 0
    assert {skipped.name for skipped in result.skipped_checks} >= {"common_top1_regression", *COMMON_VISION_CHECKS}
    html = write_gate_report(result, tmp_path / "report")[0].read_text()
    assert "NOT BLESSED" in html and "no evidence" in html.lower()


def test_a_first_release_at_chance_fails_with_its_p_value_and_a_good_one_passes(tmp_path):
    gate = GATE.model_copy(update=dict(first_release_vs_chance=True, min_top1=0.0))
    taxa = np.arange(600) % 20  # 20 taxa, 30 examples each: chance 5%
    at_chance = np.where(np.arange(600) % 20 == 0, 1, 0)  # 5% right
    result = evaluate_gate(make_inputs(at_chance, taxa=taxa), gate)
    served = check(result, "top1_vs_chance")
    assert not served.passed and served.p_value > 0.05 and served.limit == pytest.approx(0.05)
    assert not result.blessed and "top1_vs_chance" in result.summary
    html = write_gate_report(result, tmp_path / "chance")[0].read_text()
    assert f"{served.p_value:.3g}" in html
    good = np.where(np.arange(600) % 4 == 0, 0, 1)  # 75% right
    passed = evaluate_gate(make_inputs(good, taxa=taxa), gate)
    assert check(passed, "top1_vs_chance").passed and check(passed, "top1_vs_chance").p_value < 1e-6
    assert check(passed, "vision_top1_vs_chance").passed and passed.blessed


def test_each_profile_states_a_floor_and_the_test_against_chance_is_on_by_default():
    from inatvision.config import build_config
    for profile in ("demo", "production"):
        gate = build_config(profile).gate
        assert gate.first_release_vs_chance and gate.min_top1 > 0 and gate.min_common_examples > 0


def test_the_wilson_interval_matches_known_values_and_stays_in_zero_to_one():
    assert wilson_interval(1.0, 3, 0.95) == pytest.approx((0.4385, 1.0), abs=1e-4)  # 3 of 3 right
    assert wilson_interval(0.5, 100, 0.95) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    low, high = wilson_interval(0.0, 10, 0.95)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0.5, 0, 0.95) == (0.0, 1.0)  # no examples: nothing known
    narrow, wide = wilson_interval(0.8, 1000, 0.95), wilson_interval(0.8, 1000, 0.99)
    assert wide[0] < narrow[0] < 0.8 < narrow[1] < wide[1]


def test_the_iconic_figure_draws_an_interval_per_bar_and_names_each_slice_size():
    rows = [SliceComparison(name=name, n=n, candidate_top1=top1, candidate_top5=1.0, candidate_top10=1.0, n_shared=0,
                            shared_candidate_top1=None, shared_candidate_top5=None, shared_baseline_top1=None,
                            shared_baseline_top5=None) for name, n, top1 in (("Aves", 400, 0.9), ("Mollusca", 3, 2 / 3))]
    result = evaluate_gate(make_inputs(np.ones(10, int)), GATE)
    result.first_release, result.per_iconic = True, rows
    axes = report.iconic_figure(result).axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["Aves\nn=400", "Mollusca\nn=3"]
    error_bars = [child for child in axes.containers if getattr(child, "errorbar", None) is not None]
    assert len(error_bars) == 2  # top-1 and top-5, one interval per bar
    (intervals,) = error_bars[0].errorbar.lines[2]  # one vertical segment per top-1 bar, in percent
    mollusca = intervals.get_segments()[1][:, 1]
    assert mollusca.min() == pytest.approx(20.77, abs=0.01) and mollusca.max() == pytest.approx(93.85, abs=0.01)


def test_every_leaf_gets_its_training_photos_and_correct_count_and_a_point_on_the_log_scale(tmp_path):
    taxa = np.array([7, 7, 7, 9, 9, 11])
    ranks = np.array([1, 1, 3, 2, 1, 0])
    result = evaluate_gate(make_inputs(ranks, taxa=taxa, train_photos=np.array([5, 5, 5, 800, 800, 40])), GATE)
    assert [(t.taxon_id, t.train_photos, t.n, t.candidate_correct) for t in result.taxon_accuracy] == [
        (7, 5, 3, 2), (9, 800, 2, 1), (11, 40, 1, 0)]
    axes = report.train_photos_figure(result).axes[0]
    assert axes.get_xscale() == "log"
    points = axes.collections[0].get_offsets()
    assert points[:, 0].tolist() == [5, 800, 40] and points[:, 1].tolist() == pytest.approx([200 / 3, 50, 0])
    html, json_path = write_gate_report(result, tmp_path)
    assert load_gate_result_json(json_path).taxon_accuracy == result.taxon_accuracy
    assert "top-1 per taxon against its training photos" in html.read_text()


def test_the_tfma_floor_holds_every_slice_to_the_floor_this_run_sets():
    from inatvision.components.release_gate.checks import tfma_floor_check

    slices = {"Overall": 0.62, "iconic_taxon:Aves": 0.71, "iconic_taxon:Fungi": 0.25, "leaf_rank:genus": 0.4}
    failed = tfma_floor_check(slices, 0.3)
    assert not failed.passed and failed.value == pytest.approx(0.25) and failed.limit == pytest.approx(0.3)
    assert "1 of 4 slices" in failed.explanation and "iconic_taxon:Fungi 25.0%" in failed.explanation
    assert tfma_floor_check(slices, 0.0).passed  # a submission's override lowers the floor: the gate follows it
    assert not tfma_floor_check({}, 0.0).passed  # no metrics: nothing shows the floor holds
