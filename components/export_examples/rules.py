"""Inclusion criteria, the leaf model, splits and photo choices, as pure functions (docs/recipe.md, section 1).

The Beam stage calls these per row or per group and the preview calls the same ones, so both always agree.
Reasons an observation or photo is not used are stable snake_case strings (the constants below).
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import heapq
from typing import Iterable, Mapping, NamedTuple, Optional, Sequence, TypeVar, Union

from inatvision import features
from inatvision.components.export_examples.tables import OBSERVATIONS, PHOTOS, Observation, Photo, Rejection, open_text
from inatvision.components.export_examples.taxonomy import Taxonomy
from inatvision.taxonomy import GENUS_LEVEL, LIFE_TAXON_ID, RANK_LEVELS, SPECIES_LEVEL, TaxonRow, csv_text

CASUAL = "casual"
NO_PHOTO = "no_photo"
NO_ALLOWED_PHOTO = "no_allowed_photo"  # photos exist, none with an allowed licence
LICENSE_NOT_ALLOWED = "license_not_allowed"
LICENSE_UNKNOWN = "license_unknown"  # empty licence column; allowed only when `licenses` lists "unknown"
UNKNOWN_TAXON = "unknown_taxon"
# A photos.csv row whose observation has no row in observations.csv at all; a photo of a rejected observation row
# is not one (the row's rejection counts it). Counted with the rejected rows, by photos.csv line.
NO_OBSERVATION = "no_observation"
EXCLUDED_TAXON = "excluded_taxon"
INNER_NODE = "inner_node"
BELOW_CUTOFF = "below_cutoff"
OVER_OBSERVATION_CAP = "over_observation_cap"  # photos beyond the per-observation limit
OVER_LEAF_CAP = "over_leaf_cap"
UNKNOWN_LICENSE_NAME = "UNKNOWN"

SPLIT_BUCKETS = 10_000
TAXA_REPORT_COLUMNS = ("taxon_id", "name", "rank", "parent_taxon_id", "observations", "research_grade",
                       "status", "reason")

T = TypeVar("T")


def not_research_grade_in(split: str) -> str:
    """Drop reason of a non-research observation whose fixed split is eval or test."""
    return f"not_research_grade_in_{split}"


# ---------------------------------------------------------------- licences and counting


def allowed_licenses(licenses: Iterable[str]) -> frozenset[str]:
    """The configured licence codes, normalized for `license_drop_reason`."""
    return frozenset(code.strip().upper() for code in licenses)


def license_drop_reason(license: str, allowed: frozenset[str]) -> Optional[str]:
    """None when the photo's licence is allowed; an empty licence is "unknown"."""
    code = license.strip().upper() or UNKNOWN_LICENSE_NAME
    if code in allowed:
        return None
    return LICENSE_UNKNOWN if code == UNKNOWN_LICENSE_NAME else LICENSE_NOT_ALLOWED


def observation_rejection(observation: Observation, line_no: int, taxonomy: Taxonomy) -> Optional[Rejection]:
    """An observation whose taxon is not in the validated taxonomy is rejected (`unknown_taxon`)."""
    if observation.taxon_id in taxonomy:
        return None
    return Rejection(UNKNOWN_TAXON, line_no, OBSERVATIONS)


def orphan_photo_rejection(line_no: int) -> Rejection:
    """A photos.csv row (at `line_no`) whose observation has no row in observations.csv (`no_observation`)."""
    return Rejection(NO_OBSERVATION, line_no, PHOTOS)


def count_observation(observation: Observation, has_allowed_photo: bool) -> Union[tuple[int, bool], str]:
    """(taxon id, research grade?) of an observation that counts toward the inclusion cut-off, or why it
    does not: casual observations never count (`include_casual` only lets them give train photos), nor do
    observations without a photo under an allowed licence."""
    if observation.quality_grade == "casual":
        return CASUAL
    if not has_allowed_photo:
        return NO_ALLOWED_PHOTO
    return observation.taxon_id, observation.quality_grade == "research"


