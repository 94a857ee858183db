"""The run's `taxonomy.csv`: its one owner. Every stage takes its classes from it.

This module owns the file's names (`TAXONOMY_FILE` in the Taxonomy artifact and at a release's root,
`MODEL_TAXONOMY_FILE` inside every exported SavedModel), its columns, the bytes the export writes, the one
reader (`read_taxonomy`, giving a `TaxonTree` of typed `TaxonRow`s), the leaf order (`leaf_class_id` dense
0..n-1 is the classifier's output order), `num_classes`, iNaturalist's rank levels, and the roll-up structure
(the leaves at or below each node) that the served common ancestor sums over (TensorFlow ops in
`components.geo_prior.scoring`).

Layout (docs/contract.md, `taxonomy.csv`): one row per leaf and per ancestor of a leaf but Life, ordered by
`taxon_id`; `parent_taxon_id` is empty at the top; `leaf_class_id` (and `spatial_class_id`, the same index)
only on leaves, numbered in taxon id order; `iconic_class_id` is the index in `features.ICONIC_TAXA`. Cells:
empty for none, integral numbers without `.0`, `\\n` line endings. ExportExamples counts `num_classes` once,
with this reader, and carries it on the Taxonomy artifact (`inatvision.artifacts.num_classes`) to the stages
that need only the count.

Importing it is cheap: TensorFlow is imported only to open a remote (`gs://`) path.
"""
from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Optional, Sequence

TAXONOMY_FILE = "taxonomy.csv"  # in a Taxonomy artifact's folder and at a release's root
MODEL_TAXONOMY_FILE = "assets/taxonomy.csv"  # inside each exported SavedModel (vision, geo, composed serving)

LIFE_TAXON_ID = 48460  # iNaturalist's root; never a row of taxonomy.csv
# iNaturalist's rank levels (Taxon::RANK_LEVELS); a taxon's own rank_level always wins.
RANK_LEVELS = {
    "stateofmatter": 100, "kingdom": 70, "subkingdom": 67, "phylum": 60, "subphylum": 57,
    "superclass": 53, "class": 50, "subclass": 47, "infraclass": 45, "subterclass": 44,
    "superorder": 43, "order": 40, "suborder": 37, "infraorder": 35, "parvorder": 34.5,
    "zoosection": 34, "zoosubsection": 33.5, "superfamily": 33, "epifamily": 32, "family": 30,
    "subfamily": 27, "supertribe": 26, "tribe": 25, "subtribe": 24, "genus": 20, "genushybrid": 20,
    "subgenus": 15, "section": 13, "subsection": 12, "complex": 11, "species": 10, "hybrid": 10,
    "subspecies": 5, "variety": 5, "form": 5, "infrahybrid": 5,
}
SPECIES_LEVEL = float(RANK_LEVELS["species"])
GENUS_LEVEL = float(RANK_LEVELS["genus"])  # the served common ancestor is at genus or above


class TaxonomyError(ValueError):
    """A taxonomy.csv that breaks the layout; the message names the file."""


class TaxonRow(NamedTuple):
    """One row of taxonomy.csv, typed; the fields are the file's columns in order (None: an empty cell)."""

    parent_taxon_id: Optional[int]
    taxon_id: int
    rank_level: float  # iNaturalist has fractional levels (zoosubsection 33.5)
    leaf_class_id: Optional[int]
    iconic_class_id: Optional[int]
    spatial_class_id: Optional[int]
    name: str
    rank: str

    @property
    def is_leaf(self) -> bool:
        return self.leaf_class_id is not None


COLUMNS = TaxonRow._fields
_OPTIONAL_INT = ("parent_taxon_id", "leaf_class_id", "iconic_class_id", "spatial_class_id")


