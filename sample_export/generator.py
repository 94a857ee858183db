"""A generated iNaturalist Open Data export: a small, deterministic synthetic world for demos and tests.

The tables follow the Open Data layout (docs/recipe.md, section 1): tab-separated `observations.csv`,
`photos.csv`, `taxa.csv`, `observers.csv`, and photos at `photos/<photo_id>/medium.jpg`.

The world is a taxonomy below Life with the real iNaturalist ids of the iconic taxa (made-up ids above
1,000,000 below the class), `species` active species plus one inactive species and one hybrid, some
subspecies, and per taxon a geographic range, a season and a look (background colour and texture per genus,
a covering pattern per species). Observation counts per species are long-tailed and calibrated for the demo
inclusion cut-off (20 observations, 10 research grade): at the default size about two thirds of the species
qualify, one genus qualifies only by pooling its species, one genus has a head species and a far-below
sibling, the inactive species and the hybrid have enough observations to qualify were they not excluded.

Every value of an observation is a hash of (seed, taxon, observation index), so `scale=F` (a later snapshot
with F times the observations) contains every observation of a smaller scale unchanged, photos included,
except that some needs_id observations have been upgraded to research grade since.
"""
from __future__ import annotations

import colorsys
import datetime
import functools
import io
import math
import os
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image

from inatvision.config import CC_LICENSES
from inatvision.taxonomy import LIFE_TAXON_ID, RANK_LEVELS
OBSERVATIONS_PER_SPECIES = 40  # default scale-1 total: this many per observed species-level taxon
CHUNK_ROWS = 20_000

OBSERVATION_COLUMNS = ("observation_uuid", "observer_id", "latitude", "longitude", "positional_accuracy",
                       "taxon_id", "quality_grade", "observed_on")
PHOTO_COLUMNS = ("photo_uuid", "photo_id", "observation_uuid", "observer_id", "extension", "license",
                 "width", "height", "position")
TAXON_COLUMNS = ("taxon_id", "ancestry", "rank_level", "rank", "name", "active")
OBSERVER_COLUMNS = ("observer_id", "login", "name")

GRADES = ("research", "needs_id", "casual")
GRADE_CDF = (0.6, 0.9)  # 60% research, 30% needs_id, 10% casual
UPGRADED_PER_DOUBLING = 0.2  # share of needs_id observations that reach research grade per doubling
PHOTO_COUNT_CDF = (0.5, 0.75, 0.87, 0.95)  # 1..5 photos, mean about 1.9
LICENSES = tuple(CC_LICENSES) + ("C",)  # "C": all rights reserved
LICENSE_WEIGHTS = (0.08, 0.15, 0.45, 0.05, 0.02, 0.08, 0.12, 0.05)
FIRST_YEAR, LAST_YEAR = 2015, 2024
YEAR_GROWTH = 1.25  # each year has this many times the observations of the year before
PHOTO_SIDES = (300, 500)
JPEG_QUALITY = 85

_DECLINED = ("ales", "aceae", "oideae", "eae")  # botanical suffixes: order, family, subfamily, tribe
_VERTEBRATE = ("iformes", "idae", "inae", "ini")
_INSECT = ("ptera", "idae", "inae", "ini")
_INVERTEBRATE = ("ida", "idae", "inae", "ini")
_ANIMALIA = (1, "Animalia", "kingdom")
_CHORDATA = ((1, "Animalia", "kingdom"), (2, "Chordata", "phylum"), (355675, "Vertebrata", "subphylum"))
_ARTHROPODA = (_ANIMALIA, (47120, "Arthropoda", "phylum"))


class _Clade(NamedTuple):
    """A class with its real lineage (kingdom down to the class) and its naming conventions."""

    weight: float  # share of the species
    lineage: tuple
    suffixes: tuple  # order, family, subfamily, tribe
    below_genus: str  # the rank that may group species of a genus