def add_counts(counts: dict[int, tuple[int, int]], taxon_id: int, is_research: bool) -> None:
    """Adds one counted observation to `counts` (taxon id -> (observations, research grade))."""
    observations, research = counts.get(taxon_id, (0, 0))
    counts[taxon_id] = (observations + 1, research + int(is_research))


# ---------------------------------------------------------------- leaf model


@dataclasses.dataclass(frozen=True)
class TaxonOutcome:
    """One taxa_report.csv row's verdict. Counts are those counting toward the taxon: its own, its
    subspecies', and those passed up from descendants that did not qualify."""

    status: str  # species_leaf, genus_leaf, leaf, inner, excluded, below_cutoff
    reason: str
    observations: int
    research_grade: int


@dataclasses.dataclass(frozen=True)
class LeafModel:
    """The classes of one export: leaves with dense ids, inner nodes, and a verdict per taxon seen."""

    taxonomy: Taxonomy
    max_leaf_level: float
    leaf_class_ids: Mapping[int, int]  # leaf taxon id -> leaf_class_id, dense, in taxon id order
    inner_leaf_counts: Mapping[int, int]  # inner taxon id -> number of leaves below it
    outcomes: Mapping[int, TaxonOutcome]  # every taxon with observations or in the model

    @property
    def num_classes(self) -> int:
        return len(self.leaf_class_ids)

    def leaf_for(self, taxon_id: int) -> Optional[int]:
        """The leaf an observation of `taxon_id` trains, or None (see `drop_reason`)."""
        return self._route(taxon_id)[0]

    def drop_reason(self, taxon_id: int) -> Optional[str]:
        """Why an observation of `taxon_id` has no leaf: unknown_taxon, excluded_taxon, inner_node or
        below_cutoff; None when it has one."""
        return self._route(taxon_id)[1]

    def _route(self, taxon_id: int) -> tuple[Optional[int], Optional[str]]:
        start = self.taxonomy.counting_taxon(taxon_id)
        if start is None:
            return None, (EXCLUDED_TAXON if taxon_id in self.taxonomy else UNKNOWN_TAXON)
        node, reason = self._end_of_data(start)
        return (node, None) if reason is None else (None, reason)

    def _end_of_data(self, taxon_id: int) -> tuple[Optional[int], Optional[str]]:
        """Where data entering `taxon_id` ends: (leaf, None); (inner node, inner_node) when an inner node at a
        rank that could be a leaf takes it; (None, below_cutoff) when it climbs past every such rank."""
        for node in self.taxonomy.lineage(taxon_id):
            if node in self.leaf_class_ids:
                return node, None
            if node in self.inner_leaf_counts:
                if self.taxonomy.taxa[node].rank_level <= self.max_leaf_level:
                    return node, INNER_NODE
                break
        return None, BELOW_CUTOFF


class _Cutoff(NamedTuple):
    min_observations: int
    min_research_grade: int
    max_leaf_rank: str

    @property
    def max_leaf_level(self) -> float:
        return RANK_LEVELS[self.max_leaf_rank]


def can_be_leaf(rank_level: float, max_leaf_level: float) -> bool:
    """Species, and genus up to `max_leaf_level`; ranks between species and genus never are."""
    return rank_level == SPECIES_LEVEL or GENUS_LEVEL <= rank_level <= max_leaf_level


def qualifies(observations: int, research_grade: int, min_observations: int, min_research_grade: int) -> bool:
    return observations >= min_observations and research_grade >= min_research_grade


