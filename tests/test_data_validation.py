"""Data validation: taxonomy checks, the blocking gate on hand-made examples, drift and skew, the report.

One StatisticsGen run (with the curated schema, as in the pipeline) and one ExampleValidator run serve
every gate test: each test views a subset of their splits.
"""
import json
import os
import shutil

import pytest
import tensorflow_data_validation as tfdv
from tfx.components.example_validator import executor as validator_executor
from tfx.components.statistics_gen import executor as statistics_executor
from tfx.types import artifact_utils, standard_artifacts

from inatvision import features
from inatvision.artifacts import Taxonomy, ValidationReport, set_num_classes
from inatvision.components.data_validation.baseline import copy_statistics_into_release, fill_baseline_statistics, load_baseline
from inatvision.components.data_validation.curated_schema import CURATED_SCHEMA, CuratedSchema
from inatvision.components.data_validation.feature_statistics import statistics_options
from inatvision.components.data_validation.gate import ValidationFailed, ValidationGate
from inatvision.components.data_validation.report import HTML_NAME, JSON_NAME
from inatvision.components.data_validation.taxonomy_checks import (check_taxonomy, load_taxonomy_schema,
                                                               unknown_leaf_problems)
from inatvision.config import build_config
from inatvision.provenance import code_version
from inatvision.taxonomy import COLUMNS, TAXONOMY_FILE
from tests import examples_factory

TAXA = [101, 102, 103]
CLEAN = {"train": {101: 12, 102: 12, 103: 12}, "eval": {101: 4, 102: 4, 103: 4}}
SHIFTED = {101: 30, 102: 4, 104: 6}  # the previous release: 103 not yet a leaf, 104 a leaf since dropped
DEFECTS = {  # feature named in the message -> how one example breaks it
    features.LABEL: lambda f: f[features.LABEL].int64_list.value.__setitem__(0, 7),
    features.LATITUDE: lambda f: f[features.LATITUDE].float_list.value.__setitem__(0, 120.0),
    features.IMAGE: lambda f: f[features.IMAGE].bytes_list.value.__setitem__(0, b""),
    features.QUALITY_GRADE: lambda f: f[features.QUALITY_GRADE].bytes_list.value.__setitem__(0, b"unknown_grade"),
    features.LICENSE: lambda f: f.pop(features.LICENSE),
}
DEFECT_TYPES = {features.LABEL: "INT_TYPE_BIG_INT", features.LATITUDE: "FLOAT_TYPE_BIG_FLOAT",
                features.IMAGE: "EMPTY_IMAGE_BYTES", features.QUALITY_GRADE: "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                features.LICENSE: "FEATURE_TYPE_LOW_FRACTION_PRESENT"}
COUNTED_BY_TFDV = (features.LABEL, features.QUALITY_GRADE, features.LICENSE)


def artifact(kind, uri, splits=None):
    """An artifact at `uri` (created, as TFX creates output folders), with `splits` when given."""
    os.makedirs(uri, exist_ok=True)
    made = kind()
    made.uri = str(uri)
    if splits is not None:
        made.split_names = artifact_utils.encode_split_names(list(splits))
    return made


def taxonomy_artifact(root, csv_text=None):
    taxonomy = artifact(Taxonomy, root)
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, TAXONOMY_FILE)
    if csv_text is None:
        examples_factory.write_taxonomy(path, TAXA)
        set_num_classes(taxonomy, len(TAXA))  # as ExportExamples sets it
    else:
        with open(path, "w") as f:
            f.write(csv_text)
    return taxonomy


