"""`inatvision export-preview`: the leaf model of an export without reading a photo.

Streams taxa.csv, then photos.csv (keeping only the uuids of observations with an allowed photo), then
observations.csv (keeping only per-taxon counts), applies the same rules as the Beam stage and writes
`taxonomy.csv` and `taxa_report.csv`.
"""
from __future__ import annotations

import collections
import dataclasses
import os
from typing import Callable, Iterator, Union

from components.export_examples import rules
from components.export_examples.tables import (
    OBSERVATIONS, PHOTOS, REQUIRED_COLUMNS, TAXA, Rejection, check_columns, find_table, iter_rows, make_dirs,
    parse_observation, parse_photo, parse_taxon, read_header,
)
from components.export_examples.taxonomy import Taxonomy

MAX_EXAMPLE_LINES = 5


@dataclasses.dataclass
class RejectionTally:
    """Rejected rows by reason, with the first few `file:line` of each."""

    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: dict = dataclasses.field(default_factory=dict)

    def add(self, rejection: Rejection) -> None:
        self.counts[rejection.reason] += 1
        lines = self.examples.setdefault(rejection.reason, [])
        if len(lines) < MAX_EXAMPLE_LINES:
            lines.append(f"{rejection.file}:{rejection.line}")


def run_preview(export_dir: str, out_dir: str, export_config) -> dict:
    """Writes `taxonomy.csv` and `taxa_report.csv` to `out_dir`; returns the summary (`export_config` is an
    ExportConfig). Raises InputError when a table or a required column is missing."""
    tally = RejectionTally()
    taxonomy, taxa_read = _read_taxonomy(export_dir, tally)
    allowed = rules.allowed_licenses(export_config.licenses)
    with_allowed_photo, photo_drops, photos_read = _observations_with_allowed_photo(export_dir, allowed, tally)
    counts, not_counted, observations_read = _count_observations(export_dir, taxonomy, with_allowed_photo, tally)
    del with_allowed_photo
    model = rules.build_leaf_model(taxonomy, counts, export_config.min_observations,
                                   export_config.min_research_grade, export_config.max_leaf_rank)
    make_dirs(out_dir)
    taxonomy_csv = os.path.join(out_dir, "taxonomy.csv")
    taxa_report_csv = os.path.join(out_dir, "taxa_report.csv")
    rules.write_taxonomy_csv(rules.taxonomy_rows(model), taxonomy_csv)
    rules.write_taxa_report_csv(rules.taxa_report_rows(model), taxa_report_csv)
    return {
        "export": export_dir,
        "num_classes": model.num_classes,
        "leaves_by_rank": dict(collections.Counter(taxonomy.taxa[leaf].rank for leaf in model.leaf_class_ids)),
        "rows_read": {"taxa": taxa_read, "photos": photos_read, "observations": observations_read},
        "rejected": dict(tally.counts),
        "rejected_examples": tally.examples,
        "photos_not_allowed": dict(photo_drops),
        "observations_not_counted": dict(not_counted),
        "counted_observations": _counted_by_fate(model, counts),
        "taxonomy_csv": taxonomy_csv,
        "taxa_report_csv": taxa_report_csv,
    }


def _parsed_rows(export_dir: str, name: str, parse: Callable) -> Iterator[tuple[int, Union[object, Rejection]]]:
    path = find_table(export_dir, name)
    header_index = check_columns(path, read_header(path), REQUIRED_COLUMNS[name])
    for line_no, fields in iter_rows(path):
        yield line_no, parse(fields, header_index, line_no)


def _read_taxonomy(export_dir: str, tally: RejectionTally) -> tuple[Taxonomy, int]:
    taxa, lines = [], {}
    rows = 0
    for line_no, parsed in _parsed_rows(export_dir, TAXA, parse_taxon):
        rows += 1
        if isinstance(parsed, Rejection):
            tally.add(parsed)
        else:
            taxa.append(parsed)
            lines.setdefault(parsed.taxon_id, line_no)
    taxonomy, rejections = Taxonomy.from_taxa(taxa, lines)
    for rejection in rejections:
        tally.add(rejection)
    return taxonomy, rows


def _observations_with_allowed_photo(export_dir: str, allowed: frozenset[str], tally: RejectionTally
                                     ) -> tuple[set[str], collections.Counter, int]:
    """The uuids of observations with at least one photo under an allowed licence."""
    with_allowed_photo: set[str] = set()
    drops: collections.Counter = collections.Counter()
    rows = 0
    for _, photo in _parsed_rows(export_dir, PHOTOS, parse_photo):
        rows += 1
        if isinstance(photo, Rejection):
            tally.add(photo)
            continue
        reason = rules.license_drop_reason(photo.license, allowed)
        if reason is None:
            with_allowed_photo.add(photo.observation_uuid)
        else:
            drops[reason] += 1
    return with_allowed_photo, drops, rows


def _count_observations(export_dir: str, taxonomy: Taxonomy, with_allowed_photo: set[str], tally: RejectionTally
                        ) -> tuple[dict[int, tuple[int, int]], collections.Counter, int]:
    """Per observed taxon (observations, research grade) that count toward the cut-off."""
    counts: dict[int, tuple[int, int]] = {}
    not_counted: collections.Counter = collections.Counter()
    rows = 0
    for line_no, observation in _parsed_rows(export_dir, OBSERVATIONS, parse_observation):
        rows += 1
        if not isinstance(observation, Rejection):
            rejection = rules.observation_rejection(observation, line_no, taxonomy)
        else:
            rejection = observation
        if rejection is not None:
            tally.add(rejection)
            continue
        counted = rules.count_observation(observation, observation.uuid in with_allowed_photo)
        if isinstance(counted, str):
            not_counted[counted] += 1
        else:
            rules.add_counts(counts, *counted)
    return counts, not_counted, rows


def _counted_by_fate(model: rules.LeafModel, counts: dict[int, tuple[int, int]]) -> dict[str, int]:
    """Counted observations by where they end: in a leaf, or dropped (inner_node, below_cutoff, ...)."""
    fates: collections.Counter = collections.Counter()
    for taxon_id, (observations, _) in counts.items():
        fates[model.drop_reason(taxon_id) or "leaf"] += observations
    return dict(fates)
