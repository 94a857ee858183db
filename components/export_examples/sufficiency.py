"""Whether an export left enough to train and judge a model: examples in every split, two classes to train.

An export that leaves nothing (every photo under a licence not allowed, cut-offs above every taxon) stops at
the export with the counts by reason and the setting that would change each, instead of failing later in
the Trainer. Classes without a training photo are a warning only.
"""
from __future__ import annotations

from inatvision import features
from inatvision.components.export_examples import rules
from inatvision.errors import InputError

LICENCE_REASONS = (rules.NO_ALLOWED_PHOTO, rules.LICENSE_NOT_ALLOWED, rules.LICENSE_UNKNOWN)
# The export's exclusion reasons and the setting that decides each.
SETTING_BY_REASON = {
    rules.NO_ALLOWED_PHOTO: "export.licenses", rules.LICENSE_NOT_ALLOWED: "export.licenses",
    rules.LICENSE_UNKNOWN: "export.licenses (add 'unknown' for an empty licence column)",
    rules.BELOW_CUTOFF: "export.min_observations / export.min_research_grade", rules.CASUAL: "export.include_casual",
    rules.OVER_OBSERVATION_CAP: "export.max_photos_per_observation",
    rules.OVER_LEAF_CAP: "export.max_*_photos_per_leaf",
}


class NotEnoughData(InputError):
    """The export left a split empty or fewer than two classes to train on."""


def problems(report: dict) -> list[str]:
    """What makes the export unusable for training and evaluation; empty when it is usable."""
    empty = [split for split in features.SPLITS if report["examples_per_split"].get(split, 0) == 0]
    found = [f"no examples in {', '.join(empty)}"] if empty else []
    trained_classes = sum(1 for splits in report["photos_per_leaf"].values() if splits.get("train", 0) > 0)
    if trained_classes < 2:
        found.append(f"{trained_classes} class(es) with training examples (at least 2 are needed)")
    return found


def classes_without_training_photos(report: dict) -> list[int]:
    """Leaf taxa that have eval or test photos but none to train on: a warning, not a stop."""
    return sorted(int(leaf) for leaf, splits in report["photos_per_leaf"].items() if splits.get("train", 0) == 0)


SECTIONS = {"observations_dropped": "observations", "photos_dropped": "photos", "photos_rejected": "broken photos"}


def exclusions(report: dict) -> dict[str, dict[str, int]]:
    """What the export excluded by rule or rejected as broken: section -> reason -> count."""
    found = {label: dict(report[section]) for section, label in SECTIONS.items() if report.get(section)}
    if (report.get("rejected") or {}).get("rows"):
        found["table rows"] = dict(report["rejected"]["rows"])
    return found


def check(report: dict) -> None:
    """Raises NotEnoughData naming the problems, the exclusions by reason and the settings behind them."""
    found = problems(report)
    if not found:
        return
    excluded = exclusions(report)
    reasons = "; ".join(f"{label}: " + ", ".join(f"{reason} {count}" for reason, count in counts.items())
                        for label, counts in excluded.items()) or "nothing was excluded"
    settings = sorted({SETTING_BY_REASON[reason] for counts in excluded.values() for reason in counts
                       if reason in SETTING_BY_REASON})
    hint = f"; the settings behind them: {'; '.join(settings)}" if settings else ""
    if any(reason in counts for counts in excluded.values() for reason in LICENCE_REASONS):
        licences = ", ".join(f"{name} {count}" for name, count in sorted(report.get("licenses", {}).items()))
        if licences:  # counted over the photos of selected observations: none when no observation qualified
            hint += f"; photo licences in the export: {licences}"
    raise NotEnoughData(f"{report['export_dir']}: the export left {' and '.join(found)}; "
                        f"excluded by reason: {reasons}{hint}")
