"""The export rules on real iNaturalist data (`shared_data`, docs/data.md): preview, the real taxonomy tree, conversion, and
the ExportExamples component on the Open Data tables and on the converted export-tool CSV, beside the preview."""
import csv
import json
import os

import pytest
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import standard_artifacts

from inatvision.artifacts import ExportReport, Taxonomy as TaxonomyArtifact
from inatvision.components.export_examples import convert, rules, tables
from inatvision.components.export_examples.component import ExportExamplesExecutor, RejectedTooMuch
from inatvision.components.export_examples.preview import run_preview
from inatvision.components.export_examples.sufficiency import NotEnoughData
from inatvision.components.export_examples.tables import Taxon
from inatvision.components.export_examples.taxonomy import Taxonomy
from inatvision.config import CC_LICENSES, ExportConfig, build_config
from inatvision.taxonomy import COLUMNS, RANK_LEVELS, read_taxonomy

WITH_UNKNOWN_LICENCES = CC_LICENSES + ["unknown"]


def test_preview_of_the_open_data_tables_counts_their_warts(shared_data, tmp_path):
    summary = run_preview(str(shared_data / "open-data-format"), str(tmp_path), ExportConfig())
    assert summary["rows_read"] == {"taxa": 50, "photos": 50, "observations": 50}
    # The 50 taxa rows name ancestors that the 50-row sample leaves out, so none forms a tree.
    assert summary["rejected"] == {"unknown_ancestor": 50, "wrong_field_count": 2, "unknown_taxon": 48}
    assert summary["rejected_examples"]["wrong_field_count"] == ["observations.csv:27", "observations.csv:28"]
    assert summary["rejected_examples"]["unknown_taxon"][:2] == ["observations.csv:2", "observations.csv:3"]
    assert summary["num_classes"] == 0
    assert (tmp_path / "taxonomy.csv").read_text() == ",".join(COLUMNS) + "\n"


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
    rows = read_taxonomy(str(tmp_path / "taxonomy.csv")).rows
    assert len(rows) == 10 + 7 + 7 + 1  # leaves, genera, families, Plantae
    assert sorted(row.leaf_class_id for row in rows if row.leaf_class_id is not None) == list(range(10))
    assert {row.iconic_class_id for row in rows} == {0}
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
    assert [row.taxon_id for row in rows] == sorted(row.taxon_id for row in rows)
    assert all(row.parent_taxon_id is None for row in rows if row.rank == "kingdom")


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
    names = {row.name for row in read_taxonomy(str(tmp_path / "preview" / "taxonomy.csv")).rows
             if row.leaf_class_id is not None}
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


# The ExportExamples component itself (its executor, Beam in memory) on the same real tables, beside the preview.

def _run_export_component(export_dir: str, out: str, overrides: list[str]):
    """Runs the executor; returns (the exception it raised or None, export report, taxonomy folder)."""
    config = build_config("demo", overrides)
    examples, taxonomy, report = standard_artifacts.Examples(), TaxonomyArtifact(), ExportReport()
    for name, artifact in (("examples", examples), ("taxonomy", taxonomy), ("report", report)):
        artifact.uri = os.path.join(out, name)
        os.makedirs(artifact.uri, exist_ok=True)
    executor = ExportExamplesExecutor(BaseBeamExecutor.Context(
        beam_pipeline_args=["--runner=DirectRunner", "--direct_running_mode=in_memory"]))
    raised = None
    try:
        executor.Do({}, {"examples": [examples], "taxonomy": [taxonomy], "report": [report]},
                    {"export_dir": export_dir, "config_json": config.to_json(), "config_overrides": ""})
    except (RejectedTooMuch, NotEnoughData) as error:  # the report is written before the run fails
        raised = error
    return raised, json.load(open(os.path.join(report.uri, "export_report.json"))), taxonomy.uri


def _same_leaf_files(component_dir: str, preview_dir) -> None:
    for name in ("taxonomy.csv", "taxa_report.csv"):
        assert open(os.path.join(component_dir, name), "rb").read() == (preview_dir / name).read_bytes(), name


def _table(path):
    """Every row of observations.csv or photos.csv, parsed (a Rejection where the row is bad)."""
    name = os.path.basename(path)
    parse = {tables.OBSERVATIONS: tables.parse_observation, tables.PHOTOS: tables.parse_photo}[name]
    index = tables.check_columns(path, tables.read_header(path), tables.REQUIRED_COLUMNS[name])
    return [parse(fields, index, line) for line, fields in tables.iter_rows(path)]


@pytest.fixture(scope="module")
def open_data_component(shared_data, tmp_path_factory):
    # Cut-offs of one observation: still nothing qualifies, the 50-row tables form no tree (see the preview test).
    overrides = ["export.min_observations=1", "export.min_research_grade=1"]
    raised, report, taxonomy_dir = _run_export_component(
        str(shared_data / "open-data-format"), str(tmp_path_factory.mktemp("open-data-component")), overrides)
    preview_dir = tmp_path_factory.mktemp("open-data-preview")
    preview = run_preview(str(shared_data / "open-data-format"), str(preview_dir),
                          build_config("demo", overrides).export)
    return {"raised": raised, "report": report, "taxonomy_dir": taxonomy_dir, "preview": preview,
            "preview_dir": preview_dir}