def defect_examples():
    """Clean examples, then one more per defect, each broken in one way."""
    rows = examples_factory.examples_of_taxa({101: 4, 102: 4, 103: 4}, TAXA, first_photo_id=500)
    for offset, breaks in enumerate(DEFECTS.values()):
        example = examples_factory.examples_of_taxa({101: 1}, TAXA, first_photo_id=600 + offset)[0]
        breaks(example.features.feature)
        rows.append(example)
    return rows


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Statistics and anomalies of the splits train, eval (clean), defects and shifted, computed once."""
    root = tmp_path_factory.mktemp("validation")
    taxonomy = taxonomy_artifact(root / "taxonomy")
    schema = artifact(standard_artifacts.Schema, root / "schema")
    CuratedSchema.test_call(taxonomy=taxonomy, curated_schema_path=CURATED_SCHEMA, schema=schema)
    split_rows = {"train": examples_factory.examples_of_taxa(CLEAN["train"], TAXA),
                  "eval": examples_factory.examples_of_taxa(CLEAN["eval"], TAXA, first_photo_id=100),
                  "defects": defect_examples(),
                  "shifted": examples_factory.examples_of_taxa(SHIFTED, TAXA, first_photo_id=1000)}
    for split, rows in split_rows.items():
        examples_factory.write_split(str(root / "examples" / f"Split-{split}"), rows)
    examples = artifact(standard_artifacts.Examples, root / "examples", split_rows)
    statistics = artifact(standard_artifacts.ExampleStatistics, root / "statistics")
    statistics_executor.Executor().Do(
        {"examples": [examples], "schema": [schema]}, {"statistics": [statistics]},
        {"exclude_splits": "[]", "stats_options_json": statistics_options().to_json()})
    anomalies = artifact(standard_artifacts.ExampleAnomalies, root / "anomalies")
    validator_executor.Executor().Do({"statistics": [statistics], "schema": [schema]}, {"anomalies": [anomalies]},
                                     {"exclude_splits": "[]"})
    return {"root": root, "taxonomy": taxonomy, "schema": schema}


def baseline_from(run, split, release="7"):
    """A previous release whose statistics are those of `split`, as PreviousRelease hands them on."""
    release_dir = run["root"] / f"release-{split}" / "statistics"
    release_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(run["root"] / "statistics" / f"Split-{split}" / "FeatureStats.pb", release_dir / "FeatureStats.pb")
    baseline = artifact(standard_artifacts.ExampleStatistics, run["root"] / f"baseline-{split}")
    fill_baseline_statistics(baseline, str(release_dir.parent), release)
    return baseline


def gate(run, tmp_path, splits=("train", "eval"), overrides=(), taxonomy=None, baseline=None):
    """Calls the ValidationGate on a view of the run's splits; returns its report."""
    report = artifact(ValidationReport, tmp_path / "report")
    config = build_config("demo", list(overrides))
    ValidationGate.test_call(
        anomalies=artifact(standard_artifacts.ExampleAnomalies, run["root"] / "anomalies", splits),
        statistics=artifact(standard_artifacts.ExampleStatistics, run["root"] / "statistics", splits),
        schema=run["schema"], taxonomy=taxonomy or run["taxonomy"], config_json=config.to_json(),
        config_overrides="", report=report, baseline_statistics=baseline)
    return json.loads((tmp_path / "report" / JSON_NAME).read_text())


# ---------------------------------------------------------------- taxonomy.csv

SOUND_ROWS = ["47126,900,20,,0,,Genus,genus", ",47126,70,,0,,Plantae,kingdom",
              "900,101,10,0,0,0,Species 101,species", "900,102,10,1,0,1,Species 102,species"]


def taxonomy_text(rows, header=examples_factory.TAXONOMY_HEADER):
    return header + "".join(f"{row}\n" for row in sorted(rows, key=lambda row: row.split(",")[1].zfill(9)))


def problems_of(tmp_path, text):
    path = tmp_path / "taxonomy.csv"
    path.write_text(text)
    return check_taxonomy(str(path))[1]


def test_a_sound_taxonomy_has_no_problems(tmp_path):
    examples_factory.write_taxonomy(str(tmp_path / "taxonomy.csv"), TAXA)
    rows, problems = check_taxonomy(str(tmp_path / "taxonomy.csv"))
    assert problems == [] and len(rows) == 5


@pytest.mark.parametrize("rows, kind, feature", [
    (SOUND_ROWS + ["950,103,10,2,0,2,Orphan,species"], "TAXONOMY_BROKEN_PARENT_CHAIN", "parent_taxon_id"),
    (SOUND_ROWS + ["900,103,10,1,0,1,Twin,species"], "TAXONOMY_DUPLICATE_CLASS_ID", "leaf_class_id"),
    (SOUND_ROWS + ["900,103,10,5,0,5,Gap,species"], "TAXONOMY_CLASS_ID_NOT_DENSE", "leaf_class_id"),
    (SOUND_ROWS[:2] + ["900,101,10,1,0,1,Species 101,species", "900,102,10,0,0,0,Species 102,species"],
     "TAXONOMY_CLASS_ID_ORDER", "leaf_class_id"),
    (SOUND_ROWS + ["101,103,5,2,0,2,Subspecies,subspecies"], "TAXONOMY_INNER_NODE_CLASS_ID", "leaf_class_id"),
    (SOUND_ROWS + ["900,103,10,2,13,2,Bad iconic,species"], "TAXONOMY_SCHEMA_VIOLATION", "iconic_class_id"),
    (SOUND_ROWS + ["900,x103,10,2,0,2,Bad id,species"], "TAXONOMY_SCHEMA_VIOLATION", "taxon_id"),
    (SOUND_ROWS + ["900,101,10,,0,,Again,species"], "TAXONOMY_DUPLICATE_TAXON", "taxon_id"),
])
def test_a_broken_taxonomy_is_named(tmp_path, rows, kind, feature):
    problems = problems_of(tmp_path, taxonomy_text(rows))
    assert (kind, feature) in {(p["type"], p["feature"]) for p in problems}, problems


