"""The export rules on real iNaturalist data (../shared/data): preview, the real taxonomy tree, conversion."""
import csv

import pytest

from components.export_examples import convert, rules, tables
from components.export_examples.preview import run_preview
from components.export_examples.tables import Taxon
from components.export_examples.taxonomy import RANK_LEVELS, Taxonomy
from pipeline.config import CC_LICENSES, ExportConfig

WITH_UNKNOWN_LICENCES = CC_LICENSES + ["unknown"]


def test_preview_of_the_open_data_tables_counts_their_warts(shared_data, tmp_path):
    summary = run_preview(str(shared_data / "open-data-format"), str(tmp_path), ExportConfig())
    assert summary["rows_read"] == {"taxa": 50, "photos": 50, "observations": 50}
    # The 50 taxa rows name ancestors that the 50-row sample leaves out, so none forms a tree.
    assert summary["rejected"] == {"unknown_ancestor": 50, "wrong_field_count": 2, "unknown_taxon": 48}
    assert summary["rejected_examples"]["wrong_field_count"] == ["observations.csv:27", "observations.csv:28"]
    assert summary["rejected_examples"]["unknown_taxon"][:2] == ["observations.csv:2", "observations.csv:3"]
    assert summary["num_classes"] == 0
    assert (tmp_path / "taxonomy.csv").read_text() == ",".join(rules.TAXONOMY_COLUMNS) + "\n"


def test_preview_of_real_photos_needs_the_unknown_licence_allowed(shared_data, tmp_path):
    summary = run_preview(str(shared_data / "real-photos-sample"), str(tmp_path),
                          ExportConfig(min_observations=20, min_research_grade=10))
    assert summary["photos_not_allowed"] == {"license_unknown": 328}
    assert summary["observations_not_counted"] == {"no_allowed_photo": 328}
    assert summary["num_classes"] == 0


def test_preview_of_real_photos(shared_data, tmp_path):
    config = ExportConfig(min_observations=20, min_research_grade=10, licenses=WITH_UNKNOWN_LICENCES)
    summary = run_preview(str(shared_data / "real-photos-sample"), str(tmp_path), config)
    assert summary["rows_read"] == {"taxa": 28, "photos": 328, "observations": 328}
    assert summary["rejected"] == {}
    assert summary["num_classes"] == 10 and summary["leaves_by_rank"] == {"species": 10}
    assert summary["counted_observations"] == {"leaf": 328}
    rows = rules.read_taxonomy_csv(str(tmp_path / "taxonomy.csv"))
    assert len(rows) == 10 + 7 + 7 + 1  # leaves, genera, families, Plantae
    assert sorted(row["leaf_class_id"] for row in rows if row["leaf_class_id"] is not None) == list(range(10))
    assert {row["iconic_class_id"] for row in rows} == {0}
    report = {int(row["taxon_id"]): row for row in csv.DictReader(open(tmp_path / "taxa_report.csv"))}
    pteridium = report[9219894]
    assert (pteridium["observations"], pteridium["status"]) == ("57", "species_leaf")  # 30 + 27 of its subspecies
    assert report[9859134]["reason"] == "counts toward species Pteridium aquilinum"


def test_preview_of_real_photos_with_a_higher_cutoff_falls_back_to_genera(shared_data, tmp_path):
    config = ExportConfig(min_observations=31, min_research_grade=31, licenses=WITH_UNKNOWN_LICENCES)
    summary = run_preview(str(shared_data / "real-photos-sample"), str(tmp_path), config)
    assert summary["leaves_by_rank"] == {"species": 2, "genus": 3}  # A. crustacea, P. aquilinum; Oxalis, Viola, Lysimachia
    assert summary["counted_observations"] == {"leaf": 268, "below_cutoff": 60}  # Sequoia and Eschscholzia: 30 each
    report = {int(row["taxon_id"]): row for row in csv.DictReader(open(tmp_path / "taxa_report.csv"))}
    assert report[9449690]["reason"] == (
        "needs 1 more observations and 1 more research-grade observations; data not used: no ancestor qualifies")
    assert report[9093254]["reason"].endswith("data passed to genus Oxalis")


def test_every_real_photo_is_found(shared_data):
    root = str(shared_data / "real-photos-sample")
    header = tables.read_header(f"{root}/photos.csv")
    index = tables.check_columns(f"{root}/photos.csv", header, tables.REQUIRED_COLUMNS[tables.PHOTOS])
    photos = [tables.parse_photo(fields, index, line) for line, fields in tables.iter_rows(f"{root}/photos.csv")]
    missing = [p.photo_id for p in photos if tables.photo_path(root, p.photo_id, "medium", p.extension) is None]
    assert len(photos) == 328 and missing == []