def build_leaf_model(taxonomy: Taxonomy, counts: Mapping[int, tuple[int, int]], min_observations: int,
                     min_research_grade: int, max_leaf_rank: str) -> LeafModel:
    """Walks the tree bottom-up (docs/recipe.md, section 1). `counts` is per observed taxon id (observations,
    research grade), as `count_observation` gives them; taxa not in `taxonomy` are ignored.

    A taxon that qualifies and may be a leaf becomes one unless a descendant already is; otherwise its data
    passes to its parent. Ancestors of leaves are inner nodes and data reaching them is not used.
    """
    cutoff = _Cutoff(min_observations, min_research_grade, max_leaf_rank)
    pooled = _counts_by_counting_taxon(taxonomy, counts)
    leaves: list[int] = []
    leaves_below: collections.Counter[int] = collections.Counter()
    for node in _bottom_up(taxonomy, pooled):
        taxon = taxonomy.taxa[node]
        observations, research = pooled.get(node, (0, 0))
        is_leaf = (not leaves_below[node] and can_be_leaf(taxon.rank_level, cutoff.max_leaf_level)
                   and qualifies(observations, research, min_observations, min_research_grade))
        if is_leaf:
            leaves.append(node)
        if taxon.parent_id is None:
            continue
        if is_leaf or leaves_below[node]:
            leaves_below[taxon.parent_id] += leaves_below[node] + int(is_leaf)
        else:
            parent_observations, parent_research = pooled.get(taxon.parent_id, (0, 0))
            pooled[taxon.parent_id] = (parent_observations + observations, parent_research + research)
    model = LeafModel(
        taxonomy=taxonomy,
        max_leaf_level=cutoff.max_leaf_level,
        leaf_class_ids={leaf: index for index, leaf in enumerate(sorted(leaves))},
        inner_leaf_counts={node: count for node, count in leaves_below.items() if count},
        outcomes={},
    )
    return dataclasses.replace(model, outcomes=_outcomes(model, pooled, counts, cutoff))


