"""The ExportExamples executor on hostile inputs, at component level (Beam in memory).

Truncated, zero-byte and non-image photos, a PNG named .jpg, CMYK and grayscale JPEGs, a
10,000 x 10,000 photo, an export path with spaces and non-ASCII characters, rows with extra
tabs or quotes in every table, photo rows whose observation has no row, and a taxa table with a cycle: the
export completes, every rejected item is counted in the report as the preview counts it, and the preview writes
the same taxonomy.csv.
"""
import json
import os

import pytest
import tensorflow as tf
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import standard_artifacts

from inatvision import features
from inatvision.artifacts import ExportReport, Taxonomy
from inatvision.components.export_examples.component import ExportExamplesExecutor, RejectedTooMuch
from inatvision.components.export_examples.preview import run_preview
from inatvision.components.export_examples.tables import InputError
from inatvision.config import build_config
from inatvision.sample_export import write_sample_export

from tests.hostile_export import ORPHAN_UUID, UNUSABLE, spoil

DEMO_OVERRIDES = ["export.max_rejected_fraction=0.5"]


def run_executor(export_dir: str, out: str, overrides=DEMO_OVERRIDES, beam_args=("--runner=DirectRunner",)):
    config = build_config("demo", overrides)
    examples, taxonomy, report = standard_artifacts.Examples(), Taxonomy(), ExportReport()
    for name, artifact in (("examples", examples), ("taxonomy", taxonomy), ("report", report)):
        artifact.uri = os.path.join(out, name)
        os.makedirs(artifact.uri, exist_ok=True)
    executor = ExportExamplesExecutor(BaseBeamExecutor.Context(beam_pipeline_args=list(beam_args)))
    executor.Do({}, {"examples": [examples], "taxonomy": [taxonomy], "report": [report]},
                {"export_dir": export_dir, "config_json": config.to_json(), "config_overrides": ""})
    return examples, taxonomy, json.load(open(os.path.join(report.uri, "export_report.json")))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    export_dir = str(tmp_path_factory.mktemp("hostile") / "export with spaces — ünïcode")
    write_sample_export(export_dir, species=6, seed=5)
    chosen = spoil(export_dir)
    examples, taxonomy, report = run_executor(export_dir, str(tmp_path_factory.mktemp("out")))
    return {"export": export_dir, "chosen": chosen, "examples": examples, "taxonomy": taxonomy, "report": report}


@pytest.fixture(scope="module")
def hostile_preview(hostile, tmp_path_factory):
    out = tmp_path_factory.mktemp("preview")
    return {"out": out, "summary": run_preview(hostile["export"], str(out), build_config("demo", DEMO_OVERRIDES).export)}


def _read_examples(uri: str, split: str) -> list[tf.train.Example]:
    pattern = os.path.join(uri, f"Split-{split}", "data_tfrecord-*")
    return [tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern))]


def test_hostile_rows_are_counted_by_reason(hostile):
    rows = hostile["report"]["rejected"]["rows"]
    assert rows.get("wrong_field_count") == 3  # one in each table
    assert rows.get("latitude_out_of_range") == 1
    assert rows.get("ancestry_cycle", 0) >= 2
    examples = hostile["report"]["rejected_examples"]["rows"]
    assert any(line.startswith("observations.csv:") for line in examples["wrong_field_count"])


def test_photo_rows_without_an_observation_row_are_counted(hostile):
    """Two photo rows name an observation with no row; two others name rejected observation rows, and go with
    those rows' rejections."""
    with open(os.path.join(hostile["export"], "photos.csv")) as f:
        lines = [line_no for line_no, line in enumerate(f, start=1) if f"\t{ORPHAN_UUID}\t" in line]
    assert len(lines) == 2
    report = hostile["report"]
    assert report["rejected"]["rows"]["no_observation"] == 2
    assert report["rejected_examples"]["rows"]["no_observation"] == [f"photos.csv:{line}" for line in lines]


def _data_lines(export_dir: str) -> dict[str, int]:
    counts = {}
    for table in ("taxa", "photos", "observations"):
        with open(os.path.join(export_dir, f"{table}.csv")) as f:
            counts[table] = sum(1 for line in f if line.strip()) - 1  # less the header
    return counts


