"""Combining vision and geo scores and rolling them up the tree (docs: inat-recipe.md, sections 3 and 4).

One library for the served graph and the CLI: every scoring function is written in TensorFlow ops, so it
traces inside a tf.function and runs eagerly on numpy input. `TaxonTree` is plain Python over the rows of
`taxonomy.csv`; nodes keep the rows' order, leaves are indexed by `leaf_class_id`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import tensorflow as tf

MIN_GEO_SCORE = 0.005
COMMON_ANCESTOR_THRESHOLD = 0.78
GENUS_RANK_LEVEL = 20
NO_TAXON = -1


def combine(vision_probs, geo_scores, has_location, min_score: float = MIN_GEO_SCORE) -> tf.Tensor:
    """vision x max(geo, min_score), renormalized per row; rows without a location keep the vision scores."""
    vision = tf.cast(vision_probs, tf.float32)
    if geo_scores is None:
        return vision
    weighted = vision * tf.maximum(tf.cast(geo_scores, tf.float32), min_score)
    normalized = tf.math.divide_no_nan(weighted, tf.reduce_sum(weighted, axis=-1, keepdims=True))
    return tf.where(tf.cast(has_location, tf.bool)[:, None], normalized, vision)


def expected_nearby(geo_scores, thresholds) -> tf.Tensor:
    """bool [b, C]: a taxon is expected nearby where its geo score reaches its threshold."""
    return tf.cast(geo_scores, tf.float32) >= tf.cast(thresholds, tf.float32)[None, :]


@dataclass(frozen=True)
class TaxonTree:
    """The nodes of taxonomy.csv (leaves and their ancestors) and, per node, the leaves at or below it."""

    taxon_ids: tuple[int, ...]
    names: tuple[str, ...]
    rank_levels: tuple[float, ...]  # iNaturalist has fractional levels (subterclass 33.5)
    leaves_below: tuple[tuple[int, ...], ...]  # leaf_class_ids at or below each node
    num_leaves: int

    @classmethod
    def from_rows(cls, rows: list[dict]) -> "TaxonTree":
        """Rows as read by `taxonomy_file.read_rows`; every row is a node, a leaf counts toward itself."""
        index = {int(row["taxon_id"]): position for position, row in enumerate(rows)}
        leaves_below: list[list[int]] = [[] for _ in rows]
        leaf_ids = sorted(int(row["leaf_class_id"]) for row in rows if row["leaf_class_id"] != "")
        if leaf_ids != list(range(len(leaf_ids))):
            raise ValueError(f"leaf_class_id is not dense 0..{len(leaf_ids) - 1}")
        for row in rows:
            if row["leaf_class_id"] != "":
                for node in _self_and_ancestors(int(row["taxon_id"]), rows, index):
                    leaves_below[node].append(int(row["leaf_class_id"]))
        return cls(
            taxon_ids=tuple(int(row["taxon_id"]) for row in rows),
            names=tuple(row["name"] for row in rows),
            rank_levels=tuple(float(row["rank_level"]) for row in rows),
            leaves_below=tuple(tuple(sorted(leaves)) for leaves in leaves_below),
            num_leaves=len(leaf_ids),
        )

    @property
    def num_nodes(self) -> int:
        return len(self.taxon_ids)


def _self_and_ancestors(taxon_id: int, rows: list[dict], index: dict[int, int]) -> list[int]:
    """Row positions from the taxon up to the topmost ancestor present in the rows."""
    path: list[int] = []
    while taxon_id in index:
        node = index[taxon_id]
        if node in path:
            raise ValueError(f"taxonomy has a cycle through taxon {taxon_id}")
        path.append(node)
        parent = rows[node]["parent_taxon_id"]
        taxon_id = int(parent) if parent != "" else None
    return path


def ancestor_matrix(tree: TaxonTree) -> tf.SparseTensor:
    """Sparse [C, N]: 1 where leaf c is at or below node n (sparse: a dense one would not fit iNat's tree)."""
    pairs = sorted((leaf, node) for node, leaves in enumerate(tree.leaves_below) for leaf in leaves)
    indices = np.array(pairs, np.int64).reshape(-1, 2)
    return tf.SparseTensor(indices, tf.ones([len(pairs)], tf.float32), [tree.num_leaves, tree.num_nodes])


def roll_up(leaf_scores, ancestor_matrix: tf.SparseTensor) -> tf.Tensor:
    """[b, N]: each node's score is the sum of the scores of the leaves at or below it."""
    scores = tf.cast(leaf_scores, tf.float32)
    return tf.transpose(tf.sparse.sparse_dense_matmul(ancestor_matrix, scores, adjoint_a=True, adjoint_b=True))


class CommonAncestor(NamedTuple):
    taxon_id: tf.Tensor  # int64 [b], NO_TAXON where no node qualifies
    score: tf.Tensor  # float32 [b], the node's summed score (0 where none)


def common_ancestor(leaf_scores, tree: TaxonTree, threshold: float = COMMON_ANCESTOR_THRESHOLD,
                    min_rank_level: int = GENUS_RANK_LEVEL) -> CommonAncestor:
    """The most specific node at `min_rank_level` or above whose summed score exceeds `threshold`."""
    rolled = roll_up(leaf_scores, ancestor_matrix(tree))
    rank_levels = tf.constant(tree.rank_levels, tf.float32)
    eligible = (rolled > threshold) & (rank_levels >= min_rank_level)[None, :]
    lowest_rank = tf.reduce_min(tf.where(eligible, rank_levels, np.inf), axis=1, keepdims=True)
    most_specific = eligible & (rank_levels == lowest_rank)
    chosen = tf.argmax(tf.where(most_specific, rolled, -1.0), axis=1)
    found = tf.reduce_any(eligible, axis=1)
    taxon_id = tf.where(found, tf.gather(tf.constant(tree.taxon_ids, tf.int64), chosen), NO_TAXON)
    score = tf.where(found, tf.gather(rolled, chosen, batch_dims=1), 0.0)
    return CommonAncestor(taxon_id, score)
