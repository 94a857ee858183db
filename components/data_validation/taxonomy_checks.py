"""Checks of `taxonomy.csv` (inatvision.taxonomy): its JSON schema, then the rules between rows.

The file is read as text through its owner (`inatvision.taxonomy.read_table`), since a broken one is to be
reported, not refused. Every check returns findings (see findings.py) with `split="taxonomy"`; an empty list
means sound.
"""
from __future__ import annotations

import collections
import json
import os
from typing import Iterable, Mapping, Optional

import jsonschema

from inatvision.components.data_validation.findings import TAXONOMY_SPLIT, finding, sample
from inatvision.taxonomy import read_table

TAXONOMY_SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "schemas", "taxonomy_schema.json")


def load_taxonomy_schema(path: str = TAXONOMY_SCHEMA) -> dict:
    with open(path) as f:
        return json.load(f)


def _typed_cell(text: Optional[str], types: list[str]):
    """Empty -> None; a number where the schema wants one and the text is one; else the text (the schema rejects it)."""
    if text is None or text == "":
        return None
    for name, parse in (("integer", int), ("number", float)):
        if name in types:
            try:
                return parse(text)
            except ValueError:
                return text
    return text


def typed_rows(raw_rows: list[dict[str, str]], schema: dict) -> list[dict]:
    """Rows with cells typed as the schema declares them."""
    declared = {column: spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
                for column, spec in schema["properties"].items()}
    return [{column: _typed_cell(row.get(column), declared.get(column, ["string"])) for column in row}
            for row in raw_rows]


def column_problems(header: list[str], schema: dict) -> list[dict]:
    """The header must list the schema's columns in its order."""
    expected = list(schema["properties"])
    if header == expected:
        return []
    return [finding(TAXONOMY_SPLIT, "header", "TAXONOMY_COLUMNS", "Wrong columns",
                    f"expected {','.join(expected)}, got {','.join(header)}")]


def schema_problems(rows: list[dict], schema: dict) -> tuple[list[dict], list[dict]]:
    """(rows that satisfy the schema, one finding per column and rule that rows break)."""
    validator = jsonschema.Draft202012Validator(schema)
    broken: dict[tuple[str, str], list] = collections.defaultdict(list)
    valid = []
    for line, row in enumerate(rows, start=2):
        errors = list(validator.iter_errors(row))
        for error in errors:
            column = error.path[0] if error.path else "row"
            broken[(column, error.validator)].append(f"line {line}: {error.message}")
        if not errors:
            valid.append(row)
    problems = [finding(TAXONOMY_SPLIT, column, "TAXONOMY_SCHEMA_VIOLATION", f"Breaks the schema's `{rule}`",
                        sample(messages, 3), len(messages))
                for (column, rule), messages in sorted(broken.items())]
    return valid, problems


def taxon_id_problems(rows: list[dict]) -> list[dict]:
    """Taxon ids are unique and the rows ordered by them."""
    ids = [row["taxon_id"] for row in rows]
    problems = []
    repeated = sorted(taxon for taxon, count in collections.Counter(ids).items() if count > 1)
    if repeated:
        problems.append(finding(TAXONOMY_SPLIT, "taxon_id", "TAXONOMY_DUPLICATE_TAXON", "Repeated taxon ids",
                                f"taxon ids on more than one row: {sample(repeated)}", len(repeated)))
    if ids != sorted(ids):
        problems.append(finding(TAXONOMY_SPLIT, "taxon_id", "TAXONOMY_UNORDERED", "Rows not ordered by taxon_id",
                                "docs/contract.md orders taxonomy.csv by taxon_id"))
    return problems


def leaf_rows(rows: Iterable[dict]) -> list[dict]:
    return [row for row in rows if row["leaf_class_id"] is not None]


def _missing_ancestor(taxon_id: int, parents: Mapping[int, Optional[int]]) -> Optional[str]:
    """Why `taxon_id` has no chain of rows up to a root (a row with no parent), or None."""
    seen = set()
    node = taxon_id
    while parents[node] is not None:
        seen.add(node)
        node = parents[node]
        if node not in parents:
            return f"{taxon_id} (ancestor {node} has no row)"
        if node in seen:
            return f"{taxon_id} (cycle through {node})"
    return None


