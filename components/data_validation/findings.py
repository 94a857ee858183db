"""The one shape every check reports in: a row of the validation report's tables."""
from __future__ import annotations

from typing import Iterable, Optional

TAXONOMY_SPLIT = "taxonomy"  # the `split` of findings about taxonomy.csv; `examples` then counts its rows


def finding(split: str, feature: str, type: str, short: str, description: str,  # noqa: A002 - the report's key
            examples: Optional[int] = None) -> dict:
    """`examples`: how many examples (or taxonomy rows) it concerns, where that is known."""
    return {"split": split, "feature": feature, "type": type, "short": short, "description": description,
            "examples": examples}


def is_downgraded(row: dict, warn_only: Iterable[str]) -> bool:
    """`validation.warn_only` names anomaly types or feature names."""
    return row["feature"] in warn_only or row["type"] in warn_only


def describe(row: dict) -> str:
    """One line that names the anomaly: split, feature, type, how many examples, what."""
    unit = "row(s)" if row["split"] == TAXONOMY_SPLIT else "example(s)"
    count = "" if row["examples"] is None else f", {row['examples']} {unit}"
    return f"[{row['split']}] {row['feature']} {row['type']}{count}: {row['short']} ({row['description'].strip()})"


def sample(values: Iterable, limit: int = 5) -> str:
    """The first few values, for a description."""
    values = list(values)
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(str(value) for value in values[:limit]) + more
