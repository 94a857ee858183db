"""`inatvision export-preview`: the leaf model of an export without reading a photo.

Streams taxa.csv, then photos.csv (keeping only the uuids of the observations photos name, and which have an
allowed photo), then observations.csv (keeping only per-taxon counts), applies the same rules as the Beam stage
and writes `taxonomy.csv` and `taxa_report.csv`. Photo rows whose observation has no row in observations.csv
are counted (`no_observation`) by a second read of photos.csv, only when there are some.
"""
from __future__ import annotations

import collections
import dataclasses
import os
from typing import Callable, Iterator, Union

from inatvision.components.export_examples import rules
from inatvision.components.export_examples.tables import (
    OBSERVATIONS, PHOTOS, REQUIRED_COLUMNS, TAXA, Rejection, check_columns, find_table, iter_rows, make_dirs,
    parse_observation, parse_photo, parse_taxon, read_header, row_observation_uuid,
)
from inatvision.components.export_examples.taxonomy import Taxonomy
from inatvision.taxonomy import TAXONOMY_FILE, write_taxonomy

MAX_EXAMPLE_LINES = 5
# Flags per observation uuid that photos.csv names: one of its photos has an allowed licence; observations.csv
# has a row for it (rejected or not).
_ALLOWED_PHOTO, _HAS_ROW = 1, 2


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
    photo_observations, photo_drops, photos_read = _observations_with_allowed_photo(export_dir, allowed, tally)
    counts, not_counted, observations_read = _count_observations(export_dir, taxonomy, photo_observations, tally)
    _count_orphan_photos(export_dir, {uuid for uuid, flags in photo_observations.items() if not flags & _HAS_ROW},
                         tally)
    del photo_observations
    model = rules.build_leaf_model(taxonomy, counts, export_config.min_observations,
                                   export_config.min_research_grade, export_config.max_leaf_rank)
    make_dirs(out_dir)
    taxonomy_csv = os.path.join(out_dir, TAXONOMY_FILE)
    taxa_report_csv = os.path.join(out_dir, "taxa_report.csv")
    write_taxonomy(rules.taxonomy_rows(model), taxonomy_csv)
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


def _parsed_rows(export_dir: str, name: str, parse: Callable
                 ) -> Iterator[tuple[int, Union[object, Rejection], list[str], dict[str, int]]]:
    """(line, parsed row or Rejection, the row's fields, the header's column index) of every row."""
    path = find_table(export_dir, name)
    header_index = check_columns(path, read_header(path), REQUIRED_COLUMNS[name])
    for line_no, fields in iter_rows(path):
        yield line_no, parse(fields, header_index, line_no), fields, header_index


def _read_taxonomy(export_dir: str, tally: RejectionTally) -> tuple[Taxonomy, int]:
    taxa, lines = [], {}
    rows = 0
    for line_no, parsed, _, _ in _parsed_rows(export_dir, TAXA, parse_taxon):
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
                                     ) -> tuple[dict[str, int], collections.Counter, int]:
    """The uuid of every observation a photo row names, flagged `_ALLOWED_PHOTO` when one of its photos has an
    allowed licence."""
    photo_observations: dict[str, int] = {}
    drops: collections.Counter = collections.Counter()
    rows = 0
    for _, photo, _, _ in _parsed_rows(export_dir, PHOTOS, parse_photo):
        rows += 1
        if isinstance(photo, Rejection):
            tally.add(photo)
            continue
        reason = rules.license_drop_reason(photo.license, allowed)
        if reason is None:
            photo_observations[photo.observation_uuid] = _ALLOWED_PHOTO
        else:
            photo_observations.setdefault(photo.observation_uuid, 0)
            drops[reason] += 1
    return photo_observations, drops, rows


def _count_observations(export_dir: str, taxonomy: Taxonomy, photo_observations: dict[str, int],
                        tally: RejectionTally) -> tuple[dict[int, tuple[int, int]], collections.Counter, int]:
    """Per observed taxon (observations, research grade) that count toward the cut-off; flags `_HAS_ROW` in
    `photo_observations` for every row's uuid, rejected rows' too."""
    counts: dict[int, tuple[int, int]] = {}
    not_counted: collections.Counter = collections.Counter()
    rows = 0
    for line_no, observation, fields, header_index in _parsed_rows(export_dir, OBSERVATIONS, parse_observation):
        rows += 1
        uuid = row_observation_uuid(fields, header_index)
        flags = photo_observations.get(uuid)
        if flags is not None:
            photo_observations[uuid] = flags | _HAS_ROW
        if not isinstance(observation, Rejection):
            rejection = rules.observation_rejection(observation, line_no, taxonomy)
        else:
            rejection = observation
        if rejection is not None:
            tally.add(rejection)
            continue
        counted = rules.count_observation(observation, bool((flags or 0) & _ALLOWED_PHOTO))
        if isinstance(counted, str):
            not_counted[counted] += 1
        else:
            rules.add_counts(counts, *counted)
    return counts, not_counted, rows


def _count_orphan_photos(export_dir: str, orphans: set[str], tally: RejectionTally) -> None:
    """Counts the photo rows naming an observation in `orphans` (none has a row in observations.csv), in file
    order; reads photos.csv again only when there are some."""
    if not orphans:
        return
    for line_no, photo, _, _ in _parsed_rows(export_dir, PHOTOS, parse_photo):
        if not isinstance(photo, Rejection) and photo.observation_uuid in orphans:
            tally.add(rules.orphan_photo_rejection(line_no))


def _counted_by_fate(model: rules.LeafModel, counts: dict[int, tuple[int, int]]) -> dict[str, int]:
    """Counted observations by where they end: in a leaf, or dropped (inner_node, below_cutoff, ...)."""
    fates: collections.Counter = collections.Counter()
    for taxon_id, (observations, _) in counts.items():
        fates[model.drop_reason(taxon_id) or "leaf"] += observations
    return dict(fates)
