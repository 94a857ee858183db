"""`inatvision convert-export`: an iNaturalist export-tool CSV to the Open Data layout.

The export tool gives each observation its taxon's id and the names of its ancestors at the main ranks
(`taxon_<rank>_name`), but no ancestor ids. The tree is rebuilt from those name paths: an ancestor keeps the
real id of an observation whose own taxon it is, and otherwise gets a stable id hashed from its rank and full
name path (`stable_taxon_id`), the same in every conversion. An observation's taxon at a rank the export has
no column for (complex, subgenus, section, epifamily, ...) becomes an "unranked" child of its deepest named
ancestor. The photo licence is the observation's (the export has no photo licence); blank means all rights
reserved.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import os
import re
from typing import Iterator, Optional

from inatvision.components.export_examples.tables import (
    InputError, check_columns, find_file, make_dirs, open_text, photo_path,
)
from inatvision.taxonomy import LIFE_TAXON_ID, RANK_LEVELS

RANK_COLUMNS = tuple(f"taxon_{rank}_name" for rank in (
    "kingdom", "phylum", "subphylum", "superclass", "class", "subclass", "superorder", "order", "suborder",
    "superfamily", "family", "subfamily", "supertribe", "tribe", "subtribe", "genus", "genushybrid", "species",
    "hybrid", "subspecies", "variety", "form"))
REQUIRED = ("uuid", "taxon_id", "scientific_name", "quality_grade", "image_url", "license")
ALL_RIGHTS_RESERVED = "all-rights-reserved"
UNRANKED = "unranked"
STABLE_ID_BASE = 10**12  # hashed ids live far above every real iNaturalist taxon id
STABLE_ID_SPAN = 10**15  # and below 2**53: collisions are negligible, ids stay exact as floats too
OBSERVATION_HEADER = ("observation_uuid\tobserver_id\tlatitude\tlongitude\tpositional_accuracy\ttaxon_id\t"
                      "quality_grade\tobserved_on\n")
PHOTO_HEADER = "photo_uuid\tphoto_id\tobservation_uuid\tobserver_id\textension\tlicense\twidth\theight\tposition\n"
TAXA_HEADER = "taxon_id\tancestry\trank_level\trank\tname\tactive\n"
PHOTO_URL = re.compile(r"/photos/(\d+)/[^/]*?(?:\.(\w+))?(?:\?.*)?$")

Path = tuple[tuple[str, str], ...]  # ((rank, name), ...) from the kingdom down


@dataclasses.dataclass(frozen=True)
class _TaxonNode:
    taxon_id: int
    rank: str
    rank_level: float
    name: str
    parent_path: Path  # the name path of its parent; () under Life


def convert_export_tool_csv(csv_path: str, photos_dir: Optional[str], out_dir: str) -> dict:
    """Writes observations.csv, photos.csv, taxa.csv (and photos/<id>/medium.<ext> copied from `photos_dir`
    when given) to `out_dir`; returns what was written and the rows skipped, by reason."""
    ranked, unranked = _taxon_nodes(csv_path)
    make_dirs(out_dir)
    report = _write_observations_and_photos(csv_path, photos_dir, out_dir)
    _write_taxa(ranked, unranked, os.path.join(out_dir, "taxa.csv"))
    report["taxa"] = len(ranked) + len(unranked) + 1  # with Life
    return report


def stable_taxon_id(path: Path) -> int:
    """An id for a taxon the export names but does not number: a hash of its rank and full name path."""
    text = "/".join(f"{rank}:{name}" for rank, name in path)
    digest = hashlib.sha256(text.encode()).digest()
    return STABLE_ID_BASE + int.from_bytes(digest[:8], "big") % STABLE_ID_SPAN


def _rows(csv_path: str) -> Iterator[dict]:
    with open_text(csv_path) as f:
        reader = csv.DictReader(f)
        check_columns(csv_path, [name.lstrip("\ufeff") for name in reader.fieldnames or []], REQUIRED)
        for row in reader:
            yield {key.lstrip("\ufeff"): (value or "").strip() for key, value in row.items() if key}


def _name_path(row: dict) -> Path:
    return tuple((column[len("taxon_"):-len("_name")], row[column]) for column in RANK_COLUMNS if row.get(column))


def _taxon_nodes(csv_path: str) -> tuple[dict[Path, _TaxonNode], list[_TaxonNode]]:
    """The ranked taxa by name path, and the taxa at ranks without a column (each under its deepest named
    ancestor). A ranked taxon keeps the real id of the observations whose own taxon it is (the lowest when
    several claim one path: the others nest under it)."""
    claims: dict[Path, set[int]] = collections.defaultdict(set)
    unranked: dict[int, tuple[str, Path]] = {}  # taxon id -> (name, parent path)
    paths: set[Path] = set()
    seen_uuids: set[str] = set()
    for row in _rows(csv_path):
        if _skip_reason(row, seen_uuids):
            continue
        seen_uuids.add(row["uuid"])
        path = _name_path(row)
        paths.update(path[:depth] for depth in range(1, len(path) + 1))
        if path and path[-1][1] == row["scientific_name"]:
            claims[path].add(int(row["taxon_id"]))
        else:
            unranked[int(row["taxon_id"])] = (row["scientific_name"], path)
    ranked = {}
    for path in sorted(paths):
        ids = sorted(claims.get(path, ()))
        ranked[path] = _TaxonNode(ids[0] if ids else stable_taxon_id(path), path[-1][0], RANK_LEVELS[path[-1][0]],
                                  path[-1][1], path[:-1])
        unranked.update((taxon_id, (path[-1][1], path)) for taxon_id in ids[1:])
    nested = [_TaxonNode(taxon_id, UNRANKED, _level(ranked, parent_path) - 1, name, parent_path)
              for taxon_id, (name, parent_path) in sorted(unranked.items())]
    _check_unique_ids([*ranked.values(), *nested])
    return ranked, nested


def _level(ranked: dict[Path, _TaxonNode], path: Path) -> float:
    return ranked[path].rank_level if path else RANK_LEVELS["stateofmatter"]


def _check_unique_ids(nodes: list[_TaxonNode]) -> None:
    seen: dict[int, _TaxonNode] = {}
    for node in nodes:
        if node.taxon_id in seen:
            raise InputError(f"taxon id {node.taxon_id} names two taxa: {seen[node.taxon_id].name} and {node.name}")
        seen[node.taxon_id] = node


def _write_taxa(ranked: dict[Path, _TaxonNode], unranked: list[_TaxonNode], path: str) -> None:
    lines = [TAXA_HEADER, _tsv(LIFE_TAXON_ID, "", 100, "stateofmatter", "Life", "true")]
    for node in sorted([*ranked.values(), *unranked], key=lambda node: node.taxon_id):
        parents = node.parent_path
        ancestry = [LIFE_TAXON_ID] + [ranked[parents[:depth]].taxon_id for depth in range(1, len(parents) + 1)]
        lines.append(_tsv(node.taxon_id, "/".join(map(str, ancestry)), node.rank_level, node.rank, node.name, "true"))
    with open_text(path, "w") as f:
        f.writelines(lines)


def _write_observations_and_photos(csv_path: str, photos_dir: Optional[str], out_dir: str) -> dict:
    skipped: collections.Counter = collections.Counter()
    photo_notes: collections.Counter = collections.Counter()
    seen_uuids: set[str] = set()
    with open_text(os.path.join(out_dir, "observations.csv"), "w") as observations, \
            open_text(os.path.join(out_dir, "photos.csv"), "w") as photos:
        observations.write(OBSERVATION_HEADER)
        photos.write(PHOTO_HEADER)
        for row in _rows(csv_path):
            reason = _skip_reason(row, seen_uuids)
            if reason:
                skipped[reason] += 1
                continue
            seen_uuids.add(row["uuid"])
            observations.write(_observation_line(row))
            photo = PHOTO_URL.search(row["image_url"])
            if photo is None:
                photo_notes["unrecognized_image_url" if row["image_url"] else "no_image_url"] += 1
                continue
            photo_id, extension = int(photo.group(1)), (photo.group(2) or "jpg").lower()
            if photos_dir:
                extension = _copy_photo(photos_dir, photo_id, extension, out_dir, photo_notes)
            photos.write(_tsv("", photo_id, row["uuid"], row.get("user_id", ""), extension,
                              row["license"] or ALL_RIGHTS_RESERVED, "", "", 0))
            photo_notes["photos"] += 1
    return {"observations": len(seen_uuids), "skipped": dict(skipped), **photo_notes}


def _skip_reason(row: dict, seen_uuids: set[str]) -> Optional[str]:
    if not row["uuid"]:
        return "missing_uuid"
    if row["uuid"] in seen_uuids:
        return "duplicate_observation"
    if not row["taxon_id"] or not row["scientific_name"]:
        return "missing_taxon"
    if not row["taxon_id"].isdigit():
        return "bad_number"
    return None


def _observation_line(row: dict) -> str:
    accuracy = row.get("public_positional_accuracy") or row.get("positional_accuracy", "")
    return _tsv(row["uuid"], row.get("user_id", ""), row.get("latitude", ""), row.get("longitude", ""), accuracy,
                row["taxon_id"], row["quality_grade"], row.get("observed_on", ""))


def _copy_photo(photos_dir: str, photo_id: int, extension: str, out_dir: str, photo_notes: collections.Counter) -> str:
    """Copies the photo to `<out>/photos/<id>/medium.<ext>`; returns the extension of the file found."""
    source = _find_photo(photos_dir, photo_id, extension)
    if source is None:
        photo_notes["photo_files_missing"] += 1
        return extension
    found_extension = source.rsplit(".", 1)[-1].lower()
    target_dir = os.path.join(out_dir, "photos", str(photo_id))
    make_dirs(target_dir)
    _copy(source, os.path.join(target_dir, f"medium.{found_extension}"))
    photo_notes["photo_files_copied"] += 1
    return found_extension


def _find_photo(photos_dir: str, photo_id: int, extension: str) -> Optional[str]:
    """The Open Data layout (`photos/<id>/medium.<ext>`, with or without `photos/`), or `<id>.<ext>`."""
    return (photo_path(photos_dir, photo_id, "medium", extension)
            or find_file(os.path.join(photos_dir, str(photo_id)), "medium", extension)
            or find_file(photos_dir, str(photo_id), extension))


def _copy(source: str, target: str) -> None:
    import tensorflow as tf  # only when photos are copied

    tf.io.gfile.copy(source, target, overwrite=True)


def _tsv(*values) -> str:
    """One TSV line; tabs and line breaks inside values become spaces."""
    return "\t".join(str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ") for value in values) + "\n"
