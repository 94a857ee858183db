"""The export report: what was kept and rejected, by reason, with the first few rows or photos."""
from __future__ import annotations

import collections
import json
import os

import tensorflow as tf

from inatvision import features

REPORT_FILE = "export_report.json"


def _counts(section: dict) -> dict[str, int]:
    return {reason: entry["count"] for reason, entry in sorted(section.items())}


def _examples(section: dict) -> dict[str, list[str]]:
    return {reason: entry["examples"] for reason, entry in sorted(section.items()) if entry["examples"]}


def per_leaf_split_counts(tally: dict) -> dict[int, dict[str, int]]:
    leaves: dict[int, dict[str, int]] = collections.defaultdict(lambda: dict.fromkeys(features.SPLITS, 0))
    for key, entry in tally.get("leaf_photos", {}).items():
        split, leaf = key.split(":")
        leaves[int(leaf)][split] = entry["count"]
    return dict(leaves)


def build_report(export_dir: str, config, tally: dict, leaf_ranks: list[str]) -> dict:
    """The report's facts, also the export part of summary.json; `leaf_ranks` has one rank per class."""
    leaves = per_leaf_split_counts(tally)
    selected = sum(sum(splits.values()) for splits in leaves.values())
    rejected = _counts(tally.get("photos_rejected", {}))
    few_eval = sorted(leaf for leaf, splits in leaves.items() if splits["eval"] < config.min_eval_photos_warning)
    return {
        "export_dir": export_dir,
        "num_classes": len(leaf_ranks),
        "leaves_by_rank": dict(collections.Counter(leaf_ranks)),
        "examples_per_split": {split: tally.get("examples", {}).get(split, {}).get("count", 0)
                               for split in features.SPLITS},
        "rows_read": {table: tally.get("rows_read", {}).get(table, {}).get("count", 0)
                      for table in ("taxa", "photos", "observations")},  # data lines, as the preview counts
        "rejected": {
            "rows": _counts(tally.get("rows_rejected", {})),
            "photos": rejected,
        },
        "rejected_examples": {"rows": _examples(tally.get("rows_rejected", {})),
                              "photos": _examples(tally.get("photos_rejected", {}))},
        "observations_not_counted": _counts(tally.get("observations_not_counted", {})),
        "observations_dropped": _counts(tally.get("observations_dropped", {})),
        "photos_dropped": _counts(tally.get("photos_dropped", {})),
        "photos_converted": sum(_counts(tally.get("photos_converted", {})).values()),
        "licenses": _counts(tally.get("license", {})),
        "photos_selected": selected,
        "photos_rejected": rejected,
        "photos_rejected_total": sum(rejected.values()),
        "rejected_photo_fraction": sum(rejected.values()) / selected if selected else 0.0,
        "leaves_with_few_eval_photos": few_eval,
        "photos_per_leaf": {str(leaf): splits for leaf, splits in sorted(leaves.items())},
    }


def write_report(summary: dict, out_dir: str) -> str:
    tf.io.gfile.makedirs(out_dir)
    path = os.path.join(out_dir, REPORT_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(summary, f, indent=2)
    return path


def read_report(report_dir: str) -> dict:
    with tf.io.gfile.GFile(os.path.join(report_dir, REPORT_FILE)) as f:
        return json.load(f)