def test_taxonomy_columns_follow_the_json_schema(tmp_path):
    problems = problems_of(tmp_path, taxonomy_text(SOUND_ROWS, header="taxon_id,parent_taxon_id,rest\n"))
    assert [p["type"] for p in problems] == ["TAXONOMY_COLUMNS"]


def test_examples_of_a_taxon_that_is_no_leaf_are_counted():
    problems = unknown_leaf_problems({"train": {101: 5, 999: 3}, "eval": {101: 1}}, {101, 102})
    assert [(p["split"], p["examples"]) for p in problems] == [("train", 3)]
    assert "999" in problems[0]["description"]


# ---------------------------------------------------------------- the gate

def test_a_clean_run_passes_and_writes_both_reports(run, tmp_path):
    report = gate(run, tmp_path)
    assert report["passed"] and report["anomalies"] == []
    assert report["examples_per_split"] == {"train": 36, "eval": 12}
    assert report["baseline_release"] == "" and report["taxa"]["added"] == []
    skew = {row["feature"]: row for row in report["drift"] if row["comparison"] == "train vs eval"}
    assert skew[features.LEAF_TAXON_ID]["value"] == pytest.approx(0.0) and not skew[features.LEAF_TAXON_ID]["exceeded"]
    html = (tmp_path / "report" / HTML_NAME).read_text()
    assert "PASSED" in html and "data:image/png;base64," in html
    assert report["provenance"]["code_version"] == code_version() and f"code {code_version()}" in html


@pytest.mark.parametrize("feature", list(DEFECTS))
def test_each_defect_blocks_with_a_message_naming_it(run, tmp_path, feature):
    others = ",".join(other for other in DEFECTS if other != feature)
    with pytest.raises(ValidationFailed) as failure:
        gate(run, tmp_path, ("train", "eval", "defects"), [f"validation.warn_only={others}"])
    message = str(failure.value)
    assert f"[defects] {feature} {DEFECT_TYPES[feature]}" in message
    if feature in COUNTED_BY_TFDV:
        assert f"{DEFECT_TYPES[feature]}, 1 example(s)" in message
    assert not any(f"] {other} " in message for other in DEFECTS if other != feature)


def test_warn_only_downgrades_anomaly_types_to_warnings(run, tmp_path):
    types = sorted(set(DEFECT_TYPES.values()) | {"INVALID_FEATURE_SHAPE"})
    report = gate(run, tmp_path, ("train", "eval", "defects"), [f"validation.warn_only={','.join(types)}"])
    assert report["passed"] and report["anomalies"] == []
    assert {(row["feature"], row["type"]) for row in report["warnings"]} >= set(DEFECT_TYPES.items())


def test_a_broken_taxonomy_blocks_the_gate(run, tmp_path):
    gap = taxonomy_text(SOUND_ROWS + ["900,103,10,3,0,3,Gap,species"])
    with pytest.raises(ValidationFailed, match=r"\[taxonomy\] leaf_class_id TAXONOMY_CLASS_ID_NOT_DENSE"):
        gate(run, tmp_path, taxonomy=taxonomy_artifact(str(tmp_path / "taxonomy"), gap))


def test_examples_of_a_taxon_missing_from_the_taxonomy_block(run, tmp_path):
    without_103 = taxonomy_text(SOUND_ROWS + ["900,104,10,2,0,2,Species 104,species"])
    with pytest.raises(ValidationFailed, match=r"\[train\] leaf_taxon_id UNKNOWN_LEAF_TAXON, 12 example"):
        gate(run, tmp_path, taxonomy=taxonomy_artifact(str(tmp_path / "taxonomy"), without_103))


# ---------------------------------------------------------------- drift against the previous release

def test_a_shifted_taxon_distribution_reports_drift_with_the_comparators_figure(run, tmp_path):
    report = gate(run, tmp_path, baseline=baseline_from(run, "shifted"))
    assert report["passed"]  # validation.block_on_drift is off
    drift = {row["feature"]: row for row in report["drift"] if row["comparison"] == "train vs release 7"}
    assert drift[features.LEAF_TAXON_ID]["value"] == pytest.approx(30 / 40 - 1 / 3)  # taxon 101: 75% -> 33%
    assert drift[features.LEAF_TAXON_ID]["exceeded"]
    assert ("train vs release 7", features.LEAF_TAXON_ID, "COMPARATOR_L_INFTY_HIGH") in {
        (row["split"], row["feature"], row["type"]) for row in report["warnings"]}
    assert [taxon["taxon_id"] for taxon in report["taxa"]["added"]] == [103]
    assert [taxon["taxon_id"] for taxon in report["taxa"]["removed"]] == [104]
    assert report["taxa"]["photos_per_taxon"]["change"]["max"] == 12 - 30
    assert "release 7" in (tmp_path / "report" / HTML_NAME).read_text()


