"""Streaming readers of the iNaturalist Open Data tables (tab-separated, optionally `.csv.gz`).

Open Data files are TSV without quoting, so a quote character is data; a field wholly wrapped in quotes
(as some tools write) is unwrapped. Each parser turns one row into an immutable record or a `Rejection` that
names the reason, file and line: a bad row never stops an export, a missing file or column does
(`InputError`). Local files are read with Python's own I/O; `gs://` and other URIs with `tf.io.gfile`.

Records are NamedTuples: immutable and picklable like frozen dataclasses, and twice as fast to build,
which matters at millions of rows.
"""
from __future__ import annotations

import contextlib
import datetime
import gzip
import io
import math
import os
from typing import IO, Iterator, NamedTuple, Optional, Sequence, Union

from inatvision.errors import InputError
from inatvision.location import MAX_LATITUDE, MAX_LONGITUDE

OBSERVATIONS = "observations.csv"
PHOTOS = "photos.csv"
TAXA = "taxa.csv"

# The columns each parser reads, and those a table must have (the others read as empty when absent).
FIELDS = {
    OBSERVATIONS: ("observation_uuid", "observer_id", "latitude", "longitude", "positional_accuracy",
                   "taxon_id", "quality_grade", "observed_on"),
    PHOTOS: ("photo_uuid", "photo_id", "observation_uuid", "extension", "license", "width", "height", "position"),
    TAXA: ("taxon_id", "ancestry", "rank_level", "rank", "name", "active"),
}
REQUIRED_COLUMNS = {
    OBSERVATIONS: ("observation_uuid", "taxon_id", "quality_grade"),
    PHOTOS: ("photo_id", "observation_uuid", "license"),
    TAXA: FIELDS[TAXA],
}
QUALITY_GRADES = ("research", "needs_id", "casual")
PHOTO_EXTENSIONS = ("jpg", "jpeg", "png")


class Rejection(NamedTuple):
    """A row that could not be used: `reason` is a stable snake_case string."""

    reason: str
    line: int
    file: str


class Observation(NamedTuple):
    uuid: str
    observer_id: Optional[int]
    latitude: Optional[float]  # None unless both coordinates are known
    longitude: Optional[float]
    positional_accuracy: Optional[float]  # metres
    taxon_id: int
    quality_grade: str  # research, needs_id or casual
    observed_on: Optional[datetime.date]


class Photo(NamedTuple):
    photo_id: int
    photo_uuid: str
    observation_uuid: str
    extension: str  # lower case, without the dot; "jpg" when the table does not say
    license: str  # as written; "" when the export does not say
    width: Optional[int]
    height: Optional[int]
    position: int  # 0 is the observation's first photo


class Taxon(NamedTuple):
    taxon_id: int
    parent_id: Optional[int]  # the last id of `ancestry`
    ancestry: tuple[int, ...]  # root first
    rank_level: float
    rank: str  # lower case
    name: str
    active: bool


# ---------------------------------------------------------------- files


def is_remote(path: str) -> bool:
    return "://" in path


@contextlib.contextmanager
def open_text(path: str, mode: str = "r") -> Iterator[IO[str]]:
    """A text file (`mode` "r" or "w"), gzip-coded when it ends in `.gz`; remote paths via `tf.io.gfile`."""
    binary_mode = mode[0] + "b"
    with (_gfile().GFile(path, binary_mode) if is_remote(path) else open(path, binary_mode)) as raw:
        stream = gzip.GzipFile(fileobj=raw, mode=binary_mode) if path.endswith(".gz") else raw
        with io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="\n") as text:
            yield text


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def make_dirs(path: str) -> None:
    if is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def find_table(export_dir: str, name: str) -> str:
    """`<export_dir>/<name>` or its `.gz`; raises InputError naming the folder and the file, or saying that a
    local folder does not exist."""
    if not is_remote(export_dir) and not os.path.isdir(export_dir):
        raise InputError(f"{export_dir}: export folder not found (expected observations.csv, photos.csv, "
                         f"taxa.csv and photos/)")
    for candidate in (name, name + ".gz"):
        path = os.path.join(export_dir, candidate)
        if exists(path):
            return path
    raise InputError(f"{export_dir}: missing {name} (or {name}.gz)")


