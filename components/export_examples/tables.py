"""Streaming readers of the iNaturalist Open Data tables (tab-separated, optionally `.csv.gz`).

Open Data files are TSV without quoting, so a quote character is data; a field wholly wrapped in quotes
(as some tools write) is unwrapped. Each parser turns one row into a frozen record or a `Rejection` that
names the reason, file and line: a bad row never stops an export, a missing file or column does
(`InputError`). Local files are read with Python's own I/O; `gs://` and other URIs with `tf.io.gfile`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gzip
import io
import math
import os
from typing import IO, Iterator, Optional, Sequence, Union

OBSERVATIONS = "observations.csv"
PHOTOS = "photos.csv"
TAXA = "taxa.csv"

# Columns a table must have; the Open Data columns not listed here are read when present.
REQUIRED_COLUMNS = {
    OBSERVATIONS: ("observation_uuid", "taxon_id", "quality_grade"),
    PHOTOS: ("photo_id", "observation_uuid", "extension", "license"),
    TAXA: ("taxon_id", "ancestry", "rank_level", "rank", "name", "active"),
}
QUALITY_GRADES = ("research", "needs_id", "casual")
PHOTO_EXTENSIONS = ("jpg", "jpeg", "png")


class InputError(Exception):
    """A fatal problem with the export; the message is one line naming the file and column."""


@dataclasses.dataclass(frozen=True)
class Rejection:
    """A row that could not be used: `reason` is a stable snake_case string."""

    reason: str
    line: int
    file: str


@dataclasses.dataclass(frozen=True)
class Observation:
    uuid: str
    observer_id: Optional[int]
    latitude: Optional[float]  # None unless both coordinates are known
    longitude: Optional[float]
    positional_accuracy: Optional[float]  # metres
    taxon_id: int
    quality_grade: str  # research, needs_id or casual
    observed_on: Optional[datetime.date]


@dataclasses.dataclass(frozen=True)
class Photo:
    photo_id: int
    photo_uuid: str
    observation_uuid: str
    extension: str  # lower case, without the dot
    license: str  # as written; "" when the export does not say
    width: Optional[int]
    height: Optional[int]
    position: int  # 0 is the observation's first photo


@dataclasses.dataclass(frozen=True, slots=True)
class Taxon:
    taxon_id: int
    parent_id: Optional[int]  # the last id of `ancestry`
    ancestry: tuple[int, ...]  # root first
    rank_level: float
    rank: str  # lower case
    name: str
    active: bool


class _BadField(Exception):
    """Raised inside a parser; becomes a Rejection with this reason."""


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
    """`<export_dir>/<name>` or its `.gz`; raises InputError naming the folder and the file."""
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
    return [name.strip() for name in _split(first.lstrip("\ufeff"))]


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


def iter_rows(path: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank data line; the header is line 1."""
    with open_text(path) as f:
        f.readline()
        for line_no, line in enumerate(f, start=2):
            if line.strip():
                yield line_no, _split(line)


def _split(line: str) -> list[str]:
    fields = line.rstrip("\r\n").split("\t")
    if '"' in line:
        fields = [_unquote(field) for field in fields]
    return fields


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field


def _gfile():
    import tensorflow as tf  # only for remote paths and photo lookups: the preview stays light

    return tf.io.gfile


# ---------------------------------------------------------------- rows


def parse_observation(fields: list[str], header_index: dict[str, int], line_no: int) -> Union[Observation, Rejection]:
    """One observations.csv row; coordinates outside the globe or unreadable values reject the row."""
    if len(fields) != len(header_index):
        return Rejection("wrong_field_count", line_no, OBSERVATIONS)
    try:
        latitude, longitude = _coordinates(fields, header_index)
        return Observation(
            uuid=_required(_field(fields, header_index, "observation_uuid"), "missing_uuid"),
            observer_id=_optional_int(_field(fields, header_index, "observer_id")),
            latitude=latitude,
            longitude=longitude,
            positional_accuracy=_optional_float(_field(fields, header_index, "positional_accuracy")),
            taxon_id=_int(_required(_field(fields, header_index, "taxon_id"), "missing_taxon")),
            quality_grade=_quality_grade(_field(fields, header_index, "quality_grade")),
            observed_on=_optional_date(_field(fields, header_index, "observed_on")),
        )
    except _BadField as bad:
        return Rejection(str(bad), line_no, OBSERVATIONS)


