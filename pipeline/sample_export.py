"""A generated iNaturalist Open Data export: a small, deterministic synthetic world for demos and tests.

The tables follow the Open Data layout (docs: inat-recipe.md, section 1): tab-separated `observations.csv`,
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
import io
import math
import os
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image

from pipeline.config import CC_LICENSES

LIFE_ID = 48460
RANK_LEVELS = {
    "stateofmatter": 100, "kingdom": 70, "phylum": 60, "subphylum": 57, "class": 50, "order": 40,
    "family": 30, "subfamily": 27, "tribe": 25, "genus": 20, "subgenus": 15, "section": 13, "complex": 11,
    "species": 10, "hybrid": 10, "subspecies": 5,
}
OBSERVATIONS_PER_SPECIES = 40  # default scale-1 total: this many per observed species-level taxon
CHUNK_ROWS = 100_000

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
                  (47125, "Angiospermae", "subphylum"), (47124, "Magnoliopsida", "class")), _DECLINED, "section"),
    _Clade(0.24, _ARTHROPODA + ((372739, "Hexapoda", "subphylum"), (47158, "Insecta", "class")),
           _INSECT, "subgenus"),
    _Clade(0.16, _CHORDATA + ((3, "Aves", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.10, ((47170, "Fungi", "kingdom"), (47169, "Basidiomycota", "phylum"),
                  (492000, "Agaricomycotina", "subphylum"), (50814, "Agaricomycetes", "class")), _DECLINED, "section"),
    _Clade(0.05, _CHORDATA + ((40151, "Mammalia", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.04, _CHORDATA + ((26036, "Reptilia", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.04, _CHORDATA + ((20978, "Amphibia", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.03, _CHORDATA + ((47178, "Actinopterygii", "class"),), _VERTEBRATE, "complex"),
    _Clade(0.03, (_ANIMALIA, (47115, "Mollusca", "phylum"), (47114, "Gastropoda", "class")), _INVERTEBRATE,
           "subgenus"),
    _Clade(0.03, _ARTHROPODA + ((245097, "Chelicerata", "subphylum"), (47119, "Arachnida", "class")),
           _INVERTEBRATE, "subgenus"),
)

_ONSETS = ("b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "ch", "ph", "th", "tr", "br",
           "cr", "st", "sc")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ae", "au", "ia")
_CODAS = ("", "", "", "", "n", "r", "s", "l", "m", "x", "nt")
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
    clade: _Clade
    species: list[int]  # active species ids
    grouped: bool  # two of its species sit under a subgenus, section or complex


@dataclass
class _Taxonomy:
    """The tree as rows taxon_id -> (parent_id, rank, name, active), in creation order."""

    rng: np.random.Generator
    id_pool: list[int]
    rows: dict[int, tuple[int | None, str, str, bool]] = field(default_factory=dict)
    genera: list[_Genus] = field(default_factory=list)

    def add(self, parent: int | None, rank: str, name: str, taxon_id: int | None = None,
            active: bool = True) -> int:
        taxon_id = self.id_pool.pop() if taxon_id is None else taxon_id
        self.rows[taxon_id] = (parent, rank, name, active)
        return taxon_id

    def ancestry(self, taxon_id: int) -> str:
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
    """Life, the iconic lineages and, per class, orders, families, optional subfamily and tribe, genera of
    1-4 species, and sometimes a subgenus, section or complex holding two species of a genus."""
    span = 40 * (species + 10)
    pool = (1_000_001 + rng.choice(span, size=12 * (species + 10), replace=False)).tolist()
    taxonomy = _Taxonomy(rng, pool)
    names = _NameMaker(rng)
    taxonomy.add(None, "stateofmatter", "Life", LIFE_ID)
    weights = np.array([clade.weight for clade in _CLADES])
    for clade, count in zip(_CLADES, _allocate(species, weights)):
        if count:
            _add_clade(taxonomy, names, clade, int(count))
    return taxonomy


