"""Reading the run's `taxonomy.csv` (contract layout): every stage takes its classes from it."""
from __future__ import annotations

import csv

import tensorflow as tf


def read_rows(path: str) -> list[dict]:
    with tf.io.gfile.GFile(path) as f:
        return list(csv.DictReader(f))


def leaf_taxa(path: str) -> tuple[list[int], list[str]]:
    """Leaf taxon ids and names ordered by `leaf_class_id` (the classifier's output order)."""
    leaves = sorted((int(row["leaf_class_id"]), int(row["taxon_id"]), row["name"])
                    for row in read_rows(path) if row["leaf_class_id"] != "")
    if [index for index, _, _ in leaves] != list(range(len(leaves))):
        raise ValueError(f"{path}: leaf_class_id is not dense 0..{len(leaves) - 1}")
    return [taxon for _, taxon, _ in leaves], [name for _, _, name in leaves]
