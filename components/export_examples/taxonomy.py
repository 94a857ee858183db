"""The taxonomy tree of an export, validated: which taxa exist, which are excluded, where each counts."""
from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Optional

from inatvision import features
from inatvision.components.export_examples.tables import TAXA, Rejection, Taxon
from inatvision.taxonomy import SPECIES_LEVEL


@dataclasses.dataclass(frozen=True)
class Taxonomy:
    """Valid taxa by id; excluded ones (inactive, hybrid, or inside such a taxon) with the reason."""

    taxa: Mapping[int, Taxon]
    exclusions: Mapping[int, str]  # taxon id -> readable reason, e.g. "inactive taxon"
    rejected: Mapping[int, str]  # taxon id -> rejection reason, for taxa.csv rows left out of the tree

    @classmethod
    def from_taxa(cls, taxa: Iterable[Taxon], lines: Optional[Mapping[int, int]] = None
                  ) -> tuple["Taxonomy", list[Rejection]]:
        """Validates the tree: ancestries naming unknown ids and cycles are rejected with every descendant,
        a repeated id keeps its first row; `lines` gives taxa.csv line numbers for the rejections."""
        lines = lines or {}
        by_id: dict[int, Taxon] = {}
        rejections = []
        for taxon in taxa:
            if taxon.taxon_id in by_id:
                rejections.append(Rejection("duplicate_taxon", lines.get(taxon.taxon_id, 0), TAXA))
            else:
                by_id[taxon.taxon_id] = taxon
        rejected = _invalid_ancestries(by_id)
        valid = {taxon_id: taxon for taxon_id, taxon in by_id.items() if taxon_id not in rejected}
        rejections += [Rejection(reason, lines.get(taxon_id, 0), TAXA) for taxon_id, reason in rejected.items()]
        rejections.sort(key=lambda rejection: rejection.line)
        return cls(valid, _exclusions(valid), rejected), rejections

    def __contains__(self, taxon_id: int) -> bool:
        return taxon_id in self.taxa

    def lineage(self, taxon_id: int) -> list[int]:
        """The taxon and its ancestors, nearest first."""
        chain = []
        current: Optional[int] = taxon_id
        while current is not None:
            chain.append(current)
            current = self.taxa[current].parent_id
        return chain

    def exclusion(self, taxon_id: int) -> Optional[str]:
        return self.exclusions.get(taxon_id)

    def counting_taxon(self, taxon_id: int) -> Optional[int]:
        """The taxon an observation of `taxon_id` counts toward: itself, or for taxa below species the
        nearest ancestor at species level or above; None when the taxon is unknown or excluded."""
        if taxon_id not in self.taxa or taxon_id in self.exclusions:
            return None
        for ancestor in self.lineage(taxon_id):
            if self.taxa[ancestor].rank_level >= SPECIES_LEVEL:
                return ancestor
        return None

    def iconic_taxon(self, taxon_id: int) -> Optional[str]:
        """The name of the nearest ancestor-or-self in `features.ICONIC_TAXA`, or None."""
        for ancestor in self.lineage(taxon_id):
            if self.taxa[ancestor].name in features.ICONIC_TAXA:
                return self.taxa[ancestor].name
        return None

    def describe(self, taxon_id: int) -> str:
        """"genus Quercus": for readable reasons."""
        taxon = self.taxa[taxon_id]
        return f"{taxon.rank} {taxon.name}"


def is_hybrid(taxon: Taxon) -> bool:
    return "hybrid" in taxon.rank


def _invalid_ancestries(by_id: Mapping[int, Taxon]) -> dict[int, str]:
    """Taxa whose ancestry names an unknown id or loops, and every taxon below one of them."""
    invalid: dict[int, str] = {}
    for taxon in by_id.values():
        if taxon.taxon_id in taxon.ancestry:
            invalid[taxon.taxon_id] = "ancestry_cycle"
        elif any(ancestor not in by_id for ancestor in taxon.ancestry):
            invalid[taxon.taxon_id] = "unknown_ancestor"
    checked: set[int] = set()
    for start in by_id:
        path: list[int] = []
        on_path: set[int] = set()
        current: Optional[int] = start
        while current is not None and current not in checked and current not in invalid:
            if current in on_path:
                invalid[current] = "ancestry_cycle"
                break
            path.append(current)
            on_path.add(current)
            current = by_id[current].parent_id
        inherited = invalid.get(current) if current is not None else None
        for taxon_id in path:
            if inherited is not None:
                invalid.setdefault(taxon_id, inherited)
            checked.add(taxon_id)
    return invalid


def _exclusions(taxa: Mapping[int, Taxon]) -> dict[int, str]:
    """Inactive taxa and hybrids, and every taxon inside one of them (named after the nearest)."""
    nearest: dict[int, Optional[int]] = {}  # taxon id -> nearest excluded ancestor-or-self
    for start in taxa:
        path = []
        current: Optional[int] = start
        while current is not None and current not in nearest:
            path.append(current)
            current = taxa[current].parent_id
        found = nearest[current] if current is not None else None
        for taxon_id in reversed(path):
            if _own_exclusion(taxa[taxon_id]):
                found = taxon_id
            nearest[taxon_id] = found
    reasons = {}
    for taxon_id, excluded_id in nearest.items():
        if excluded_id == taxon_id:
            reasons[taxon_id] = _own_exclusion(taxa[taxon_id])
        elif excluded_id is not None:
            reasons[taxon_id] = f"inside excluded {taxa[excluded_id].rank} {taxa[excluded_id].name}"
    return reasons


def _own_exclusion(taxon: Taxon) -> Optional[str]:
    if not taxon.active:
        return "inactive taxon"
    if is_hybrid(taxon):
        return "hybrid"
    return None