def test_preview_and_component_count_the_same_rows(hostile, hostile_preview):
    report, preview = hostile["report"], hostile_preview["summary"]
    assert report["rows_read"] == preview["rows_read"] == _data_lines(hostile["export"])
    assert report["leaves_by_rank"] == preview["leaves_by_rank"] and sum(report["leaves_by_rank"].values()) == \
        report["num_classes"] > 0
    assert report["rejected"]["rows"] == preview["rejected"]
    assert preview["rejected"]["no_observation"] == 2
    assert report["rejected_examples"]["rows"] == preview["rejected_examples"]
    # A reason in three tables: its rows in the order the preview reads the tables, not by file name.
    assert [example.split(":")[0] for example in report["rejected_examples"]["rows"]["wrong_field_count"]] == [
        "taxa.csv", "photos.csv", "observations.csv"]


def test_bad_photos_are_rejected_or_converted(hostile):
    report = hostile["report"]
    assert set(report["photos_rejected"]) == {"truncated", "empty_file", "not_an_image"}
    assert report["photos_rejected_total"] == sum(report["photos_rejected"].values())
    assert 0.2 < report["rejected_photo_fraction"] < 0.5  # 3 of 8 kinds are unusable
    assert report["photos_converted"] > 0  # PNG, CMYK, grayscale and the huge photo
    for reason, paths in report["rejected_examples"]["photos"].items():
        assert all(hostile["chosen"][path] in UNUSABLE for path in paths), reason
    total = sum(report["examples_per_split"].values())
    assert total + report["photos_rejected_total"] == report["photos_selected"]


def test_every_stored_photo_is_an_rgb_jpeg_tensorflow_decodes(hostile):
    for split in features.SPLITS:
        for example in _read_examples(hostile["examples"].uri, split):
            image = tf.io.decode_jpeg(example.features.feature[features.IMAGE].bytes_list.value[0])
            assert image.shape[-1] == 3 and max(image.shape[:2]) <= 500


def test_examples_carry_every_feature_and_splits_are_disjoint(hostile):
    observations = {}
    for split in features.SPLITS:
        examples = _read_examples(hostile["examples"].uri, split)
        assert len(examples) == hostile["report"]["examples_per_split"][split] > 0
        for example in examples:
            feats = example.features.feature
            for key in (features.PHOTO_ID, features.LABEL, features.LEAF_TAXON_ID, features.ICONIC_TAXON,
                        features.QUALITY_GRADE, features.LICENSE, features.LEAF_RANK):
                assert key in feats, key
            uuid = feats[features.OBSERVATION_UUID].bytes_list.value[0]
            assert observations.setdefault(uuid, split) == split
            if split != "train":
                assert feats[features.QUALITY_GRADE].bytes_list.value[0] == b"research"


def test_preview_writes_the_same_taxonomy(hostile, hostile_preview):
    out = hostile_preview["out"]
    component = open(os.path.join(hostile["taxonomy"].uri, "taxonomy.csv"), "rb").read()
    assert open(out / "taxonomy.csv", "rb").read() == component
    assert open(out / "taxa_report.csv", "rb").read() == open(
        os.path.join(hostile["taxonomy"].uri, "taxa_report.csv"), "rb").read()


def test_too_many_rejected_photos_fail_loudly(hostile, tmp_path):
    with pytest.raises(RejectedTooMuch, match="max_rejected_fraction"):
        run_executor(hostile["export"], str(tmp_path), ["export.max_rejected_fraction=0"])


def test_missing_column_stops_before_any_work(tmp_path):
    export_dir = tmp_path / "export"
    write_sample_export(str(export_dir), species=3, seed=1, tables_only=True)
    lines = (export_dir / "photos.csv").read_text().splitlines()
    header = lines[0].split("\t")
    keep = [i for i, name in enumerate(header) if name != "license"]
    (export_dir / "photos.csv").write_text("\n".join("\t".join(line.split("\t")[i] for i in keep if i < len(line.split("\t")))
                                                    for line in lines) + "\n")
    with pytest.raises(InputError, match="photos.csv.*license"):
        run_executor(str(export_dir), str(tmp_path / "out"))