@dataclass(frozen=True)
class TaxonTree:
    """The rows of one taxonomy.csv (every row a node, in file order) and its leaves in `leaf_class_id` order.

    Construction checks that `leaf_class_id` is dense 0..n-1; `source` names the file in messages.
    """

    rows: tuple[TaxonRow, ...]
    source: str = TAXONOMY_FILE

    def __post_init__(self):
        class_ids = sorted(row.leaf_class_id for row in self.rows if row.is_leaf)
        if class_ids != list(range(len(class_ids))):
            raise TaxonomyError(f"{self.source}: leaf_class_id is not dense 0..{len(class_ids) - 1}")

    @functools.cached_property
    def leaves(self) -> tuple[TaxonRow, ...]:
        """The leaf rows by `leaf_class_id`: the classifier's output order."""
        return tuple(sorted((row for row in self.rows if row.is_leaf), key=lambda row: row.leaf_class_id))

    @property
    def num_classes(self) -> int:
        return len(self.leaves)

    @property
    def leaf_taxon_ids(self) -> list[int]:
        return [row.taxon_id for row in self.leaves]

    @property
    def leaf_names(self) -> list[str]:
        return [row.name for row in self.leaves]

    @property
    def num_nodes(self) -> int:
        return len(self.rows)

    @property
    def taxon_ids(self) -> tuple[int, ...]:
        return tuple(row.taxon_id for row in self.rows)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(row.name for row in self.rows)

    @property
    def rank_levels(self) -> tuple[float, ...]:
        return tuple(row.rank_level for row in self.rows)

    @functools.cached_property
    def leaves_below(self) -> tuple[tuple[int, ...], ...]:
        """Per node, the `leaf_class_id`s at or below it (a leaf counts toward itself): what a roll-up sums."""
        index = {row.taxon_id: position for position, row in enumerate(self.rows)}
        below: list[list[int]] = [[] for _ in self.rows]
        for row in self.leaves:
            for node in self._self_and_ancestors(row.taxon_id, index):
                below[node].append(row.leaf_class_id)
        return tuple(tuple(sorted(leaves)) for leaves in below)

    def leaf_node_pairs(self) -> list[tuple[int, int]]:
        """Sorted (leaf_class_id, node position) pairs, one per leaf and node at or above it."""
        return sorted((leaf, node) for node, leaves in enumerate(self.leaves_below) for leaf in leaves)

    def _self_and_ancestors(self, taxon_id: Optional[int], index: dict[int, int]) -> list[int]:
        """Row positions from the taxon up to the topmost ancestor present in the rows."""
        path: list[int] = []
        while taxon_id in index:
            node = index[taxon_id]
            if node in path:
                raise TaxonomyError(f"{self.source}: taxonomy has a cycle through taxon {taxon_id}")
            path.append(node)
            taxon_id = self.rows[node].parent_taxon_id
        return path


def read_table(path: str) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows as text, unchecked (the ValidationGate's checks report what is wrong)."""
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def read_taxonomy(path: str) -> TaxonTree:
    """The one reader of taxonomy.csv: typed rows, the columns and the leaf order checked."""
    header, cells = read_table(path)
    if tuple(header) != COLUMNS:
        raise TaxonomyError(f"{path}: expected columns {','.join(COLUMNS)}, got {header}")
    return TaxonTree(tuple(_typed_row(path, line, row) for line, row in enumerate(cells, start=2)), source=path)


def _typed_row(path: str, line: int, cells: dict[str, str]) -> TaxonRow:
    try:
        typed = {column: int(cells[column]) if cells[column] != "" else None for column in _OPTIONAL_INT}
        return TaxonRow(taxon_id=int(cells["taxon_id"]), rank_level=float(cells["rank_level"]), name=cells["name"],
                        rank=cells["rank"], **typed)
    except (TypeError, ValueError) as error:  # TypeError: a short row's missing cells are None
        raise TaxonomyError(f"{path}: line {line}: {error}") from None


def write_taxonomy(rows: Iterable[TaxonRow], path: str) -> None:
    """Writes taxonomy.csv in the contract's bytes (see `csv_text`)."""
    with _open_text(path, "w") as f:
        f.write(csv_text(COLUMNS, rows))


def csv_text(columns: Sequence[str], rows: Iterable[Sequence]) -> str:
    """Deterministic bytes: `\\n` line endings, empty cells for None, integral floats without `.0`.

    `rows` hold one value per column, in the columns' order (a `TaxonRow` is one).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _open_text(path: str, mode: str = "r"):
    """Local files with the standard library, remote ones (`gs://`) with tf.io.gfile."""
    if "://" in path:
        import tensorflow as tf  # only for remote paths: reading a local taxonomy loads no TensorFlow
        return tf.io.gfile.GFile(path, mode)
    return open(path, mode, encoding="utf-8", newline="")
