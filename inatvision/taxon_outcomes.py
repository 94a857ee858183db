"""The taxon outcomes: what the Evaluator's TaxonOutcomes metric writes and the release gate reads.

The metric counts one `OutcomeKey` per test example (examples with the same key share a count) and the
candidate's top-1 confusions; `encode` turns both into the metric's JSON value, `decode` reads it back. The
JSON names the key's fields, and `decode` refuses any other fields.
"""
from __future__ import annotations

import json
from typing import Iterable, Mapping, NamedTuple

NO_BASELINE_RANK = -1  # baseline_rank and baseline_vision_rank on a first release
COUNT = "count"


class OutcomeKey(NamedTuple):
    """One test example's outcome. A rank is the 1-based position of the true leaf taxon among a model's top
    taxon ids, 0 when absent; a vision-only rank is the model's served rank when it has no separate vision
    scores."""

    leaf_taxon_id: int
    iconic_taxon: str  # "" when the leaf has no iconic taxon
    leaf_rank: str
    leaf_train_photos: int
    candidate_rank: int  # the candidate's served scores (vision with the location prior)
    baseline_rank: int  # NO_BASELINE_RANK on a first release
    shared: bool  # the leaf is a leaf in both releases
    vision_rank: int  # the candidate's vision scores alone
    has_location: bool  # the example has usable coordinates
    baseline_vision_rank: int  # the baseline's vision scores alone; NO_BASELINE_RANK on a first release


FIELDS = [*OutcomeKey._fields, COUNT]


def encode(outcomes: Mapping[OutcomeKey, int], confusions: Iterable[tuple[int, int, int]]) -> str:
    """The metric's value: the field names, one row per key (its fields, then its count), the confusions
    (true taxon id, predicted top-1 taxon id, count)."""
    return json.dumps({
        "fields": FIELDS,
        "outcomes": [list(key) + [count] for key, count in sorted(outcomes.items())],
        "confusions": [list(confusion) for confusion in confusions],
    })


def decode(value: str | dict) -> tuple[list[tuple[OutcomeKey, int]], list[tuple[int, int, int]]]:
    """(key, count) rows and confusions of a metric value (its JSON text or the parsed dict)."""
    data = json.loads(value) if isinstance(value, str) else value
    if data.get("fields") != FIELDS:
        raise ValueError(f"taxon outcomes with fields {data.get('fields')}, expected {FIELDS}: "
                         "re-run the Evaluator")
    rows = [(OutcomeKey(*row[:-1]), int(row[-1])) for row in data["outcomes"]]
    return rows, [tuple(confusion) for confusion in data["confusions"]]