def test_the_real_taxonomy_tree_with_every_rank(shared_data):
    """iNaturalist's 1,683-node tree: complexes, sections and subgenera pass data up, never become leaves."""
    with open(shared_data / "open-data-format" / "taxonomy-tree.csv") as f:
        spec = [(int(r["id"]), int(r["parent_id"]) if r["parent_id"] else None, r["rank"], r["name"])
                for r in csv.DictReader(f)]
    taxonomy, rejections = Taxonomy.from_taxa(_taxa_from_parents(spec))
    assert rejections == [] and len(taxonomy.taxa) == 1683 and taxonomy.exclusions == {}
    species = [taxon_id for taxon_id, _, rank, _ in spec if rank == "species"]
    below_species = [taxon_id for taxon_id, _, rank, _ in spec if rank == "subspecies"]
    assert all(taxonomy.taxa[taxonomy.counting_taxon(t)].rank == "species" for t in below_species)

    counts = {taxon_id: (1, 1) for taxon_id, *_ in spec if taxon_id != 48460}
    one_each = rules.build_leaf_model(taxonomy, counts, 1, 1, "genus")
    assert one_each.num_classes == len(species) == 580
    leaves = rules.build_leaf_model(taxonomy, counts, 4, 4, "genus")
    leaf_ranks = {taxonomy.taxa[leaf].rank for leaf in leaves.leaf_class_ids}
    assert leaf_ranks == {"species", "genus"}
    for leaf in leaves.leaf_class_ids:
        assert not set(taxonomy.lineage(leaf)[1:]) & set(leaves.leaf_class_ids)
        assert set(taxonomy.lineage(leaf)[1:]) <= set(leaves.inner_leaf_counts)
    assert (leaves.num_classes, len(leaves.inner_leaf_counts)) == (68, 216)  # checked by a separate recursion
    rows = rules.taxonomy_rows(leaves)
    assert [row["taxon_id"] for row in rows] == sorted(row["taxon_id"] for row in rows)
    assert all(row["parent_taxon_id"] is None for row in rows if row["rank"] == "kingdom")


def _taxa_from_parents(spec):
    parents = {taxon_id: parent for taxon_id, parent, *_ in spec}

    def ancestry(taxon_id):
        chain, current = [], parents[taxon_id]
        while current is not None:
            chain.append(current)
            current = parents[current]
        return tuple(reversed(chain))

    return [Taxon(taxon_id, parent, ancestry(taxon_id), float(RANK_LEVELS[rank]), rank, name, True)
            for taxon_id, parent, rank, name in spec]


def test_convert_the_export_tool_csv_then_preview(shared_data, tmp_path):
    csv_path = str(shared_data / "export-tool-format" / "observations-568611.csv")
    report = convert.convert_export_tool_csv(csv_path, None, str(tmp_path / "export"))
    assert report == {"observations": 1309, "photos": 1306, "no_image_url": 3, "taxa": 1144, "skipped": {}}
    again = convert.convert_export_tool_csv(csv_path, None, str(tmp_path / "again"))
    assert again == report
    for name in ("observations.csv", "photos.csv", "taxa.csv"):
        assert (tmp_path / "export" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()

    summary = run_preview(str(tmp_path / "export"), str(tmp_path / "preview"),
                          ExportConfig(min_observations=20, min_research_grade=10))
    assert summary["rows_read"] == {"taxa": 1144, "photos": 1306, "observations": 1309}
    assert summary["rejected"] == {}
    assert summary["photos_not_allowed"] == {"license_not_allowed": 31}  # blank licence: all rights reserved
    assert summary["observations_not_counted"] == {"casual": 12, "no_allowed_photo": 31}
    assert summary["num_classes"] == 7 and summary["leaves_by_rank"] == {"species": 7}
    assert summary["counted_observations"] == {"leaf": 222, "inner_node": 86, "below_cutoff": 958}
    names = {row["name"] for row in rules.read_taxonomy_csv(str(tmp_path / "preview" / "taxonomy.csv"))
             if row["leaf_class_id"] is not None}
    assert "Apis mellifera" in names


@pytest.mark.parametrize("taxon_id, rank, parent_name", [
    (1102264, "unranked", "Copestylum"),  # "Copestylum marginatum" complex: no column for its rank
    (179752, "species", "Copestylum"),
    (606634, "unranked", "Agapostemon"),  # subgenus Agapostemon, same name as its genus (50086)
])
def test_converted_tree_places_taxa_without_a_rank_column(shared_data, tmp_path, taxon_id, rank, parent_name):
    csv_path = str(shared_data / "export-tool-format" / "observations-568611.csv")
    convert.convert_export_tool_csv(csv_path, None, str(tmp_path))
    with open(tmp_path / "taxa.csv") as f:
        taxa = {int(row["taxon_id"]): row for row in csv.DictReader(f, delimiter="\t")}
    parent_id = int(taxa[taxon_id]["ancestry"].split("/")[-1])
    assert (taxa[taxon_id]["rank"], taxa[parent_id]["name"]) == (rank, parent_name)
