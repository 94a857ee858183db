"""The Transform analyzer's vocabulary of leaf taxa, checked against taxonomy.csv before a Trainer trains.

The labels are the export's `leaf_class_id`s, written from taxonomy.csv; Examples from elsewhere (or a
taxonomy from another run) could hold leaves the taxonomy does not have, and a model trained on them would
put photos in the wrong classes. The check names the taxa.
"""
from __future__ import annotations

import tensorflow_transform as tft

from inatvision.components.transform.preprocessing import LEAF_TAXA_VOCABULARY
from inatvision.errors import InputError
from inatvision.taxonomy import TaxonTree

MAX_NAMED = 10


def unknown_leaves(vocabulary: list[str], leaf_taxon_ids: list[int]) -> list[str]:
    """The vocabulary's taxa that are not leaves of the taxonomy, in vocabulary order."""
    leaves = {str(taxon) for taxon in leaf_taxon_ids}
    return [taxon for taxon in vocabulary if taxon not in leaves]


def check_against_taxonomy(transform_output: tft.TFTransformOutput, tree: TaxonTree, taxonomy_path: str) -> None:
    """Raises InputError when the examples hold leaf taxa that taxonomy.csv does not list as leaves."""
    vocabulary = [taxon.decode() if isinstance(taxon, bytes) else str(taxon)
                  for taxon in transform_output.vocabulary_by_name(LEAF_TAXA_VOCABULARY)]
    unknown = unknown_leaves(vocabulary, tree.leaf_taxon_ids)
    if unknown:
        named = ", ".join(unknown[:MAX_NAMED]) + (f" and {len(unknown) - MAX_NAMED} more" if len(unknown) > MAX_NAMED
                                                  else "")
        raise InputError(f"{taxonomy_path}: the training examples hold {len(unknown)} leaf taxa that are not leaves "
                         f"of this taxonomy ({named}); the examples and the taxonomy come from different exports")