def read_header(path: str) -> list[str]:
    """The column names of a table's first line."""
    with open_text(path) as f:
        first = f.readline()
    if not first.strip():
        raise InputError(f"{path}: empty file, expected a header line")
    return [_unquote(name.strip()) for name in first.lstrip("\ufeff").rstrip("\r\n").split("\t")]


def check_columns(path: str, header: Sequence[str], required: Sequence[str]) -> dict[str, int]:
    """The header's column index; raises InputError naming the file and a missing or repeated column."""
    index = {name: position for position, name in enumerate(header)}
    if len(index) != len(header):
        repeated = next(name for name in header if header.count(name) > 1)
        raise InputError(f"{path}: column {repeated!r} appears twice")
    for name in required:
        if name not in index:
            raise InputError(f"{path}: missing column {name!r} (columns: {', '.join(header)})")
    return index


def check_tables(export_dir: str) -> dict[str, str]:
    """Every table and required column, before any heavy work (InputError names file and column)."""
    tables = {}
    for name in (TAXA, OBSERVATIONS, PHOTOS):
        path = find_table(export_dir, name)
        check_columns(path, read_header(path), REQUIRED_COLUMNS[name])
        tables[name] = path
    return tables


def iter_rows(path: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank data line; the header is line 1."""
    with open_text(path) as f:
        f.readline()
        for line_no, line in enumerate(f, start=2):
            fields = line.rstrip("\r\n").split("\t")
            if '"' in line:
                fields = [_unquote(field) for field in fields]
            if len(fields) > 1 or fields[0].strip():
                yield line_no, fields


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field


def _gfile():
    import tensorflow as tf  # only for remote paths and photo lookups: the preview stays light

    return tf.io.gfile


# ---------------------------------------------------------------- rows


def parse_observation(fields: list[str], header_index: dict[str, int], line_no: int) -> Union[Observation, Rejection]:
    """One observations.csv row (`header_index` from `check_columns`); coordinates outside the globe or
    unreadable values reject the row."""
    if len(fields) != len(header_index):
        return Rejection("wrong_field_count", line_no, OBSERVATIONS)
    uuid, observer_id, latitude, longitude, accuracy, taxon_id, grade, observed_on = _values(
        fields, header_index, OBSERVATIONS)
    uuid, grade, observed_on = uuid.strip(), grade.strip().lower(), observed_on.strip()
    try:
        observer_id = int(observer_id) if observer_id else None
        latitude = float(latitude) if latitude else None
        longitude = float(longitude) if longitude else None
        accuracy = float(accuracy) if accuracy else None
        taxon_id = int(taxon_id) if taxon_id else None
    except ValueError:
        return Rejection("bad_number", line_no, OBSERVATIONS)
    try:
        observed_on = datetime.date.fromisoformat(observed_on[:10]) if observed_on else None
    except ValueError:
        return Rejection("bad_date", line_no, OBSERVATIONS)
    reason = _observation_problem(uuid, latitude, longitude, accuracy, taxon_id, grade)
    if reason:
        return Rejection(reason, line_no, OBSERVATIONS)
    if latitude is None or longitude is None:
        latitude = longitude = None
    return Observation(uuid, observer_id, latitude, longitude, accuracy, taxon_id, grade, observed_on)


def _values(fields: list[str], header_index: dict[str, int], table: str) -> list[str]:
    """The row's values of the table's FIELDS, "" for a column the header lacks."""
    return [fields[header_index[name]] if name in header_index else "" for name in FIELDS[table]]


def _observation_problem(uuid, latitude, longitude, accuracy, taxon_id, grade) -> Optional[str]:
    if not uuid:
        return "missing_uuid"
    if taxon_id is None:
        return "missing_taxon"
    if grade not in QUALITY_GRADES:
        return "bad_quality_grade"
    if latitude is not None and not abs(latitude) <= MAX_LATITUDE:  # NaN too
        return "latitude_out_of_range"
    if longitude is not None and not abs(longitude) <= MAX_LONGITUDE:
        return "longitude_out_of_range"
    if accuracy is not None and not math.isfinite(accuracy):
        return "bad_number"
    return None


def row_observation_uuid(fields: list[str], header_index: dict[str, int]) -> str:
    """The `observation_uuid` a row of observations.csv or photos.csv names, as written (stripped), also for a
    row its parser rejects; "" when the row is too short to have one. With it a photo row whose observation
    row was rejected is not taken for one whose observation has no row at all (`rules.NO_OBSERVATION`)."""
    position = header_index["observation_uuid"]
    return fields[position].strip() if position < len(fields) else ""


def parse_photo(fields: list[str], header_index: dict[str, int], line_no: int) -> Union[Photo, Rejection]:
    """One photos.csv row (`header_index` from `check_columns`)."""
    if len(fields) != len(header_index):
        return Rejection("wrong_field_count", line_no, PHOTOS)
    photo_uuid, photo_id, observation_uuid, extension, license, width, height, position = _values(
        fields, header_index, PHOTOS)
    observation_uuid = observation_uuid.strip()
    if not photo_id.strip():
        return Rejection("missing_photo_id", line_no, PHOTOS)
    if not observation_uuid:
        return Rejection("missing_uuid", line_no, PHOTOS)
    try:
        photo_id = int(photo_id)
        width = int(width) if width else None
        height = int(height) if height else None
        position = int(position) if position else 0
    except ValueError:
        return Rejection("bad_number", line_no, PHOTOS)
    extension = extension.strip().lstrip(".").lower() or "jpg"
    return Photo(photo_id, photo_uuid.strip(), observation_uuid, extension, license.strip(), width, height, position)


def parse_taxon(fields: list[str], header_index: dict[str, int], line_no: int) -> Union[Taxon, Rejection]:
    """One taxa.csv row (`header_index` from `check_columns`); `active` is true unless it says false."""
    if len(fields) != len(header_index):
        return Rejection("wrong_field_count", line_no, TAXA)
    taxon_id, ancestry, rank_level, rank, name, active = _values(fields, header_index, TAXA)
    try:
        taxon_id = int(taxon_id)
        ancestry = tuple(int(part) for part in ancestry.split("/") if part.strip())
        rank_level = float(rank_level)
    except ValueError:
        return Rejection("bad_number", line_no, TAXA)
    active = active.strip().lower()
    if not math.isfinite(rank_level):
        return Rejection("bad_number", line_no, TAXA)
    if active not in ("", "true", "t", "1", "false", "f", "0"):
        return Rejection("bad_boolean", line_no, TAXA)
    return Taxon(taxon_id, ancestry[-1] if ancestry else None, ancestry, rank_level, rank.strip().lower(),
                 name.strip(), active not in ("false", "f", "0"))


# ---------------------------------------------------------------- photo files


def photo_path(photo_root: str, photo_id: int, size: str, extension: str) -> Optional[str]:
    """`<root>/photos/<id>/<size>.<extension>`; when that file is missing, the same photo with another
    common extension (jpg, jpeg, png, any case); None when there is none."""
    return find_file(os.path.join(photo_root, "photos", str(photo_id)), size, extension)


def find_file(directory: str, stem: str, extension: str) -> Optional[str]:
    """`<directory>/<stem>.<extension>`, else a file named `<stem>.<jpg|jpeg|png>` in any case, else None.

    One existence check when the file is where it should be; otherwise a look at the folder.
    """
    gfile = _gfile()
    expected = os.path.join(directory, f"{stem}.{extension}")
    if gfile.exists(expected):
        return expected
    if not gfile.isdir(directory):
        return None
    wanted = {f"{stem}.{ext}".lower() for ext in (extension, *PHOTO_EXTENSIONS)}
    for name in sorted(gfile.listdir(directory)):
        if name.lower() in wanted:
            return os.path.join(directory, name)
    return None