def parse_photo(fields: list[str], header_index: dict[str, int], line_no: int) -> Union[Photo, Rejection]:
    """One photos.csv row."""
    if len(fields) != len(header_index):
        return Rejection("wrong_field_count", line_no, PHOTOS)
    try:
        return Photo(
            photo_id=_int(_required(_field(fields, header_index, "photo_id"), "missing_photo_id")),
            photo_uuid=_field(fields, header_index, "photo_uuid"),
            observation_uuid=_required(_field(fields, header_index, "observation_uuid"), "missing_uuid"),
            extension=_field(fields, header_index, "extension").lstrip(".").lower(),
            license=_field(fields, header_index, "license"),
            width=_optional_int(_field(fields, header_index, "width")),
            height=_optional_int(_field(fields, header_index, "height")),
            position=_optional_int(_field(fields, header_index, "position")) or 0,
        )
    except _BadField as bad:
        return Rejection(str(bad), line_no, PHOTOS)


def parse_taxon(fields: list[str], header_index: dict[str, int], line_no: int) -> Union[Taxon, Rejection]:
    """One taxa.csv row; `active` is true unless it says false."""
    if len(fields) != len(header_index):
        return Rejection("wrong_field_count", line_no, TAXA)
    try:
        ancestry = tuple(_int(part) for part in _field(fields, header_index, "ancestry").split("/") if part)
        return Taxon(
            taxon_id=_int(_field(fields, header_index, "taxon_id")),
            parent_id=ancestry[-1] if ancestry else None,
            ancestry=ancestry,
            rank_level=_float(_field(fields, header_index, "rank_level")),
            rank=_field(fields, header_index, "rank").lower(),
            name=_field(fields, header_index, "name"),
            active=_active(_field(fields, header_index, "active")),
        )
    except _BadField as bad:
        return Rejection(str(bad), line_no, TAXA)


def _field(fields: list[str], header_index: dict[str, int], name: str) -> str:
    index = header_index.get(name)
    return "" if index is None else fields[index].strip()


def _required(text: str, reason: str) -> str:
    if not text:
        raise _BadField(reason)
    return text


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _BadField("bad_number") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _BadField("bad_number") from None
    if not math.isfinite(value):
        raise _BadField("bad_number")
    return value


def _optional_int(text: str) -> Optional[int]:
    return _int(text) if text else None


def _optional_float(text: str) -> Optional[float]:
    return _float(text) if text else None


def _coordinates(fields: list[str], header_index: dict[str, int]) -> tuple[Optional[float], Optional[float]]:
    latitude = _optional_float(_field(fields, header_index, "latitude"))
    longitude = _optional_float(_field(fields, header_index, "longitude"))
    if latitude is not None and not -90.0 <= latitude <= 90.0:
        raise _BadField("latitude_out_of_range")
    if longitude is not None and not -180.0 <= longitude <= 180.0:
        raise _BadField("longitude_out_of_range")
    if latitude is None or longitude is None:
        return None, None
    return latitude, longitude


def _quality_grade(text: str) -> str:
    grade = text.lower()
    if grade not in QUALITY_GRADES:
        raise _BadField("bad_quality_grade")
    return grade


def _optional_date(text: str) -> Optional[datetime.date]:
    if not text:
        return None
    try:
        return datetime.date.fromisoformat(text[:10])
    except ValueError:
        raise _BadField("bad_date") from None


def _active(text: str) -> bool:
    value = text.lower()
    if value in ("", "true", "t", "1"):
        return True
    if value in ("false", "f", "0"):
        return False
    raise _BadField("bad_boolean")


# ---------------------------------------------------------------- photo files


def photo_path(photo_root: str, photo_id: int, size: str, extension: str) -> Optional[str]:
    """`<root>/photos/<id>/<size>.<extension>`; when that file is missing, the same photo with another
    common extension (jpg, jpeg, png, any case); None when there is none."""
    return find_file(os.path.join(photo_root, "photos", str(photo_id)), size, extension)


def find_file(directory: str, stem: str, extension: str) -> Optional[str]:
    """`<directory>/<stem>.<extension>`, else a file named `<stem>.<jpg|jpeg|png>` in any case, else None.

    One existence check when the file is where it should be; one listing of the folder otherwise.
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
