"""The gate's statistics on per-example correctness: top-k accuracy, the paired bootstrap interval and the
one-sided exact binomial test against chance.

Plain numpy and scipy. A rank is the 1-based position of the true taxon in a model's predictions, found by
taxon id so that releases with different class sets compare; 0, or anything past the model's top-k, is a
miss.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import stats


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


def binomial_p_above(successes: int, n: int, chance: float) -> float:
    """One-sided exact binomial test: the probability of `successes` or more right in `n` examples when each is
    right with probability `chance` (a model that learned nothing). Small: the model beats chance."""
    return float(stats.binomtest(int(successes), int(n), float(chance), alternative="greater").pvalue)


def wilson_interval(accuracy: float, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson score interval of an accuracy measured on `n` examples: (0, 1) for no examples. It stays
    inside [0, 1] and is honest on small slices (3 of 3 right is 0.44 to 1 at 95%), where the normal one is not."""
    if n <= 0:
        return 0.0, 1.0
    interval = stats.binomtest(round(accuracy * n), n).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)