def parent_chain_problems(rows: list[dict]) -> list[dict]:
    """Every leaf reaches a root through rows of the file."""
    parents = {row["taxon_id"]: row["parent_taxon_id"] for row in rows}
    broken = [why for why in (_missing_ancestor(row["taxon_id"], parents) for row in leaf_rows(rows)) if why]
    if not broken:
        return []
    return [finding(TAXONOMY_SPLIT, "parent_taxon_id", "TAXONOMY_BROKEN_PARENT_CHAIN", "Leaves without a root",
                    f"leaves whose parent chain does not reach a root: {sample(broken)}", len(broken))]


def class_id_problems(rows: list[dict]) -> list[dict]:
    """`leaf_class_id` unique and dense 0..leaves-1, in the leaves' taxon id order."""
    class_ids = [row["leaf_class_id"] for row in leaf_rows(rows)]
    repeated = sorted(index for index, count in collections.Counter(class_ids).items() if count > 1)
    missing = sorted(set(range(len(class_ids))) - set(class_ids))
    problems = []
    if repeated:
        problems.append(finding(TAXONOMY_SPLIT, "leaf_class_id", "TAXONOMY_DUPLICATE_CLASS_ID",
                                "Class ids on more than one leaf", f"repeated: {sample(repeated)}", len(repeated)))
    if missing:
        problems.append(finding(TAXONOMY_SPLIT, "leaf_class_id", "TAXONOMY_CLASS_ID_NOT_DENSE", "Class ids not dense",
                                f"{len(class_ids)} leaves but no leaf has class id {sample(missing)}", len(missing)))
    in_taxon_order = [row["leaf_class_id"] for row in sorted(leaf_rows(rows), key=lambda row: row["taxon_id"])]
    if not problems and in_taxon_order != list(range(len(class_ids))):
        problems.append(finding(TAXONOMY_SPLIT, "leaf_class_id", "TAXONOMY_CLASS_ID_ORDER",
                                "Class ids not in taxon id order", "docs/contract.md numbers leaves by their taxon_id"))
    return problems


def inner_class_id_problems(rows: list[dict]) -> list[dict]:
    """No inner node (the parent of another row) has a class id."""
    parents = {row["parent_taxon_id"] for row in rows}
    inner = [row["taxon_id"] for row in leaf_rows(rows) if row["taxon_id"] in parents]
    if not inner:
        return []
    return [finding(TAXONOMY_SPLIT, "leaf_class_id", "TAXONOMY_INNER_NODE_CLASS_ID", "Inner nodes with a class id",
                    f"taxa with rows below them and a leaf_class_id: {sample(inner)}", len(inner))]


def check_taxonomy(path: str, schema: Optional[dict] = None) -> tuple[list[dict], list[dict]]:
    """(the rows that satisfy the schema, every problem found)."""
    schema = schema or load_taxonomy_schema()
    header, raw_rows = read_table(path)
    problems = column_problems(header, schema)
    if problems:
        return [], problems
    rows, problems = schema_problems(typed_rows(raw_rows, schema), schema)
    for check in (taxon_id_problems, parent_chain_problems, class_id_problems, inner_class_id_problems):
        problems += check(rows)
    return rows, problems


def unknown_leaf_problems(observed: Mapping[str, Mapping[int, int]], leaves: set[int]) -> list[dict]:
    """Every example's `leaf_taxon_id` names a leaf of taxonomy.csv (`observed`: split -> taxon id -> examples)."""
    problems = []
    for split, counts in observed.items():
        unknown = {taxon: count for taxon, count in counts.items() if taxon not in leaves}
        if unknown:
            problems.append(finding(split, "leaf_taxon_id", "UNKNOWN_LEAF_TAXON", "Examples of taxa that are no leaf",
                                    f"leaf_taxon_id values not among taxonomy.csv's leaves: {sample(sorted(unknown))}",
                                    sum(unknown.values())))
    return problems