_CLADES = (
    _Clade(0.28, ((47126, "Plantae", "kingdom"), (211194, "Tracheophyta", "phylum"),
                  (47125, "Angiospermae", "subphylum"), (47124, "Magnoliopsida", "class")),
           _DECLINED, "section"),
    _Clade(0.24, _ARTHROPODA + ((372739, "Hexapoda", "subphylum"), (47158, "Insecta", "class")),
           _INSECT, "subgenus"),
    _Clade(0.16, _CHORDATA + ((3, "Aves", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.10, ((47170, "Fungi", "kingdom"), (47169, "Basidiomycota", "phylum"),
                  (492000, "Agaricomycotina", "subphylum"), (50814, "Agaricomycetes", "class")),
           _DECLINED, "section"),
    _Clade(0.05, _CHORDATA + ((40151, "Mammalia", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.04, _CHORDATA + ((26036, "Reptilia", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.04, _CHORDATA + ((20978, "Amphibia", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.03, _CHORDATA + ((47178, "Actinopterygii", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.03, (_ANIMALIA, (47115, "Mollusca", "phylum"), (47114, "Gastropoda", "class")), _INVERTEBRATE,
           "subgenus"),
    _Clade(0.03, _ARTHROPODA + ((245097, "Chelicerata", "subphylum"), (47119, "Arachnida", "class")),
           _INVERTEBRATE, "subgenus"),
)

_ONSETS = ("b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "ch", "ph", "th", "tr", "br")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ae", "au")
_CODAS = ("", "", "", "", "n", "r", "s", "l")
_GENUS_ENDINGS = ("us", "a", "um", "ia", "ella", "ops", "is", "odon", "ea", "ina")
_EPITHET_ENDINGS = ("us", "a", "um", "is", "ensis", "ii", "ata", "oides", "ica", "ella", "ianus")


class _NameMaker:
    """Pronounceable Latin-looking names, unique where the taxonomy needs them to be."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.used: set[str] = set()

    def _root(self) -> str:
        syllables = int(self.rng.integers(2, 4))
        parts = [_ONSETS[self.rng.integers(len(_ONSETS))] + _VOWELS[self.rng.integers(len(_VOWELS))]
                 + (_CODAS[self.rng.integers(len(_CODAS))] if i < syllables - 1 else "") for i in range(syllables)]
        return "".join(parts)

    def _join(self, root: str, ending: str) -> str:
        return (root.rstrip("aeiou") or root) + ending if ending[0] in "aeiou" else root + ending

    def unique(self, endings: tuple[str, ...]) -> str:
        """A capitalised name not used before (genus and above)."""
        while True:
            name = self._join(self._root(), endings[self.rng.integers(len(endings))]).capitalize()
            if name not in self.used:
                self.used.add(name)
                return name

    def epithets(self, count: int) -> list[str]:
        """`count` distinct lower-case epithets."""
        names: list[str] = []
        while len(names) < count:
            name = self._join(self._root(), _EPITHET_ENDINGS[self.rng.integers(len(_EPITHET_ENDINGS))])
            if name not in names:
                names.append(name)
        return names


@dataclass
class _Genus:
    taxon_id: int
    name: str
    species: list[int]  # its active species
    grouped: bool  # two of its species sit under a subgenus, section or complex


@dataclass
class _Taxonomy:
    """The tree as rows taxon_id -> (parent_id, rank, name, active), in creation order."""

    rng: np.random.Generator
    names: _NameMaker
    id_pool: list[int]  # made-up ids, taken from the end
    rows: dict[int, tuple[int | None, str, str, bool]] = field(default_factory=dict)
    genera: list[_Genus] = field(default_factory=list)

    def add(self, parent: int | None, rank: str, name: str, taxon_id: int | None = None,
            active: bool = True) -> int:
        taxon_id = self.id_pool.pop() if taxon_id is None else taxon_id
        self.rows[taxon_id] = (parent, rank, name, active)
        return taxon_id

    def ancestry(self, taxon_id: int) -> str:
        """Slash path of ancestor ids from Life down to the parent (empty for Life)."""
        path = []
        parent = self.rows[taxon_id][0]
        while parent is not None:
            path.append(parent)
            parent = self.rows[parent][0]
        return "/".join(str(ancestor) for ancestor in reversed(path))


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """`total` split in proportion to `weights` by largest remainders (exact sum, deterministic)."""
    share = total * weights / weights.sum()
    counts = np.floor(share).astype(np.int64)
    counts[np.argsort(counts - share, kind="stable")[: total - int(counts.sum())]] += 1
    return counts


def _partition(rng: np.random.Generator, total: int, sizes: tuple[int, ...], p: tuple[float, ...]) -> list[int]:
    """Random group sizes drawn from `sizes` that add up to `total`."""
    groups: list[int] = []
    while total > 0:
        groups.append(min(int(rng.choice(sizes, p=p)), total))
        total -= groups[-1]
    return groups


def _build_taxonomy(rng: np.random.Generator, species: int) -> _Taxonomy:
    """Life, the lineages of the iconic classes and below each class its share of the species."""
    pool = 1_000_001 + rng.choice(40 * (species + 10), size=12 * (species + 10), replace=False)
    taxonomy = _Taxonomy(rng, _NameMaker(rng), pool.tolist())
    taxonomy.add(None, "stateofmatter", "Life", LIFE_TAXON_ID)
    for clade, count in zip(_CLADES, _allocate(species, np.array([clade.weight for clade in _CLADES]))):
        if count:
            _add_clade(taxonomy, clade, int(count))
    return taxonomy


def _add_clade(taxonomy: _Taxonomy, clade: _Clade, species: int) -> None:
    """Orders of 1-3 families, families (sometimes with a subfamily and tribe) of 1-3 genera."""
    rng, names = taxonomy.rng, taxonomy.names
    parent = LIFE_TAXON_ID
    for taxon_id, name, rank in clade.lineage:
        if taxon_id not in taxonomy.rows:
            taxonomy.add(parent, rank, name, taxon_id)
        parent = taxon_id
    genus_sizes = _partition(rng, species, (1, 2, 3, 4), (0.3, 0.35, 0.2, 0.15))
    family_sizes = _partition(rng, len(genus_sizes), (1, 2, 3), (0.5, 0.3, 0.2))
    order_sizes = _partition(rng, len(family_sizes), (1, 2, 3), (0.5, 0.3, 0.2))
    next_genus_size, next_family_size = iter(genus_sizes).__next__, iter(family_sizes).__next__
    order_suffix, family_suffix, subfamily_suffix, tribe_suffix = clade.suffixes
    for families in order_sizes:
        order = taxonomy.add(parent, "order", names.unique((order_suffix,)))
        for _ in range(families):
            family = taxonomy.add(order, "family", names.unique((family_suffix,)))
            if rng.random() < 0.3:
                family = taxonomy.add(family, "subfamily", names.unique((subfamily_suffix,)))
                if rng.random() < 0.5:
                    family = taxonomy.add(family, "tribe", names.unique((tribe_suffix,)))
            for _ in range(next_family_size()):
                _add_genus(taxonomy, clade, family, next_genus_size())


def _add_genus(taxonomy: _Taxonomy, clade: _Clade, parent: int, size: int) -> None:
    """A genus of `size` species; in a quarter of those with two or more, the first two share a group."""
    names = taxonomy.names
    genus_name = names.unique(_GENUS_ENDINGS)
    genus = taxonomy.add(parent, "genus", genus_name)
    epithets = names.epithets(size)
    grouped = size >= 2 and taxonomy.rng.random() < 0.25
    group = genus
    if grouped:
        group_name = (f"{genus_name} {epithets[0]} complex" if clade.below_genus == "complex"
                      else names.unique(_GENUS_ENDINGS))
        group = taxonomy.add(genus, clade.below_genus, group_name)
    species = [taxonomy.add(group if j < 2 else genus, "species", f"{genus_name} {epithet}")
               for j, epithet in enumerate(epithets)]
    taxonomy.genera.append(_Genus(genus, genus_name, species, grouped))


class _Look(NamedTuple):
    """How a taxon's photos look: a mottled background and a covering pattern."""

    pattern: int  # index into _PATTERNS
    background: tuple[float, float, float]  # RGB in [0, 1]
    foreground: tuple[float, float, float]
    texture: float  # background mottling amplitude
    period: float  # pattern period in pixels at full size
    angle: float  # pattern orientation in radians


@dataclass
class _World:
    """Everything fixed by (species, seed): the tree and, per observed taxon, counts, range, season, look.

    A unit is a species-level taxon that carries observations (active species, the inactive species, the
    hybrid); rows are the unit's own taxon followed by its subspecies, which share the unit's counts.
    """

    taxonomy: _Taxonomy
    unit_taxon: np.ndarray  # int64 [units]
    unit_counts: np.ndarray  # int64 [units]: observations at scale 1
    unit_first_row: np.ndarray  # int64 [units]
    unit_subspecies: np.ndarray  # int64 [units]
    row_taxon: np.ndarray  # int64 [rows]
    row_place: np.ndarray  # float64 [rows, 3]: centre latitude, centre longitude, spread (degrees)
    row_season: np.ndarray  # float64 [rows, 2]: peak day of year, spread (days)
    looks: list[_Look]


def _long_tail_counts(total: int, units: int) -> np.ndarray:
    """`total` observations over `units` ranks, descending: a Zipf-like head and a steep tail.

    Calibrated for the demo cut-off at 40 per unit: the first ~70% of ranks have at least 22 observations,
    the next few 11-19 (a pair of them pools above 20), the last few 1-4.
    """
    q = (np.arange(units) + 0.5) / units
    return _allocate(total, (q + 0.05) ** -0.3 * np.exp(-4 * q ** 4))


def _special_genera(rng: np.random.Generator, genera: list[_Genus]) -> tuple[_Genus | None, _Genus | None]:
    """The genus that qualifies only by pooling its species, and one with a head species and a rare sibling."""
    pooled_options = [genus for genus in genera if 2 <= len(genus.species) <= 3 and not genus.grouped]
    pooled = pooled_options[rng.integers(len(pooled_options))] if pooled_options else None
    split_options = [genus for genus in genera if len(genus.species) >= 2 and genus is not pooled]
    split = split_options[rng.integers(len(split_options))] if split_options else None
    return pooled, split


def _rank_units(rng: np.random.Generator, units: list[int], targets: dict[int, int]) -> np.ndarray:
    """Count rank per unit: units in `targets` get the free rank nearest their target, the others a shuffle."""
    free = list(range(len(units)))
    ranks = np.empty(len(units), np.int64)
    position = {taxon: i for i, taxon in enumerate(units)}
    for taxon, target in targets.items():
        ranks[position[taxon]] = free.pop(min(range(len(free)), key=lambda i: abs(free[i] - target)))
    rest = [i for i, taxon in enumerate(units) if taxon not in targets]
    ranks[rest] = rng.permutation(free)
    return ranks


def _hsv(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(hue % 1.0, saturation, value)


@dataclass
class _RowTable:
    """Per observed taxon (a unit or one of its subspecies): taxon id, range, season and look."""

    taxa: list[int] = field(default_factory=list)
    places: list[tuple[float, float, float]] = field(default_factory=list)
    seasons: list[tuple[float, float]] = field(default_factory=list)
    looks: list[_Look] = field(default_factory=list)

    def append(self, taxon: int, place: tuple[float, float, float], season: tuple[float, float], look: _Look):
        self.taxa.append(taxon)
        self.places.append(place)
        self.seasons.append(season)
        self.looks.append(look)


def _wrap_longitude(lng: float) -> float:
    return (lng + 180) % 360 - 180


def _describe_genus(rng: np.random.Generator, taxonomy: _Taxonomy, genus_index: int, group: list[int],
                    subspecies: dict[int, int], table: _RowTable) -> None:
    """Rows for a genus's units and their subspecies, which are added to the tree here.

    Siblings share the background (colour and texture) and neighbouring foreground hues but get distinct
    patterns; they live 10-30 degrees apart around the genus's centre, in different directions.
    """
    hue = genus_index * 0.618034 + rng.uniform(0, 0.05)  # golden-ratio steps keep genera apart
    bg_value = rng.uniform(0.3, 0.8)
    background = _hsv(hue, rng.uniform(0.25, 0.6), bg_value)
    contrast_value = bg_value + 0.4 if bg_value < 0.55 else bg_value - 0.45
    texture = rng.uniform(0.2, 0.6)
    patterns = rng.permutation(len(_PATTERNS))
    centre_lat, centre_lng = math.degrees(math.asin(rng.uniform(-0.7, 0.9))), rng.uniform(-180, 180)
    first_direction, genus_peak = rng.uniform(0, 2 * math.pi), rng.uniform(0, 365)
    for j, taxon in enumerate(group):
        direction = first_direction + 2 * math.pi * j / len(group)
        distance = rng.uniform(10, 30) if len(group) > 1 else 0.0
        lat = float(np.clip(centre_lat + distance * math.sin(direction), -65, 72))
        lng = _wrap_longitude(centre_lng + distance * math.cos(direction) / math.cos(math.radians(lat)))
        spread = rng.uniform(1.5, 7)
        peak, season_spread = (genus_peak + rng.uniform(-60, 60)) % 365, float(rng.choice((20, 35, 50, 90)))
        fg_hue = hue + 0.05 * ((j + 1) // 2) * (-1) ** j
        fg_saturation = rng.uniform(0.45, 0.95)
        fg_value = float(np.clip(contrast_value + rng.uniform(-0.08, 0.08), 0.1, 1.0))
        look = _Look(int(patterns[j % len(patterns)]), background, _hsv(fg_hue, fg_saturation, fg_value),
                     texture, rng.uniform(34, 60), rng.uniform(0, math.pi))
        table.append(taxon, (lat, lng, spread), (peak, season_spread), look)
        species_name = taxonomy.rows[taxon][2]
        nominate = species_name.split()[-1]
        epithets = [nominate] + [e for e in taxonomy.names.epithets(2) if e != nominate]
        for k in range(subspecies.get(taxon, 0)):
            sub = taxonomy.add(taxon, "subspecies", f"{species_name} {epithets[k]}")
            sub_lat = float(np.clip(lat + spread * rng.normal(), -70, 75))
            sub_lng = _wrap_longitude(lng + spread * rng.normal() / math.cos(math.radians(sub_lat)))
            sub_look = look._replace(foreground=_hsv(fg_hue + 0.03 * (k + 1), fg_saturation, fg_value),
                                     period=look.period * 1.12)
            table.append(sub, (sub_lat, sub_lng, spread / 2), ((peak + rng.normal(0, 10)) % 365, season_spread),
                         sub_look)


def _add_excluded_taxa(taxonomy: _Taxonomy, genus: _Genus) -> tuple[int, int]:
    """An inactive species and a hybrid in `genus`: both carry observations that must be excluded."""
    taken = {taxonomy.rows[taxon][2].split()[-1] for taxon in genus.species}
    first, second = [e for e in taxonomy.names.epithets(len(taken) + 2) if e not in taken][:2]
    inactive = taxonomy.add(genus.taxon_id, "species", f"{genus.name} {first}", active=False)
    hybrid = taxonomy.add(genus.taxon_id, "hybrid", f"{genus.name} × {second}")
    return inactive, hybrid


def _build_world(species: int, seed: int, observations: int | None) -> _World:
    """The tree, the units and their scale-1 counts, with the designed cases at fixed count ranks."""
    rng = np.random.default_rng([seed, species])
    taxonomy = _build_taxonomy(rng, species)
    genera = taxonomy.genera
    pooled, split = _special_genera(rng, genera)
    home = split or genera[0]  # the genus of the head species, the inactive species and the hybrid
    inactive, hybrid = _add_excluded_taxa(taxonomy, home)
    members = {genus.taxon_id: list(genus.species) for genus in genera}
    members[home.taxon_id] += [inactive, hybrid]
    units = [taxon for genus in genera for taxon in members[genus.taxon_id]]
    head = home.species[0]
    targets = {head: 0, inactive: round(0.25 * len(units)), hybrid: round(0.4 * len(units))}
    if split:
        targets[split.species[-1]] = len(units) - 1
    for j, taxon in enumerate(pooled.species if pooled else []):
        targets[taxon] = round(0.7 * len(units)) + j
    total = OBSERVATIONS_PER_SPECIES * len(units) if observations is None else observations
    counts = _long_tail_counts(total, len(units))[_rank_units(rng, units, targets)]

    subspecies = {head: 2}  # the head species always has subspecies; about one species in eight too
    for taxon in (taxon for genus in genera for taxon in genus.species if taxon != head):
        if rng.random() < 0.12:
            subspecies[taxon] = int(rng.integers(1, 3))
    table = _RowTable()
    for genus_index, genus in enumerate(genera):
        _describe_genus(rng, taxonomy, genus_index, members[genus.taxon_id], subspecies, table)
    row_index = {taxon: i for i, taxon in enumerate(table.taxa)}
    return _World(
        taxonomy=taxonomy,
        unit_taxon=np.array(units, np.int64),
        unit_counts=counts,
        unit_first_row=np.array([row_index[taxon] for taxon in units], np.int64),
        unit_subspecies=np.array([subspecies.get(taxon, 0) for taxon in units], np.int64),
        row_taxon=np.array(table.taxa, np.int64),
        row_place=np.array(table.places),
        row_season=np.array(table.seasons),
        looks=table.looks,
    )


# Hashing: every value of an observation or photo is a function of its key, never of the draw order.

_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1
_STREAMS = ("subspecies", "grade", "upgrade", "missing", "vagrant", "vagrant_lat", "vagrant_lng", "lat", "lat2",
            "lng", "lng2", "accuracy_kind", "accuracy", "year", "day", "day2", "observer", "photos", "uuid_hi",
            "uuid_lo", "license", "width", "height", "pixels")
_PHOTO_STREAM_OFFSET = 1000  # photo keys: streams 1000 + position of the observation key


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit spread over the whole uint64."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _stream(keys: np.ndarray, name: str) -> np.ndarray:
    """One independent uint64 per key for the named value."""
    return _mix(keys + np.uint64((_STREAMS.index(name) + 1) * _GOLDEN & _MASK64))


def _uniform(keys: np.ndarray, name: str) -> np.ndarray:
    return (_stream(keys, name) >> np.uint64(11)) * 2.0 ** -53


def _normal(keys: np.ndarray, first: str, second: str) -> np.ndarray:
    """Standard normal values by Box-Muller from two streams."""
    return np.sqrt(-2 * np.log1p(-_uniform(keys, first))) * np.cos(2 * np.pi * _uniform(keys, second))


def _keys(seed: int, groups: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """A key per (seed, group, index): observation i of a taxon, or observer i in group 0."""
    salt = _mix(np.array([seed & _MASK64], np.uint64))[0]
    return _mix(_mix(groups.astype(np.uint64) ^ salt) + indices.astype(np.uint64) * np.uint64(_GOLDEN))


def _photo_keys(observation_keys: np.ndarray, positions: np.ndarray) -> np.ndarray:
    return _mix(observation_keys + (positions.astype(np.uint64) + np.uint64(_PHOTO_STREAM_OFFSET))
                * np.uint64(_GOLDEN))


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)
_UUID_DIGIT_COLUMNS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _uuid_strings(high: np.ndarray, low: np.ndarray) -> list[str]:
    """str(uuid.UUID(int=high << 64 | low, version=4)) for every pair, vectorised."""
    high = (high & ~np.uint64(0xF000)) | np.uint64(0x4000)  # version 4
    low = (low & np.uint64(0x3FFF_FFFF_FFFF_FFFF)) | np.uint64(0x8000_0000_0000_0000)  # RFC 4122 variant
    raw = np.stack([high, low], axis=1).astype(">u8").view(np.uint8).reshape(-1, 16)
    digits = np.empty((len(raw), 32), np.uint8)
    digits[:, 0::2], digits[:, 1::2] = raw >> 4, raw & 15
    text = np.full((len(raw), 36), ord("-"), np.uint8)
    text[:, _UUID_DIGIT_COLUMNS] = _HEX_DIGITS[digits]
    joined = text.tobytes().decode("ascii")
    return [joined[i:i + 36] for i in range(0, len(joined), 36)]


# Observations.

_YEARS = range(FIRST_YEAR, LAST_YEAR + 1)
_YEAR_START = np.array([(datetime.date(year, 1, 1) - datetime.date(FIRST_YEAR, 1, 1)).days for year in _YEARS])
_DAYS_IN_YEAR = np.array([366 if year % 4 == 0 else 365 for year in _YEARS])  # no century years in range
_YEAR_CDF = np.cumsum(YEAR_GROWTH ** np.arange(len(_YEARS)))[:-1] / np.sum(YEAR_GROWTH ** np.arange(len(_YEARS)))
_LICENSE_CDF = np.cumsum(LICENSE_WEIGHTS)[:-1] / np.sum(LICENSE_WEIGHTS)


def _snapshot(world: _World, seed: int, scale: float) -> dict[str, np.ndarray]:
    """Who is in the snapshot at `scale` and in which order (date, then uuid): key, unit, index, row, date.

    Unit u has round(scale * count) observations; observation i of u is hashed from (seed, taxon of u, i), so
    a smaller scale is a subset.
    """
    counts = np.floor(world.unit_counts * scale + 0.5).astype(np.int64)
    unit = np.repeat(np.arange(len(counts)), counts)
    index = np.arange(len(unit)) - np.repeat(np.cumsum(counts) - counts, counts)
    keys = _keys(seed, world.unit_taxon[unit], index)
    subspecies = world.unit_subspecies[unit]
    pick = _uniform(keys, "subspecies")  # 40% of a unit's observations name one of its subspecies
    subspecies_row = (1 + np.floor(pick / 0.4 * subspecies)).astype(np.int64)
    row = world.unit_first_row[unit] + (pick < 0.4) * (subspecies > 0) * subspecies_row
    date = _dates(world.row_season[row], keys)
    order = np.lexsort((_stream(keys, "uuid_hi"), date))
    return {"keys": keys[order], "unit": unit[order], "index": index[order], "row": row[order],
            "date": date[order]}


def _observation_fields(world: _World, scale: float, part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The values of some observations of the snapshot.

    A needs_id observation first seen at scale s is research grade at scale F with probability
    0.2 * log2(F / s) (s >= 1): about a fifth of them after one doubling. Only casual observations lack a
    place (half of them) or a date (a tenth).
    """
    keys, unit, index = part["keys"], part["unit"], part["index"]
    grade = np.searchsorted(GRADE_CDF, _uniform(keys, "grade"), side="right")
    first_seen = (index + 1) / np.maximum(world.unit_counts[unit], 1)
    upgrade_share = np.clip(UPGRADED_PER_DOUBLING * np.log2(scale / np.maximum(first_seen, 1.0)), 0, 0.9)
    grade[(grade == 1) & (_uniform(keys, "upgrade") < upgrade_share)] = 0
    missing = np.where(grade == 2, _uniform(keys, "missing"), 1.0)
    latitude, longitude = _places(world.row_place[part["row"]], keys)
    no_place = missing < 0.5
    latitude[no_place] = longitude[no_place] = np.nan
    observers = max(8, int(world.unit_counts.sum()) // 12)  # fixed by the scale-1 world
    return {
        "grade": grade,
        "observer": 1 + np.floor(observers * _uniform(keys, "observer") ** 2.5).astype(np.int64),
        "latitude": latitude,
        "longitude": longitude,
        "accuracy": np.where(no_place, -1, _accuracies(keys)),
        "date": np.where(missing < 0.1, -1, part["date"]),
        "photos": 1 + np.searchsorted(PHOTO_COUNT_CDF, _uniform(keys, "photos"), side="right"),
        "first_photo_id": 10_000 + 5 * (unit + len(world.unit_taxon) * index),  # stable at every scale
    }


def _places(place: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude around the taxon's centre; 2% vagrants anywhere on the globe."""
    centre_lat, centre_lng, spread = place.T
    latitude = centre_lat + spread * _normal(keys, "lat", "lat2")
    stretch = 1 / np.cos(np.radians(np.clip(centre_lat, -70, 70)))  # degrees of longitude shrink poleward
    longitude = centre_lng + spread * stretch * _normal(keys, "lng", "lng2")
    vagrant = _uniform(keys, "vagrant") < 0.02
    latitude = np.where(vagrant, np.degrees(np.arcsin(2 * _uniform(keys, "vagrant_lat") - 1)), latitude)
    longitude = np.where(vagrant, 360 * _uniform(keys, "vagrant_lng"), longitude)
    return np.clip(latitude, -89.9, 89.9), (longitude + 180) % 360 - 180


def _accuracies(keys: np.ndarray) -> np.ndarray:
    """Positional accuracy in metres: mostly 5-5,000 (skewed low), 12% unknown (-1), 3% 50-250 km."""
    kind, value = _uniform(keys, "accuracy_kind"), _uniform(keys, "accuracy")
    metres = np.rint(np.where(kind < 0.03, 50_000 * 5 ** value, 5 * 1000 ** (value ** 1.6))).astype(np.int64)
    return np.where((kind >= 0.03) & (kind < 0.15), -1, metres)


def _dates(season: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Days since 1 January of the first year: a growing year and a day around the taxon's seasonal peak."""
    peak, spread = season.T
    year = np.searchsorted(_YEAR_CDF, _uniform(keys, "year"), side="right")
    day = np.floor((peak + spread * _normal(keys, "day", "day2")) % _DAYS_IN_YEAR[year]).astype(np.int64)
    return _YEAR_START[year] + day


@functools.lru_cache(maxsize=1)
def _date_strings() -> np.ndarray:
    """ISO date per day index; index -1 (unknown) is the empty string."""
    first = datetime.date(FIRST_YEAR, 1, 1)
    days = (datetime.date(LAST_YEAR + 1, 1, 1) - first).days
    return np.array([(first + datetime.timedelta(days=d)).isoformat() for d in range(days)] + [""], object)


def _photos(part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The photo rows of some observations: 1-5 each, positions 0..n-1, values hashed from the photo key."""
    count = part["photos"]
    owner = np.repeat(np.arange(len(count)), count)
    position = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    keys = _photo_keys(part["keys"][owner], position)
    low, high = PHOTO_SIDES
    return {
        "owner": owner,
        "position": position,
        "photo_id": part["first_photo_id"][owner] + position,
        "keys": keys,
        "license": np.searchsorted(_LICENSE_CDF, _uniform(keys, "license"), side="right"),
        "width": low + np.floor(_uniform(keys, "width") * (high - low + 1)).astype(np.int64),
        "height": low + np.floor(_uniform(keys, "height") * (high - low + 1)).astype(np.int64),
    }


# Photos.

_TAU = 2 * np.pi


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


_PATTERNS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {  # (u, v) in periods -> about [-1, 1]
    "stripes": lambda u, v: np.sin(_TAU * u),
    "checker": lambda u, v: 2 * np.sin(_TAU * u) * np.sin(_TAU * v),
    "dots": lambda u, v: 6 * (0.3 - np.hypot(_frac(u) - 0.5, _frac(v) - 0.5)),
    "rings": lambda u, v: np.sin(_TAU * np.hypot(u, v)),
    "waves": lambda u, v: np.sin(_TAU * (v + 0.35 * np.sin(np.pi * u))),
    "triangles": lambda u, v: 4 * (_frac(u) - _frac(v)),
    "zigzag": lambda u, v: np.sin(_TAU * (v + 2 * np.abs(_frac(u) - 0.5))),
    "grid": lambda u, v: 3 * (np.maximum(np.cos(_TAU * u), np.cos(_TAU * v)) - 0.6),
}
_PATTERN_FUNCTIONS = tuple(_PATTERNS.values())


def _render_photo(look: _Look, seed: int, width: int, height: int) -> bytes:
    """A JPEG of the taxon's pattern (random centre, scale and angle) over its mottled background, at full
    contrast on a large random ellipse (the organism), with lighting and grain.

    The pattern covers the photo with a period of 34-67 px, so a crop of 8% of the area still shows a few
    periods at 71 px. For speed it is drawn at half size as 16 pattern x 16 shade levels (dithered by noise)
    that index a 256-colour palette, then upscaled.
    """
    rng = np.random.default_rng(seed)
    h, w = height // 2, width // 2
    rows, columns = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    angle, period = look.angle + rng.normal(0, 0.15), look.period / 2 * rng.uniform(0.85, 1.2)
    cos, sin = math.cos(angle) / period, math.sin(angle) / period
    y, x = rows - rng.uniform(0, h), columns - rng.uniform(0, w)  # relative to the pattern's centre
    u = (y * sin)[:, None] + (x * cos)[None, :]
    v = (y * cos)[:, None] - (x * sin)[None, :]
    pattern = np.clip(0.5 + _PATTERN_FUNCTIONS[look.pattern](u, v), 0, 1)
    ey, ex = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    ry, rx = rng.uniform(0.3, 0.6) * h, rng.uniform(0.3, 0.6) * w
    inside = (((rows - ey) / ry) ** 2)[:, None] + (((columns - ex) / rx) ** 2)[None, :] < 1
    pattern *= np.where(inside, np.float32(15.99), np.float32(8))
    coarse = Image.fromarray(rng.integers(0, 256, (h // 10 + 2, w // 10 + 2), dtype=np.uint8))
    shade = np.asarray(coarse.resize((w, h), Image.BILINEAR), np.float32) * np.float32(15.99 / 255)
    dither = np.frombuffer(rng.bytes(2 * h * w), np.uint8).reshape(2, h, w) * np.float32(0.99 / 255)
    index = (np.minimum(pattern + dither[0], 15).astype(np.uint8) * 16
             + np.minimum(shade + dither[1], 15).astype(np.uint8))
    pixels = np.take(_palette(look, rng.uniform(0.85, 1.15)), index, axis=0)
    buffer = io.BytesIO()
    photo = Image.fromarray(pixels).resize((width, height), Image.NEAREST)
    photo.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _palette(look: _Look, brightness: float) -> np.ndarray:
    """uint8 RGB [256, 3]: entry 16 * p + s blends the background at shade s towards the foreground by p/15."""
    level = np.arange(16)[:, None] / 15
    background = np.asarray(look.background) * (1 - look.texture / 2 + look.texture * level)  # [shade, 3]
    blend = level[:, :, None]  # [pattern, 1, 1]
    colours = (1 - blend) * background[None] + blend * np.asarray(look.foreground)[None, None]
    return (np.clip(colours * brightness, 0, 1) * 255).astype(np.uint8).reshape(256, 3)


def _write_photo_files(out_dir: str, world: _World, part: dict[str, np.ndarray],
                       photos: dict[str, np.ndarray]) -> None:
    rows = part["row"][photos["owner"]]
    seeds = _stream(photos["keys"], "pixels")
    for row, photo_id, seed, width, height in zip(rows.tolist(), photos["photo_id"].tolist(), seeds.tolist(),
                                                  photos["width"].tolist(), photos["height"].tolist()):
        folder = os.path.join(out_dir, "photos", str(photo_id))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "medium.jpg"), "wb") as file:
            file.write(_render_photo(world.looks[row], seed, width, height))


# Tables.

def _tsv(columns: list[list[str]]) -> str:
    return "\n".join(map("\t".join, zip(*columns))) + "\n" if columns[0] else ""


def _strings(values: np.ndarray) -> list[str]:
    return list(map(str, values.tolist()))


def _decimals(values: np.ndarray) -> list[str]:
    return ["" if math.isnan(value) else f"{value:.10f}" for value in values.tolist()]


def _observation_lines(world: _World, part: dict[str, np.ndarray], uuids: list[str]) -> str:
    return _tsv([
        uuids,
        _strings(part["observer"]),
        _decimals(part["latitude"]),
        _decimals(part["longitude"]),
        ["" if metres < 0 else str(metres) for metres in part["accuracy"].tolist()],
        _strings(world.row_taxon[part["row"]]),
        np.array(GRADES, object)[part["grade"]].tolist(),
        _date_strings()[part["date"]].tolist(),
    ])


def _photo_lines(part: dict[str, np.ndarray], photos: dict[str, np.ndarray], uuids: list[str]) -> str:
    owner = photos["owner"]
    return _tsv([
        _uuid_strings(_stream(photos["keys"], "uuid_hi"), _stream(photos["keys"], "uuid_lo")),
        _strings(photos["photo_id"]),
        np.array(uuids, object)[owner].tolist(),
        _strings(part["observer"][owner]),
        ["jpg"] * len(owner),
        np.array(LICENSES, object)[photos["license"]].tolist(),
        _strings(photos["width"]),
        _strings(photos["height"]),
        _strings(photos["position"]),
    ])


def _taxa_lines(taxonomy: _Taxonomy) -> str:
    lines = []
    for taxon_id in sorted(taxonomy.rows):
        _, rank, name, active = taxonomy.rows[taxon_id]
        lines.append(f"{taxon_id}\t{taxonomy.ancestry(taxon_id)}\t{RANK_LEVELS[rank]}\t{rank}\t{name}\t"
                     f"{'true' if active else 'false'}\n")
    return "".join(lines)


_NAME_PARTS = (_ONSETS, _VOWELS, _ONSETS, ("a", "e", "o", "y"), _ONSETS, _VOWELS, _ONSETS,
               ("er", "son", "an", "ez", "i"))


def _observer_lines(seed: int, observer_ids: np.ndarray) -> str:
    """Made-up logins and names, picked by the digits of a hash of the observer id; as in the Open Data
    tables, a missing name is written `None`."""
    lines, logins = [], set()
    hashes = _keys(seed, np.zeros_like(observer_ids), observer_ids).tolist()
    for observer_id, value in zip(observer_ids.tolist(), hashes):
        parts = []
        for table in _NAME_PARTS:
            value, digit = divmod(value, len(table))
            parts.append(table[digit])
        first, last = "".join(parts[:4]).capitalize(), "".join(parts[4:]).capitalize()
        login = (first[0] + last if value % 2 else first + last).lower()
        login = f"{login}{observer_id}" if login in logins else login
        logins.add(login)
        lines.append(f"{observer_id}\t{login}\t{first + ' ' + last if value % 5 < 3 else 'None'}\n")
    return "".join(lines)


def write_sample_export(out_dir: str, species: int = 24, seed: int = 0, scale: float = 1.0,
                        tables_only: bool = False, observations: int | None = None) -> dict:
    """Writes observations.csv, photos.csv, taxa.csv (tab-separated, Open Data columns) and
    photos/<photo_id>/medium.jpg under out_dir; returns counts {"taxa":..,"observations":..,"photos":..}.

    `species` active species (plus one inactive species and one hybrid); `observations` the scale-1 total
    (default 40 per species-level taxon); `scale` a later snapshot with that many times the observations;
    `tables_only` writes no photos. Also writes observers.csv. The same arguments give the same bytes.
    """
    if species < 1 or scale <= 0 or seed < 0 or (observations is not None and observations < 0):
        raise ValueError("need species >= 1, scale > 0, seed >= 0 and observations >= 0")
    world = _build_world(species, seed, observations)
    snapshot = _snapshot(world, seed, scale)
    os.makedirs(out_dir, exist_ok=True)
    photo_count, observers = 0, []
    with open(os.path.join(out_dir, "observations.csv"), "w", encoding="utf-8") as observation_file, \
            open(os.path.join(out_dir, "photos.csv"), "w", encoding="utf-8") as photo_file:
        observation_file.write("\t".join(OBSERVATION_COLUMNS) + "\n")
        photo_file.write("\t".join(PHOTO_COLUMNS) + "\n")
        for start in range(0, len(snapshot["keys"]), CHUNK_ROWS):
            part = {name: values[start:start + CHUNK_ROWS] for name, values in snapshot.items()}
            part.update(_observation_fields(world, scale, part))
            uuids = _uuid_strings(_stream(part["keys"], "uuid_hi"), _stream(part["keys"], "uuid_lo"))
            photos = _photos(part)
            observation_file.write(_observation_lines(world, part, uuids))
            photo_file.write(_photo_lines(part, photos, uuids))
            if not tables_only:
                _write_photo_files(out_dir, world, part, photos)
            photo_count += len(photos["owner"])
            observers.append(np.unique(part["observer"]))
    with open(os.path.join(out_dir, "taxa.csv"), "w", encoding="utf-8") as taxa_file:
        taxa_file.write("\t".join(TAXON_COLUMNS) + "\n" + _taxa_lines(world.taxonomy))
    with open(os.path.join(out_dir, "observers.csv"), "w", encoding="utf-8") as observer_file:
        observer_ids = np.unique(np.concatenate(observers or [np.zeros(0, np.int64)]))
        observer_file.write("\t".join(OBSERVER_COLUMNS) + "\n" + _observer_lines(seed, observer_ids))
    return {"taxa": len(world.taxonomy.rows), "observations": len(snapshot["keys"]), "photos": photo_count}