def test_component_on_the_open_data_tables_counts_every_rejected_row_as_the_preview(open_data_component):
    report, preview = open_data_component["report"], open_data_component["preview"]
    raised = open_data_component["raised"]  # nothing qualifies: the run stops at the export, naming why
    assert isinstance(raised, NotEnoughData) and "no examples in train, eval, test" in str(raised)
    assert "table rows: unknown_ancestor 50, unknown_taxon 48, wrong_field_count 2" in str(raised)
    assert report["rows_read"] == preview["rows_read"] == {"taxa": 50, "photos": 50, "observations": 50}
    assert report["rejected"]["rows"] == preview["rejected"] == {
        "unknown_ancestor": 50, "wrong_field_count": 2, "unknown_taxon": 48}
    # The first rows of each reason, in file order, in both (observations.csv:10 does not come before :2).
    assert report["rejected_examples"]["rows"] == preview["rejected_examples"]
    assert report["rejected_examples"]["rows"]["unknown_taxon"][:2] == ["observations.csv:2", "observations.csv:3"]
    assert report["num_classes"] == preview["num_classes"] == 0
    assert report["examples_per_split"] == {"train": 0, "eval": 0, "test": 0}
    _same_leaf_files(open_data_component["taxonomy_dir"], open_data_component["preview_dir"])


def test_open_data_photos_without_files_all_belong_to_rejected_observations(shared_data, open_data_component):
    """No photo file exists, and none is looked for: every photo row's observation is a rejected row, so
    the report's photo counts are empty rather than hiding dropped photos."""
    report = open_data_component["report"]
    folder = shared_data / "open-data-format"
    assert not (folder / "photos").exists()
    observations = _table(str(folder / "observations.csv"))
    photos = _table(str(folder / "photos.csv"))
    assert len(observations) == len(photos) == 50
    rejected = report["rejected"]["rows"]
    assert rejected["unknown_taxon"] + rejected["wrong_field_count"] == len(observations)  # every observation row
    uuids = {fields[0] for _, fields in tables.iter_rows(str(folder / "observations.csv"))}  # the bad rows' too
    assert all(p.observation_uuid in uuids for p in photos)  # no photo row outside the observations
    assert (report["photos_selected"], report["photos_rejected"], report["photos_dropped"]) == (0, {}, {})
    assert report["observations_not_counted"] == report["observations_dropped"] == {}


@pytest.fixture(scope="module")
def export_tool_component(shared_data, tmp_path_factory):
    """The export-tool CSV converted without its photos, then the component and the preview on it (demo
    cut-offs: 20 observations, 10 research grade)."""
    base = tmp_path_factory.mktemp("export-tool")
    export_dir = str(base / "export")
    convert.convert_export_tool_csv(str(shared_data / "export-tool-format" / "observations-568611.csv"), None,
                                    export_dir)
    raised, report, taxonomy_dir = _run_export_component(export_dir, str(base / "component"), [])
    preview = run_preview(export_dir, str(base / "preview"), build_config("demo").export)
    return {"export": export_dir, "raised": raised, "report": report, "taxonomy_dir": taxonomy_dir,
            "preview": preview, "preview_dir": base / "preview"}


def test_component_on_the_converted_export_counts_every_missing_photo(export_tool_component):
    report, raised = export_tool_component["report"], export_tool_component["raised"]
    assert isinstance(raised, RejectedTooMuch) and "219 of 219 selected photos were rejected" in str(raised)
    assert report["photos_selected"] == 219
    assert report["photos_rejected"] == report["rejected"]["photos"] == {"missing_file": 219}
    assert report["photos_rejected_total"] == 219 and report["rejected_photo_fraction"] == 1.0
    assert report["examples_per_split"] == {"train": 0, "eval": 0, "test": 0}
    photo_ids = {str(p.photo_id) for p in _table(os.path.join(export_tool_component["export"], "photos.csv"))}
    examples = report["rejected_examples"]["photos"]["missing_file"]
    assert len(examples) == 5 and set(examples) <= photo_ids
    assert examples == sorted(examples, key=int)
    per_leaf = report["photos_per_leaf"]
    assert len(per_leaf) == 7 and sum(sum(splits.values()) for splits in per_leaf.values()) == 219
    assert report["rejected"]["rows"] == {} and report["photos_converted"] == 0


def test_component_and_preview_agree_on_the_converted_export(export_tool_component):
    report, preview = export_tool_component["report"], export_tool_component["preview"]
    assert report["num_classes"] == preview["num_classes"] == 7
    _same_leaf_files(export_tool_component["taxonomy_dir"], export_tool_component["preview_dir"])
    leaves = {row.taxon_id for row in read_taxonomy(str(export_tool_component["preview_dir"] /
                                                        "taxonomy.csv")).rows
              if row.leaf_class_id is not None}
    assert {int(leaf) for leaf in report["photos_per_leaf"]} == leaves
    assert report["rows_read"] == preview["rows_read"]
    assert report["rejected"]["rows"] == preview["rejected"] == {}  # no photo row without its observation row
    assert report["observations_not_counted"] == preview["observations_not_counted"] == {
        "casual": 12, "no_allowed_photo": 31}
    counted = preview["counted_observations"]
    assert counted == {"leaf": 222, "inner_node": 86, "below_cutoff": 958}
    dropped = report["observations_dropped"]
    assert {reason: dropped[reason] for reason in ("inner_node", "below_cutoff")} == {
        "inner_node": 86, "below_cutoff": 958}
    # The preview's 222 leaf observations (one photo each in an export-tool CSV): 219 selected, 2 over the demo's
    # per-leaf caps, 1 a needs-ID observation that fell in the eval split.
    assert report["photos_dropped"] == {"over_leaf_cap": 2}
    assert dropped["not_research_grade_in_eval"] == 1
    assert counted["leaf"] == report["photos_selected"] + 2 + 1
    # Every one of the 1,309 observations is accounted for: planned (leaf, less the one dropped in eval) or dropped.
    planned = counted["leaf"] - dropped["not_research_grade_in_eval"]
    assert planned + sum(dropped.values()) == 1309