def _counts_by_counting_taxon(taxonomy: Taxonomy, counts: Mapping[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    pooled: dict[int, tuple[int, int]] = {}
    for taxon_id, (observations, research) in counts.items():
        target = taxonomy.counting_taxon(taxon_id)
        if target is not None:
            known_observations, known_research = pooled.get(target, (0, 0))
            pooled[target] = (known_observations + observations, known_research + research)
    return pooled


def _bottom_up(taxonomy: Taxonomy, pooled: Mapping[int, tuple[int, int]]) -> list[int]:
    """The counted taxa and all their ancestors, every taxon before its parent."""
    depth: dict[int, int] = {}
    for taxon_id in pooled:
        lineage = taxonomy.lineage(taxon_id)
        for distance, node in enumerate(lineage):
            depth[node] = len(lineage) - 1 - distance
    return sorted(depth, key=lambda node: (-depth[node], node))


def _outcomes(model: LeafModel, pooled: Mapping[int, tuple[int, int]], counts: Mapping[int, tuple[int, int]],
              cutoff: _Cutoff) -> dict[int, TaxonOutcome]:
    """A verdict for every counted taxon, every taxon data passed through, and every excluded observed taxon."""
    taxonomy = model.taxonomy
    outcomes = {}
    for node, (observations, research) in pooled.items():
        status, reason = _verdict(model, node, observations, research, cutoff)
        outcomes[node] = TaxonOutcome(status, reason, observations, research)
    for node, leaf_count in model.inner_leaf_counts.items():
        if node not in outcomes:
            outcomes[node] = TaxonOutcome("inner", _inner_reason(leaf_count, 0), 0, 0)
    for taxon_id, (observations, research) in counts.items():
        if taxon_id not in taxonomy or taxon_id in outcomes:
            continue
        counting = taxonomy.counting_taxon(taxon_id)
        if counting is None:
            outcome = TaxonOutcome("excluded", taxonomy.exclusion(taxon_id), observations, research)
        else:
            reason = f"counts toward {taxonomy.describe(counting)}"
            outcome = TaxonOutcome("below_cutoff", reason, observations, research)
        outcomes[taxon_id] = outcome
    return outcomes


def _verdict(model: LeafModel, node: int, observations: int, research: int, cutoff: _Cutoff) -> tuple[str, str]:
    taxon = model.taxonomy.taxa[node]
    if node in model.leaf_class_ids:
        status = {"species": "species_leaf", "genus": "genus_leaf"}.get(taxon.rank, "leaf")
        return status, f"qualifies with {observations} observations, {research} research-grade"
    if node in model.inner_leaf_counts:
        return "inner", _inner_reason(model.inner_leaf_counts[node], observations)
    if taxon.rank_level > cutoff.max_leaf_level:
        why = f"{taxon.rank} is above max_leaf_rank {cutoff.max_leaf_rank}"
    elif not can_be_leaf(taxon.rank_level, cutoff.max_leaf_level):
        why = f"{taxon.rank or 'this rank'} is never a leaf"
    else:
        why = _shortfall(observations, research, cutoff)
    return "below_cutoff", f"{why}; {_where_data_goes(model, taxon.parent_id)}"


def _inner_reason(leaf_count: int, observations: int) -> str:
    leaves = f"{leaf_count} descendant leaf" if leaf_count == 1 else f"{leaf_count} descendant leaves"
    unused = f"; {observations} observations here not used" if observations else ""
    return f"inner node: {leaves}{unused}"


def _shortfall(observations: int, research: int, cutoff: _Cutoff) -> str:
    missing = []
    if observations < cutoff.min_observations:
        missing.append(f"{cutoff.min_observations - observations} more observations")
    if research < cutoff.min_research_grade:
        missing.append(f"{cutoff.min_research_grade - research} more research-grade observations")
    return "needs " + " and ".join(missing)


def _where_data_goes(model: LeafModel, parent_id: Optional[int]) -> str:
    if parent_id is None:
        return "data not used"
    node, reason = model._end_of_data(parent_id)
    if reason is None:
        return f"data passed to {model.taxonomy.describe(node)}"
    if reason == INNER_NODE:
        return f"data not used: it reaches inner node {model.taxonomy.describe(node)}"
    return "data not used: no ancestor qualifies"


# ---------------------------------------------------------------- taxonomy.csv and taxa_report.csv


def taxonomy_rows(leaf_model: LeafModel) -> list[TaxonRow]:
    """`taxonomy.csv` (inatvision.taxonomy): every leaf and every ancestor of a leaf but Life, in taxon id order."""
    taxonomy = leaf_model.taxonomy
    nodes = (set(leaf_model.leaf_class_ids) | set(leaf_model.inner_leaf_counts)) - {LIFE_TAXON_ID}
    rows = []
    for node in sorted(nodes):
        taxon = taxonomy.taxa[node]
        iconic = taxonomy.iconic_taxon(node)
        leaf_class_id = leaf_model.leaf_class_ids.get(node)
        rows.append(TaxonRow(
            parent_taxon_id=None if taxon.parent_id in (None, LIFE_TAXON_ID) else taxon.parent_id,
            taxon_id=node,
            rank_level=taxon.rank_level,
            leaf_class_id=leaf_class_id,
            iconic_class_id=None if iconic is None else features.ICONIC_TAXA.index(iconic),
            spatial_class_id=leaf_class_id,
            name=taxon.name,
            rank=taxon.rank,
        ))
    return rows


def taxa_report_rows(leaf_model: LeafModel) -> list[dict]:
    """docs/contract.md, `taxa_report.csv`: every taxon that had observations or is in the model, by taxon id."""
    taxonomy = leaf_model.taxonomy
    rows = []
    for taxon_id in sorted(leaf_model.outcomes):
        outcome = leaf_model.outcomes[taxon_id]
        taxon = taxonomy.taxa[taxon_id]
        rows.append({
            "taxon_id": taxon_id, "name": taxon.name, "rank": taxon.rank, "parent_taxon_id": taxon.parent_id,
            "observations": outcome.observations, "research_grade": outcome.research_grade,
            "status": outcome.status, "reason": outcome.reason,
        })
    return rows


def write_taxa_report_csv(rows: Sequence[Mapping], path: str) -> None:
    """In the bytes of taxonomy.csv (`inatvision.taxonomy.csv_text`)."""
    with open_text(path, "w") as f:
        f.write(csv_text(TAXA_REPORT_COLUMNS, ([row[column] for column in TAXA_REPORT_COLUMNS] for row in rows)))


# ---------------------------------------------------------------- splits and photos


def split_for_observation(observation_uuid: str, seed: int, eval_fraction: float, test_fraction: float) -> str:
    """"train", "eval" or "test" from a fixed hash bucket of the uuid: an observation keeps its split
    across exports and quality-grade changes (test takes the lowest buckets, then eval)."""
    digest = hashlib.sha256(f"{seed}:{observation_uuid}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % SPLIT_BUCKETS
    if bucket < round(test_fraction * SPLIT_BUCKETS):
        return "test"
    if bucket < round((test_fraction + eval_fraction) * SPLIT_BUCKETS):
        return "eval"
    return "train"


def select_photos(split: str, quality_grade: str, photos: Sequence[Photo], max_photos_per_observation: int) -> list[Photo]:
    """Train: the first `max_photos_per_observation` photos by position. Eval and test: the first photo of a
    research-grade observation, none of any other (it is dropped, never moved to train)."""
    ordered = sorted(photos, key=lambda photo: (photo.position, photo.photo_id))
    if split == "train":
        return ordered[:max_photos_per_observation]
    return ordered[:1] if quality_grade == "research" else []


def cap_key(photo_id: int, seed: int) -> int:
    """Ranking key for the per-leaf caps: a leaf keeps its photos with the lowest keys."""
    digest = hashlib.sha256(f"cap:{seed}:{photo_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def apply_caps(keyed_items: Iterable[tuple[int, T]], cap: int) -> tuple[list[T], int]:
    """The `cap` items with the lowest keys, in key order, and how many were dropped (`over_leaf_cap`)."""
    items = list(keyed_items)
    kept = heapq.nsmallest(cap, items, key=lambda keyed: keyed[0])
    return [item for _, item in kept], len(items) - len(kept)


def leaf_cap(split: str, config) -> int:
    """The per-leaf photo cap of a split (`config` is an ExportConfig)."""
    return {"train": config.max_train_photos_per_leaf, "eval": config.max_eval_photos_per_leaf,
            "test": config.max_test_photos_per_leaf}[split]


@dataclasses.dataclass(frozen=True)
class ObservationPlan:
    """What one observation gives before the per-leaf caps."""

    split: str
    leaf_taxon_id: int
    photos: tuple[Photo, ...]
    dropped_photos: Mapping[str, int]  # photo drop reason -> count, for this observation's other photos


def plan_observation(observation: Observation, photos: Iterable[Photo], leaf_model: LeafModel,
                     config) -> Union[ObservationPlan, str]:
    """The split, leaf and photos of one observation, or the reason it gives none (`config`: ExportConfig)."""
    if observation.quality_grade == "casual" and not config.include_casual:
        return CASUAL
    allowed = allowed_licenses(config.licenses)
    licensed = []
    dropped: collections.Counter[str] = collections.Counter()
    for photo in photos:
        reason = license_drop_reason(photo.license, allowed)
        if reason is None:
            licensed.append(photo)
        else:
            dropped[reason] += 1
    if not licensed:
        return NO_ALLOWED_PHOTO if dropped else NO_PHOTO
    leaf = leaf_model.leaf_for(observation.taxon_id)
    if leaf is None:
        return leaf_model.drop_reason(observation.taxon_id)
    split = split_for_observation(observation.uuid, config.seed, config.eval_fraction, config.test_fraction)
    selected = select_photos(split, observation.quality_grade, licensed, config.max_photos_per_observation)
    if not selected:
        return not_research_grade_in(split)
    if len(licensed) > len(selected):
        dropped[OVER_OBSERVATION_CAP] += len(licensed) - len(selected)
    return ObservationPlan(split, leaf, tuple(selected), dict(dropped))