def test_block_on_drift_makes_drift_block(run, tmp_path):
    with pytest.raises(ValidationFailed, match=r"leaf_taxon_id COMPARATOR_L_INFTY_HIGH.*0\.416667"):
        gate(run, tmp_path, overrides=["validation.block_on_drift=true"], baseline=baseline_from(run, "shifted"))


def test_identical_statistics_report_no_drift(run, tmp_path):
    report = gate(run, tmp_path, overrides=["validation.block_on_drift=true"], baseline=baseline_from(run, "train"))
    drift = [row for row in report["drift"] if row["comparison"] == "train vs release 7"]
    assert {row["feature"] for row in drift} == {features.LEAF_TAXON_ID, features.ICONIC_TAXON, features.DAY_OF_YEAR,
                                                  features.LATITUDE, features.LONGITUDE}
    assert all(row["value"] == pytest.approx(0.0) for row in drift)
    assert report["passed"] and report["warnings"] == []
    assert report["taxa"]["added"] == [] and report["taxa"]["removed"] == []


def test_release_statistics_travel_from_the_pusher_to_the_next_baseline(run, tmp_path):
    statistics = artifact(standard_artifacts.ExampleStatistics, run["root"] / "statistics", ["train"])
    copy_statistics_into_release(statistics, str(tmp_path / "3"))
    baseline = artifact(standard_artifacts.ExampleStatistics, tmp_path / "baseline")
    fill_baseline_statistics(baseline, str(tmp_path / "3"), "3")
    loaded, release = load_baseline(baseline)
    assert release == "3" and loaded.datasets[0].num_examples == 36
    first = artifact(standard_artifacts.ExampleStatistics, tmp_path / "first")
    fill_baseline_statistics(first, None)
    assert load_baseline(first) == (None, "") and load_baseline(None) == (None, "")


def test_the_schema_takes_its_classes_from_the_taxonomy_artifact(tmp_path):
    taxonomy = taxonomy_artifact(tmp_path / "taxonomy")
    set_num_classes(taxonomy, len(TAXA) + 2)  # the property, not a recount of the file's leaves
    CuratedSchema.test_call(taxonomy=taxonomy, curated_schema_path=CURATED_SCHEMA,
                            schema=artifact(standard_artifacts.Schema, tmp_path / "schema"))
    label = tfdv.get_feature(tfdv.load_schema_text(str(tmp_path / "schema" / "schema.pbtxt")), features.LABEL)
    assert (label.int_domain.min, label.int_domain.max) == (0, len(TAXA) + 1)
    with pytest.raises(ValueError, match="no custom property 'num_classes'"):
        CuratedSchema.test_call(taxonomy=artifact(Taxonomy, tmp_path / "unset"), curated_schema_path=CURATED_SCHEMA,
                                schema=artifact(standard_artifacts.Schema, tmp_path / "schema-unset"))


def test_the_schema_step_creates_its_output_folder(tmp_path):
    """The Kubeflow V2 entrypoint, unlike TFX's local runner, does not create output folders: on a local or
    mounted pipeline root the step must (a `make test-containers` run found this one missing)."""
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "not-yet" / "schema")
    CuratedSchema.test_call(taxonomy=taxonomy_artifact(tmp_path / "taxonomy"), curated_schema_path=CURATED_SCHEMA,
                            schema=schema)
    assert (tmp_path / "not-yet" / "schema" / "schema.pbtxt").exists()


def test_the_run_schema_allows_the_taxonomy_classes(run):
    schema = tfdv.load_schema_text(str(run["root"] / "schema" / "schema.pbtxt"))
    label = tfdv.get_feature(schema, features.LABEL)
    assert (label.int_domain.min, label.int_domain.max) == (0, len(TAXA) - 1)


def test_the_taxonomy_json_schema_lists_the_taxonomy_columns():
    assert tuple(load_taxonomy_schema()["properties"]) == COLUMNS


def test_the_curated_schema_counts_taxa_and_sizes_images():
    schema = tfdv.load_schema_text(CURATED_SCHEMA)
    assert tfdv.get_feature(schema, features.LEAF_TAXON_ID).int_domain.is_categorical
    assert tfdv.get_feature(schema, features.IMAGE).HasField("image_domain")
