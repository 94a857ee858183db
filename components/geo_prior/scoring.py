"""Combining vision and geo scores and rolling them up the tree (docs/recipe.md, sections 3 and 4).

One library for the served graph and the CLI: every scoring function is written in TensorFlow ops, so it
traces inside a tf.function and runs eagerly on numpy input. The tree they roll up is
`inatvision.taxonomy.TaxonTree` (plain Python over the rows of `taxonomy.csv`: nodes keep the rows' order,
leaves are indexed by `leaf_class_id`, and it knows the leaves at or below each node).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from inatvision.taxonomy import GENUS_LEVEL, TaxonTree

MIN_GEO_SCORE = 0.005
COMMON_ANCESTOR_THRESHOLD = 0.78
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


def ancestor_matrix(tree: TaxonTree) -> tf.SparseTensor:
    """Sparse [C, N]: 1 where leaf c is at or below node n (sparse: a dense one would not fit iNat's tree)."""
    pairs = tree.leaf_node_pairs()
    indices = np.array(pairs, np.int64).reshape(-1, 2)
    return tf.SparseTensor(indices, tf.ones([len(pairs)], tf.float32), [tree.num_classes, tree.num_nodes])


def roll_up(leaf_scores, ancestor_matrix: tf.SparseTensor) -> tf.Tensor:
    """[b, N]: each node's score is the sum of the scores of the leaves at or below it."""
    scores = tf.cast(leaf_scores, tf.float32)
    return tf.transpose(tf.sparse.sparse_dense_matmul(ancestor_matrix, scores, adjoint_a=True, adjoint_b=True))


class CommonAncestor(NamedTuple):
    taxon_id: tf.Tensor  # int64 [b], NO_TAXON where no node qualifies
    score: tf.Tensor  # float32 [b], the node's summed score (0 where none)


def common_ancestor(leaf_scores, tree: TaxonTree, threshold: float = COMMON_ANCESTOR_THRESHOLD,
                    min_rank_level: float = GENUS_LEVEL) -> CommonAncestor:
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
