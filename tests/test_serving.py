"""The composed serving model, the gate's prior check and report section, and `inatvision predict`.

Hand-made tiny models (a colour classifier exported by the vision Trainer's export, a random geo network
exported by the geo export) composed once per module; no pipeline runs.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from click.testing import CliRunner

from inatvision.components.evaluator import taxon_metrics
from inatvision.components.geo_prior import export as geo_export, model as geo_model, scoring
from inatvision.components.pusher import release_layout
from inatvision import features, taxon_outcomes
from inatvision.components.release_gate import component as gate_component, geo_map, inputs as release_inputs
from inatvision.components.release_gate.checks import geo_prior_check
from inatvision.components.release_gate.decision import evaluate_gate
from inatvision.components.release_gate.inputs import GateInputs
from inatvision.components.release_gate.tables import geo_prior_comparison
from inatvision.components.release_gate.report import load_gate_result_json, write_gate_report
from inatvision.components.serving import compose, info as serving_info
from inatvision.taxonomy import read_taxonomy
from inatvision.components.trainer import export as vision_export
from inatvision.config import GateConfig, GeoConfig
from inatvision.pipeline import predict as predict_module
from inatvision.pipeline.predict import predict_command
from tests import examples_factory

LEAVES = [101, 102, 103]
GENUS, KINGDOM = 900, 47126
IMAGE_SIZE = 32
THRESHOLDS = np.array([0.3, 0.5, 0.0], np.float32)
PRESENCES = np.array([5, 9, 0])  # leaf 103 has none: served geo score 1 everywhere
# (latitude, longitude): three places, one out of range (no location), one unknown
LATITUDES = np.array([45.0, -30.0, 10.0, 95.0, np.nan, 0.0], np.float32)
LONGITUDES = np.array([10.0, 140.0, -70.0, 0.0, np.nan, 179.5], np.float32)


def colour_classifier() -> keras.Model:
    """Photos (pixel levels, as the Transform graph gives them) to 3 classes by mean colour: red, green, blue."""
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=tf.float32)
    x = keras.layers.Rescaling(1 / 255.0)(images)
    x = keras.layers.GlobalAveragePooling2D()(x)
    probabilities = keras.layers.Dense(3, activation="softmax", name="probabilities")(x)
    model = keras.Model(images, probabilities)
    model.get_layer("probabilities").set_weights([6.0 * np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("serving"))
    taxonomy = os.path.join(tmp, "taxonomy.csv")
    examples_factory.write_taxonomy(taxonomy, LEAVES, genus_id=GENUS)
    vision_dir, geo_dir, no_geo_dir = (os.path.join(tmp, name) for name in ("vision", "geo", "no-geo"))
    graph_dir = examples_factory.transform_graph_of_taxa(tmp, LEAVES, IMAGE_SIZE)
    graph = tft.TFTransformOutput(graph_dir)
    vision_export.export_classifier(colour_classifier(), vision_dir, taxonomy, graph, IMAGE_SIZE, top_k=10)
    keras.utils.set_random_seed(1)
    network = geo_model.build_geo_network(len(LEAVES), GeoConfig(hidden_units=16, residual_blocks=1))
    geo_export.export_geo_prior(network, geo_dir, taxonomy, graph, LEAVES, THRESHOLDS, PRESENCES, use_date=False)
    geo_export.write_no_locations_marker(no_geo_dir, "No training example has coordinates; no geo prior was trained.")
    composed, vision_only = os.path.join(tmp, "composed"), os.path.join(tmp, "vision-only")
    info = compose.compose_serving(vision_dir, geo_dir, taxonomy, graph_dir, composed, 0.005)
    vision_only_info = compose.compose_serving(vision_dir, no_geo_dir, taxonomy, graph_dir, vision_only, 0.005)
    return {"tmp": tmp, "taxonomy": taxonomy, "vision": vision_dir, "geo": geo_dir, "composed": composed,
            "transform_graph": graph_dir,
            "vision_only": vision_only, "info": info, "vision_only_info": vision_only_info,
            "tree": read_taxonomy(taxonomy)}


def artifact(kind, uri, source=None):
    """A TFX artifact at `uri`; `source`: a SavedModel copied in as its `Format-Serving`."""
    made = kind()
    made.uri = str(uri)
    if source:
        shutil.copytree(source, os.path.join(made.uri, "Format-Serving"))
    return made


def photos(n: int) -> list[bytes]:
    return [examples_factory.jpeg(examples_factory.COLOURS[i % 3], seed=i) for i in range(n)]


def serve(model_dir: str, images, latitudes, longitudes, days=None) -> dict:
    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    n = len(images)
    result = signature(image_bytes=tf.constant(images), latitude=tf.constant(latitudes, tf.float32),
                       longitude=tf.constant(longitudes, tf.float32),
                       day_of_year=tf.constant(days if days is not None else [0] * n, tf.int64))
    return {key: value.numpy() for key, value in result.items()}


def vision_alone(models, images) -> dict:
    signature = tf.saved_model.load(models["vision"]).signatures["serving_default"]
    return {key: value.numpy() for key, value in signature(image_bytes=tf.constant(images)).items()}


def geo_scores(models, latitudes, longitudes) -> np.ndarray:
    signature = tf.saved_model.load(models["geo"]).signatures["serving_default"]
    return signature(latitude=tf.constant(latitudes, tf.float32), longitude=tf.constant(longitudes, tf.float32),
                     day_of_year=tf.zeros([len(latitudes)], tf.int64))["geo_scores"].numpy()


def test_without_a_location_the_served_scores_are_vision_alone(models):
    images = photos(4)
    nan = [np.nan] * 4
    served = serve(models["composed"], images, nan, nan)
    vision = vision_alone(models, images)
    assert set(served) == set(compose.OUTPUT_KEYS)
    np.testing.assert_allclose(served["probabilities"], vision["probabilities"], atol=1e-6)
    np.testing.assert_allclose(served["vision_probabilities"], vision["probabilities"], atol=1e-6)
    np.testing.assert_allclose(served["top_scores"], vision["top_scores"], atol=1e-6)
    for key in ("top_class_ids", "top_taxon_ids", "top_names"):
        np.testing.assert_array_equal(served[key], vision[key])
    np.testing.assert_array_equal(served["vision_top_taxon_ids"], vision["top_taxon_ids"])
    assert served["top_taxon_ids"][:, 0].tolist() == [101, 102, 103, 101]  # red, green, blue, red
    assert not served["nearby"].any()


def test_with_locations_the_scores_are_scoring_combine_of_both_models(models):
    images = photos(len(LATITUDES))
    served = serve(models["composed"], images, LATITUDES, LONGITUDES)
    vision = vision_alone(models, images)["probabilities"]
    located = np.array([True, True, True, False, False, True])  # 95 degrees is out of range
    safe_lat, safe_lng = np.where(located, LATITUDES, 0), np.where(located, LONGITUDES, 0)
    geo = geo_scores(models, safe_lat, safe_lng)
    np.testing.assert_array_equal(geo[:, 2], 1.0)  # no presences: present everywhere
    expected = scoring.combine(vision, geo, located, 0.005).numpy()
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-6)
    np.testing.assert_allclose(served["probabilities"][~located], vision[~located], atol=1e-6)
    np.testing.assert_allclose(served["vision_probabilities"], vision, atol=1e-6)
    order = np.argsort(-expected, axis=1, kind="stable")
    np.testing.assert_allclose(served["top_scores"], np.take_along_axis(expected, order, 1), atol=1e-6)
    np.testing.assert_array_equal(served["top_taxon_ids"], np.array(LEAVES)[served["top_class_ids"]])
    nearby = scoring.expected_nearby(geo, THRESHOLDS).numpy() & located[:, None]
    np.testing.assert_array_equal(served["nearby"], np.take_along_axis(nearby, served["top_class_ids"], 1))
    ancestor = scoring.common_ancestor(expected, models["tree"])
    np.testing.assert_array_equal(served["common_ancestor_taxon_id"], ancestor.taxon_id.numpy())
    np.testing.assert_allclose(served["common_ancestor_score"], ancestor.score.numpy(), atol=1e-6)
    assert set(served["common_ancestor_taxon_id"].tolist()) == {GENUS}  # the genus holds every leaf
    assert set(served["common_ancestor_name"].tolist()) == {b"Genus"}


def test_the_examples_signature_reads_the_location_from_the_example(models):
    images = photos(3)
    records = [examples_factory.example(0, 101, images[0], 1, lat=45.0, lng=10.0).SerializeToString(),
               examples_factory.example(1, 102, images[1], 2).SerializeToString(),  # no coordinates
               examples_factory.example(2, 103, images[2], 3, lat=-30.0, lng=140.0).SerializeToString()]
    loaded = tf.saved_model.load(models["composed"])
    by_example = {k: v.numpy() for k, v in loaded.signatures["serving_examples"](examples=tf.constant(records)).items()}
    by_photo = serve(models["composed"], images, [45.0, np.nan, -30.0], [10.0, np.nan, 140.0], [153, 153, 153])
    for key in ("probabilities", "top_scores", "common_ancestor_score"):
        np.testing.assert_allclose(by_example[key], by_photo[key], atol=1e-6)
    np.testing.assert_array_equal(by_example["nearby"], by_photo["nearby"])
    np.testing.assert_allclose(by_example["probabilities"][1], vision_alone(models, images[1:2])["probabilities"][0],
                               atol=1e-6)


def test_both_signatures_apply_the_one_location_rule(models):
    """`has_location` is inatvision/location.py's rule: coordinates in range, and in `serving_examples` the
    accuracy too (at most geo.max_positional_accuracy_m, absent counts as usable); unlocated rows are vision alone."""
    from inatvision import location
    from tests.test_location import LIMIT, located_examples

    assert models["info"]["max_positional_accuracy_m"] == LIMIT
    by_photo = serve(models["composed"], photos(len(LATITUDES)), LATITUDES, LONGITUDES)
    np.testing.assert_array_equal(by_photo["has_location"], location.has_location(LATITUDES, LONGITUDES))
    rows, expected = located_examples()
    image = photos(1)[0]
    for row in rows:
        row.features.feature["image/encoded"].bytes_list.value[:] = [image]
    served = tf.saved_model.load(models["composed"]).signatures["serving_examples"](
        examples=tf.constant([row.SerializeToString() for row in rows]))
    np.testing.assert_array_equal(served["has_location"].numpy(), expected)
    vision = vision_alone(models, [image])["probabilities"][0]
    np.testing.assert_allclose(served["probabilities"].numpy()[~expected], np.tile(vision, ((~expected).sum(), 1)),
                               atol=1e-6)


def test_the_serving_folder_has_its_assets_and_says_whether_it_has_a_prior(models):
    for name in ("assets/taxonomy.csv", "assets/thresholds.csv", serving_info.INFO_FILE):
        assert os.path.exists(os.path.join(models["composed"], name)), name
    info = serving_info.read_serving_info(models["composed"])
    assert info == models["info"] and info["geo"] == "trained" and info["top_k"] == 3
    assert "map" not in info  # the release gate draws the report's map


def test_the_gate_draws_the_map_of_the_most_observed_taxon_from_the_composed_model(models):
    names = {t: f"Species {t}" for t in LEAVES}
    png, taxon = geo_map.draw_geo_map(models["composed"], names)
    assert taxon.taxon_id == 102  # the most presences
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "Species 102" in taxon.caption()
    geo = tf.saved_model.load(models["geo"])
    assert png == geo_map.taxon_map_png(geo.serve, taxon)  # the prior the served model calls
    assert geo_map.draw_geo_map(models["vision_only"], names) is None


def test_a_geo_export_without_locations_gives_a_vision_only_model_that_says_so(models):
    info = models["vision_only_info"]
    assert info["geo"] == "none" and "no geo prior" in info["explanation"] and "vision-only" in info["explanation"]
    assert not os.path.exists(os.path.join(models["vision_only"], compose.THRESHOLDS_ASSET))
    images = photos(3)
    served = serve(models["vision_only"], images, [45.0, -30.0, 10.0], [10.0, 140.0, -70.0])
    np.testing.assert_allclose(served["probabilities"], vision_alone(models, images)["probabilities"], atol=1e-6)
    assert not served["nearby"].any()
    assert compose.geo_status(None)[0] == "disabled"


def test_geo_leaves_must_match_the_vision_leaves(models, tmp_path):
    other = str(tmp_path / "taxonomy.csv")
    examples_factory.write_taxonomy(other, [101, 102, 104])
    with pytest.raises(ValueError, match="not the vision model's leaves"):
        compose.compose_serving(models["vision"], models["geo"], other, models["transform_graph"],
                                str(tmp_path / "out"))


# The gate: vision alone against vision with the prior, on test examples with coordinates.

def gate_inputs(prior_rank, vision_rank, located):
    n = len(prior_rank)
    return GateInputs(leaf_taxon_id=np.arange(n) % 3 + 101, iconic_taxon=["Plantae"] * n, leaf_rank=["species"] * n,
                      leaf_train_photos=[60] * n, candidate_rank=prior_rank, candidate_taxa={101: "a", 102: "b", 103: "c"},
                      vision_rank=vision_rank, has_location=located)


def test_the_prior_check_blocks_any_top1_loss_on_examples_with_coordinates():
    located = np.array([True] * 8 + [False] * 4)
    vision = np.array([1, 2, 2, 1, 1, 3, 1, 2] + [2, 2, 2, 2])
    better = np.array([1, 1, 1, 1, 1, 2, 1, 1] + [1, 1, 1, 1])  # the unlocated rows cannot count
    check = geo_prior_check(gate_inputs(better, vision, located), GateConfig())
    assert check.passed and check.name == "geo_prior_top1" and check.n == 8
    assert check.value == pytest.approx(7 / 8 - 4 / 8) and "gained" in check.explanation
    worse = vision.copy()
    worse[0] = 2  # one example lost, none gained
    blocked = geo_prior_check(gate_inputs(worse, vision, located), GateConfig())
    assert not blocked.passed and blocked.value == pytest.approx(-1 / 8) and "worse" in blocked.explanation
    nowhere = geo_prior_check(gate_inputs(worse, vision, np.zeros(12, bool)), GateConfig())
    assert nowhere.passed and nowhere.n == 0
    comparison = geo_prior_comparison(gate_inputs(better, vision, located), "trained", "combined")
    assert (comparison.n, comparison.n_located, comparison.gained, comparison.lost) == (12, 8, 3, 0)
    assert comparison.vision_top1 == pytest.approx(0.5) and comparison.prior_top1 == pytest.approx(7 / 8)


def test_outcome_rows_carry_the_vision_rank_and_location_into_the_gate():
    served = {"top_taxon_ids": np.array([[101, 102]]), "vision_top_taxon_ids": np.array([[102, 101]])}
    missed = {"top_taxon_ids": np.array([[101, 103]]), "vision_top_taxon_ids": np.array([[101, 103]])}
    value = count_outcomes([outcome_element(101, served, located=True)] * 3 + [outcome_element(102, missed)] * 2)
    key = taxon_outcomes.OutcomeKey
    assert taxon_outcomes.decode(value) == ([
        (key(101, "Plantae", "species", 60, candidate_rank=1, baseline_rank=-1, shared=False, vision_rank=2,
             has_location=True, baseline_vision_rank=-1), 3),
        (key(102, "Plantae", "species", 60, candidate_rank=0, baseline_rank=-1, shared=False, vision_rank=0,
             has_location=False, baseline_vision_rank=-1), 2)], [(102, 101, 2)])
    inputs = release_inputs.gate_inputs(value, {101: "a", 102: "b"}, None, None)
    assert inputs.vision_rank.tolist() == [2, 2, 2, 0, 0] and inputs.has_location.tolist() == [True] * 3 + [False] * 2
    assert inputs.baseline_vision_rank is None and inputs.confusions == [(102, 101, 2)]  # a first release
    with pytest.raises(ValueError, match="re-run the Evaluator"):
        taxon_outcomes.decode({"fields": taxon_outcomes.FIELDS[:7], "outcomes": [], "confusions": []})


def test_outcome_rows_carry_the_baseline_vision_rank():
    candidate = {"top_taxon_ids": np.array([[101, 102, 103]]), "vision_top_taxon_ids": np.array([[102, 103, 104, 101]])}
    baseline = {"top_taxon_ids": np.array([[101]]), "vision_top_taxon_ids": np.array([[102, 101]])}  # with a prior
    missed = {"top_taxon_ids": np.array([[101, 103]]), "vision_top_taxon_ids": np.array([[101, 103]])}
    vision_only = {"top_taxon_ids": np.array([[101, 103, 102]])}  # no vision output: its served rank is its vision rank
    value = count_outcomes([outcome_element(101, candidate, baseline, located=True)] * 3
                           + [outcome_element(102, missed, vision_only)] * 2, baseline_leaf_taxa={101, 102})
    taxa = {101: "a", 102: "b"}

    def parse(baseline_taxa=taxa):
        return release_inputs.gate_inputs(value, taxa, baseline_taxa, "1")

    inputs = parse()
    assert inputs.baseline_rank.tolist() == [1, 1, 1, 3, 3] and inputs.baseline_vision_rank.tolist() == [2, 2, 2, 3, 3]
    assert inputs.vision_rank.tolist() == [4, 4, 4, 0, 0] and inputs.shared.all()
    assert parse(None).baseline_vision_rank is None  # the baseline columns are ignored on a first release
    result = evaluate_gate(inputs, GateConfig(common_taxa_min_train_photos=50))
    assert {t.name for t in result.thresholds} >= {"common_vision_top1_regression", "common_vision_top5_regression"}
    assert result.skipped_checks == []


def outcome_element(taxon: int, candidate: dict, baseline: dict = None, located=None):
    """An example as the TaxonOutcomes metric's combiner sees it: its slice features and each model's outputs
    (`located`: the candidate's `has_location` output; None: a vision-only model without that output)."""
    feats = {features.LEAF_TAXON_ID: np.array([taxon]), features.ICONIC_TAXON: np.array([b"Plantae"]),
             features.LEAF_RANK: np.array([b"species"]), features.LEAF_TRAIN_PHOTOS: np.array([60])}
    if located is not None:
        candidate = {**candidate, taxon_metrics.HAS_LOCATION: np.array([located])}
    predictions = {"candidate": candidate, **({"baseline": baseline} if baseline else {})}
    return types.SimpleNamespace(features=feats, predictions=predictions)


def count_outcomes(elements, baseline_leaf_taxa=None) -> str:
    """The metric's value over `elements`, counted in two accumulators and merged as Beam does."""
    baseline_name = None if baseline_leaf_taxa is None else "baseline"
    combiner = taxon_metrics._OutcomeCombiner("outcomes", "candidate", baseline_name,
                                              frozenset(baseline_leaf_taxa or ()))
    accumulators = [combiner.create_accumulator(), combiner.create_accumulator()]
    for i, element in enumerate(elements):
        combiner.add_input(accumulators[i % 2], element)
    return combiner.extract_output(combiner.merge_accumulators(accumulators))["outcomes"]


def test_the_report_shows_vision_alone_against_the_prior_with_the_map(tmp_path):
    located = np.array([True] * 6 + [False] * 2)
    inputs = gate_inputs(np.array([1, 1, 1, 2, 1, 1, 1, 0]), np.array([1, 2, 3, 2, 1, 0, 1, 0]), located)
    gate = GateConfig(first_release_vs_chance=False, min_top1=0.0)  # 8 examples: this test is about the map
    check = geo_prior_check(inputs, gate)
    result = evaluate_gate(inputs, gate, extra_checks=[check], geo_prior=geo_prior_comparison(
        inputs, "trained", "Vision scores are combined with the location prior.", "Geo scores of b (taxon 102)"))
    assert result.blessed and result.thresholds[-1].name == "geo_prior_top1"
    png = examples_factory.jpeg((1, 2, 3), 0)  # any image bytes
    html_path, json_path = write_gate_report(result, tmp_path, geo_map_png=png)
    html = html_path.read_text()
    assert "Location prior" in html and "vision alone" in html and "Geo scores of b (taxon 102)" in html
    assert html.count("data:image/png;base64,") == 3  # two figures of a first release and the map
    data = json.loads(json_path.read_text())
    assert data["geo_prior"]["prior_top1"] == pytest.approx(5 / 6) and data["geo_prior"]["vision_top1"] == pytest.approx(1 / 3)
    assert load_gate_result_json(json_path) == result
    write_gate_report(result, tmp_path)  # a rebuild finds the map beside the JSON
    assert html_path.read_text().count("data:image/png;base64,") == 3


# `inatvision predict`

@pytest.fixture(scope="module")
def releases(models, tmp_path_factory):
    """Release folders in the contract's layout, by hand: a vision-only one and one with the prior."""
    root = tmp_path_factory.mktemp("releases")
    made = {}
    for name, serving in (("vision_only", models["vision_only"]), ("geo", models["composed"])):
        release = root / name / "1"
        shutil.copytree(serving, release / release_layout.SERVING_DIR)
        shutil.copytree(models["vision"], release / release_layout.VISION_DIR)
        shutil.copy(models["taxonomy"], release / "taxonomy.csv")
        if name == "geo":
            shutil.copytree(models["geo"], release / release_layout.GEO_DIR)
            shutil.copy(os.path.join(models["geo"], geo_export.THRESHOLDS_FILE), release / "thresholds.csv")
        (release / release_layout.MARKER).write_text("now\n")
        made[name] = str(release)
    return made


@pytest.fixture(scope="module")
def real_photo(shared_data):
    folder = shared_data / "real-photos-sample" / "photos"
    first = sorted(os.listdir(folder))[0]
    return str(folder / first / sorted(os.listdir(folder / first))[0])


def invoke(*args):
    return CliRunner().invoke(predict_command, [str(arg) for arg in args])


def test_predict_on_a_real_photo_with_a_vision_only_release(releases, real_photo):
    result = invoke("--release", releases["vision_only"], real_photo, "--top", 2)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert real_photo in out and "no location: vision scores alone" in out and "location prior: none" in out
    listed = [line for line in out.splitlines() if line.strip()[:3] in ("1. ", "2. ")]
    assert len(listed) == 2 and all("Species 10" in line and "%" in line for line in listed)
    assert "common ancestor: genus Genus (taxon 900)" in out
    assert "nearby" not in out and "Traceback" not in result.output


def test_predict_json_parses_and_matches_the_served_model(releases, real_photo, models):
    result = invoke("--release", os.path.dirname(releases["vision_only"]), real_photo, real_photo, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["release"] == releases["vision_only"]  # a destination resolves to its newest release
    assert data["geo"] == "none" and data["location"] is None and not data["location_used"]
    assert len(data["photos"]) == 2
    suggestions = data["photos"][0]["suggestions"]
    assert [s["rank"] for s in suggestions] == [1, 2, 3]  # the release serves 3 of the default 5
    scores = [s["score"] for s in suggestions]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-5)
    assert {s["taxon_id"] for s in suggestions} == set(LEAVES) and all(s["nearby"] is None for s in suggestions)
    assert data["photos"][0]["common_ancestor"] == {"taxon_id": GENUS, "name": "Genus", "rank": "genus",
                                                    "score": pytest.approx(1.0, abs=1e-5)}
    jpeg = open(real_photo, "rb").read()
    nan = [np.nan]
    assert scores[0] == pytest.approx(float(serve(models["vision_only"], [jpeg], nan, nan)["top_scores"][0, 0]),
                                      abs=1e-6)


def test_predict_with_a_location_flags_nearby_taxa_and_notes_an_unused_one(releases, real_photo):
    result = invoke("--release", releases["geo"], real_photo, "--lat", 45, "--lng", 10, "--date", "2024-06-01",
                    "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["location_used"] and data["location"]["day_of_year"] == 153
    assert all(isinstance(s["nearby"], bool) for s in data["photos"][0]["suggestions"])
    text = invoke("--release", releases["geo"], real_photo, "--lat", 45, "--lng", 10).stdout
    assert "at 45.00000, 10.00000" in text and "expected nearby" in text
    vision_only = invoke("--release", releases["vision_only"], real_photo, "--lat", 45, "--lng", 10)
    assert vision_only.exit_code == 0 and "the location is not used" in vision_only.stdout


@pytest.mark.parametrize("args, message", [
    (["--lat", 95, "--lng", 10], "--lat 95.0 is out of range"),
    (["--lat", -10, "--lng", -181], "--lng -181.0 is out of range"),
    (["--lat", 10], "--lat needs --lng"),
    (["--lat", 10, "--lng", 10, "--date", "2024-13-40"], "YYYY-MM-DD"),
])
def test_predict_rejects_bad_coordinates_with_exit_2(releases, real_photo, args, message):
    result = invoke("--release", releases["vision_only"], real_photo, *args)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_predict_rejects_bad_photos_naming_them_with_exit_2(releases, real_photo, tmp_path):
    missing = tmp_path / "missing.jpg"
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("this is not a photo")
    result = invoke("--release", releases["vision_only"], real_photo, missing, not_a_photo)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{missing}: no such file" in result.stderr and f"{not_a_photo}: not a photo" in result.stderr
    # one line per rejected photo and a count; the readable photo is still predicted
    assert len(result.stderr.strip().splitlines()) == 3 and real_photo in result.stdout
    no_release = invoke("--release", tmp_path, real_photo)
    assert no_release.exit_code == 2 and "not a release" in no_release.stderr


@pytest.fixture()
def batch(real_photo, tmp_path):
    """Two good photos (a real one, a red one) and two bad ones (a text file named .jpg, a missing path)."""
    red = tmp_path / "red.jpg"
    red.write_bytes(examples_factory.jpeg(examples_factory.COLOURS[0], seed=0))
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("this is not a photo")
    return {"good": [real_photo, str(red)],
            "bad": {str(not_a_photo): "not a photo the model can read (JPEG, PNG, GIF or BMP)",
                    str(tmp_path / "missing.jpg"): "no such file"}}


def test_predict_batch_predicts_the_readable_photos_and_names_each_rejected_one(releases, batch):
    (real, red), (not_a_photo, missing) = batch["good"], list(batch["bad"])
    photos = [real, not_a_photo, missing, red]
    result = invoke("--release", releases["vision_only"], *photos, "--json")
    assert result.exit_code == 2 and "Traceback" not in result.output
    data = json.loads(result.stdout)  # stdout is the JSON alone
    assert [p["photo"] for p in data["photos"]] == [real, red]
    assert data["rejected"] == [{"photo": path, "reason": reason} for path, reason in batch["bad"].items()]
    # each good photo gets the suggestions it gets alone: the bad ones shift nothing
    alone = json.loads(invoke("--release", releases["vision_only"], real, red, "--json").stdout)
    assert data["photos"] == alone["photos"]
    assert data["photos"][1]["suggestions"][0]["taxon_id"] == LEAVES[0]  # the red photo is the red class
    errors = result.stderr.strip().splitlines()
    assert errors == [f"error: {path}: {reason}" for path, reason in batch["bad"].items()] + [
        "error: 2 of 4 photos could not be read; the other 2 were predicted"]

    text = invoke("--release", releases["vision_only"], *photos)
    assert text.exit_code == 2 and "Traceback" not in text.output
    blocks = [line for line in text.stdout.splitlines() if "[no location" in line]
    assert [line.split()[0] for line in blocks] == [real, red]
    assert text.stdout.count("common ancestor:") == 2 and not any(path in text.stdout for path in batch["bad"])
    assert text.stderr.strip().splitlines() == errors


def test_predict_of_only_unreadable_photos_exits_2_without_loading_the_model(releases, batch, real_photo,
                                                                             tmp_path, monkeypatch):
    broken = tmp_path / "broken" / "1"  # a complete-looking release whose serving model cannot load
    (broken / release_layout.SERVING_DIR).mkdir(parents=True)
    (broken / release_layout.SERVING_DIR / "saved_model.pb").write_text("not a model")
    (broken / release_layout.MARKER).write_text("now\n")
    loading = invoke("--release", broken, real_photo)
    assert loading.exit_code == 2 and "cannot load" in loading.stderr  # so it is never loaded below

    bad = list(batch["bad"])
    loads = []
    monkeypatch.setattr(predict_module, "load_release", lambda path: loads.append(path))
    for release in (broken, releases["vision_only"]):
        for extra in ([], ["--json"]):
            result = invoke("--release", release, *bad, *extra)
            assert result.exit_code == 2 and "Traceback" not in result.output and result.stdout == ""
            assert result.stderr.strip().splitlines() == [
                f"error: {path}: {reason}" for path, reason in batch["bad"].items()] + [
                "error: none of the 2 photos could be read; nothing predicted"]
    one = invoke("--release", broken, bad[1])
    assert one.exit_code == 2 and one.stderr.strip().splitlines() == [
        f"error: {bad[1]}: no such file", "error: the photo could not be read; nothing predicted"]
    assert loads == []
    # the release folder is still checked first
    no_release = invoke("--release", tmp_path / "nowhere", *bad)
    assert no_release.exit_code == 2 and no_release.stderr.strip().splitlines() == [
        f"error: --release {tmp_path / 'nowhere'}: no such folder"]


def test_predict_of_good_photos_exits_0_with_an_empty_rejected(releases, batch):
    result = invoke("--release", releases["vision_only"], *batch["good"], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rejected"] == [] and [p["photo"] for p in data["photos"]] == batch["good"]
    assert all(len(p["suggestions"]) == 3 for p in data["photos"]) and result.stderr == ""
    text = invoke("--release", releases["vision_only"], *batch["good"])
    assert text.exit_code == 0 and text.stderr == "" and text.stdout.count("common ancestor:") == 2


def test_predict_module_exits_2_on_out_of_range_coordinates(releases, real_photo):
    process = subprocess.run([sys.executable, "-m", "inatvision.pipeline.predict", "--release", releases["vision_only"],
                              real_photo, "--lat", "12", "--lng", "500"], capture_output=True, text=True)
    assert process.returncode == 2
    assert process.stderr.strip().splitlines()[-1] == ("error: --lng 500.0 is out of range: a longitude is between "
                                                       "-180 and 180 degrees")


# The composed model in the Evaluator's metric and in the release.

def split_with_and_without_locations() -> list[tf.train.Example]:
    """Four photos of each leaf, one of its own colour; three with coordinates (two places), one without."""
    rows, photo_id = [], 1
    for label, taxon in enumerate(LEAVES):
        for i in range(4):
            place = None if i == 3 else (45.0, 10.0) if i % 2 else (-30.0, 140.0)
            rows.append(examples_factory.example(
                label, taxon, examples_factory.jpeg(examples_factory.COLOURS[(label + i) % 3], photo_id), photo_id,
                lat=place and place[0], lng=place and place[1]))
            photo_id += 1
    return rows


def test_tfma_taxon_outcomes_of_the_composed_model_feed_the_gate(models, tmp_path):
    import tensorflow_model_analysis as tfma

    from inatvision.components.evaluator.component import adapt_eval_config
    from inatvision.components.evaluator.eval_config import build_eval_config

    rows = split_with_and_without_locations()
    path = examples_factory.write_split(str(tmp_path / "Split-test"), rows)
    eval_config = adapt_eval_config(build_eval_config(GateConfig(), with_baseline=False), None)
    tfma.run_model_analysis(
        eval_shared_model=tfma.default_eval_shared_model(models["composed"], eval_config=eval_config),
        eval_config=eval_config, data_location=path, output_path=str(tmp_path / "evaluation"), file_format="tfrecords")
    inputs = release_inputs.gate_inputs(gate_component.taxon_outcomes(str(tmp_path / "evaluation")),
                                        {t: f"Species {t}" for t in LEAVES}, None, None)

    served = tf.saved_model.load(models["composed"]).signatures["serving_examples"](
        examples=tf.constant([row.SerializeToString() for row in rows]))
    expected = sorted(
        (taxon, taxon_metrics.rank_of(taxon, prior), taxon_metrics.rank_of(taxon, vision), i % 4 != 3)
        for i, (taxon, prior, vision) in enumerate(zip(np.repeat(LEAVES, 4), served["top_taxon_ids"].numpy(),
                                                       served["vision_top_taxon_ids"].numpy())))
    got = sorted(zip(inputs.leaf_taxon_id.tolist(), inputs.candidate_rank.tolist(), inputs.vision_rank.tolist(),
                     inputs.has_location.tolist()))
    assert got == expected
    assert inputs.has_location.sum() == 9

    # The ReleaseGate on this evaluation: its report shows the map the gate draws of the served prior.
    from tfx.types import standard_artifacts

    from inatvision.artifacts import GateReport, Taxonomy
    from inatvision.components.release_gate.component import ReleaseGate
    from inatvision.config import build_config

    model = artifact(standard_artifacts.Model, tmp_path / "model", models["composed"])
    model.set_string_custom_property("geo", "trained")
    taxonomy = artifact(Taxonomy, tmp_path / "taxonomy")
    os.makedirs(taxonomy.uri)
    shutil.copy(models["taxonomy"], taxonomy.uri)
    ReleaseGate.test_call(
        evaluation=artifact(standard_artifacts.ModelEvaluation, tmp_path / "evaluation"),
        model=model,
        baseline_model=artifact(standard_artifacts.Model, tmp_path / "baseline"), taxonomy=taxonomy,
        config_json=build_config("demo").sections_json("gate", "export"), config_overrides="",
        blessing=artifact(standard_artifacts.ModelBlessing, tmp_path / "blessing"),
        report=artifact(GateReport, tmp_path / "report"))
    png, taxon = geo_map.draw_geo_map(models["composed"], {t: f"Species {t}" for t in LEAVES})
    assert (tmp_path / "report" / "geo_map.png").read_bytes() == png
    assert json.loads((tmp_path / "report" / "gate_report.json").read_text())["geo_prior"]["map_caption"] == (
        taxon.caption())
    html = (tmp_path / "report" / "gate_report.html").read_text()
    assert base64.b64encode(png).decode("ascii") in html and "Geo scores of Species 102" in html


def test_tfma_records_the_baseline_vision_rank_from_its_own_vision_output(models, tmp_path):
    """A vision-only candidate against a baseline with the prior (the same vision model): the baseline's served
    and vision-only ranks come from its `top_taxon_ids` and `vision_top_taxon_ids`, and the gate's vision-alone
    checks see no change."""
    import tensorflow_model_analysis as tfma

    from inatvision.components.evaluator.component import adapt_eval_config
    from inatvision.components.evaluator.eval_config import BASELINE, CANDIDATE, build_eval_config

    rows = split_with_and_without_locations()
    path = examples_factory.write_split(str(tmp_path / "Split-test"), rows)
    eval_config = adapt_eval_config(build_eval_config(GateConfig(), with_baseline=True), LEAVES)
    tfma.run_model_analysis(
        eval_shared_model=[tfma.default_eval_shared_model(models[name], model_name=model_name, eval_config=eval_config)
                           for name, model_name in (("vision_only", CANDIDATE), ("composed", BASELINE))],
        eval_config=eval_config, data_location=path, output_path=str(tmp_path / "evaluation"), file_format="tfrecords")
    taxa = {t: f"Species {t}" for t in LEAVES}
    inputs = release_inputs.gate_inputs(gate_component.taxon_outcomes(str(tmp_path / "evaluation")), taxa, taxa, "1")

    def served(name):
        outputs = tf.saved_model.load(models[name]).signatures["serving_examples"](
            examples=tf.constant([row.SerializeToString() for row in rows]))
        return outputs["top_taxon_ids"].numpy(), outputs["vision_top_taxon_ids"].numpy()

    (candidate, _), (baseline, baseline_vision) = served("vision_only"), served("composed")
    truth = np.repeat(LEAVES, 4)
    expected = sorted(zip(truth.tolist(), *([taxon_metrics.rank_of(t, top) for t, top in zip(truth, ids)]
                                            for ids in (candidate, baseline, baseline_vision))))
    got = sorted(zip(inputs.leaf_taxon_id.tolist(), inputs.candidate_rank.tolist(), inputs.baseline_rank.tolist(),
                     inputs.baseline_vision_rank.tolist()))
    assert got == expected
    assert (inputs.baseline_rank != inputs.baseline_vision_rank).any()  # the prior moved some of the baseline's ranks
    np.testing.assert_array_equal(inputs.vision_rank, inputs.candidate_rank)  # the candidate has no prior
    result = evaluate_gate(inputs, GateConfig(common_taxa_min_train_photos=0, min_common_examples=12))
    checks = {t.name: t for t in result.thresholds}
    for name in ("common_vision_top1_regression", "common_vision_top5_regression"):
        assert (checks[name].n, checks[name].value, checks[name].ci_low) == (12, 0, 0), name
        assert checks[name].passed, name
    assert result.skipped_checks == []


def test_the_pusher_releases_the_composed_model_and_the_next_run_finds_both(models, tmp_path):
    from tfx.types import standard_artifacts

    from inatvision.artifacts import ExportReport, GateReport, Release, Taxonomy
    from inatvision.components.previous_release.component import PreviousRelease
    from inatvision.components.pusher.component import ReleasePusher
    from inatvision.config import build_config

    serving = artifact(standard_artifacts.Model, tmp_path / "compose", models["composed"])
    serving.set_string_custom_property("geo", "trained")
    serving.set_string_custom_property("geo_explanation", "combined with the prior")
    blessing = artifact(standard_artifacts.ModelBlessing, tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", 1)
    taxonomy = artifact(Taxonomy, tmp_path / "taxonomy")
    os.makedirs(taxonomy.uri)
    shutil.copy(models["taxonomy"], taxonomy.uri)
    report = artifact(GateReport, tmp_path / "report")
    os.makedirs(report.uri)
    (tmp_path / "report" / "gate_report.json").write_text(json.dumps(
        {"blessed": True, "summary": "ok", "overall": [{"candidate_top1": 0.9}],
         "geo_prior": {"vision_top1": 0.7, "prior_top1": 0.9, "n_located": 10}}))
    release = artifact(Release, tmp_path / "release")
    destination = str(tmp_path / "releases")
    ReleasePusher.test_call(
        model=serving, blessing=blessing, gate_report=report, taxonomy=taxonomy,
        export_report=artifact(ExportReport, tmp_path / "export_report"), destination=destination,
        config_json=build_config("demo").to_json(), config_overrides="", release=release,
        vision_model=artifact(standard_artifacts.Model, tmp_path / "vision", models["vision"]),
        geo_model=artifact(standard_artifacts.Model, tmp_path / "geo", models["geo"]))
    pushed = release.get_string_custom_property("path")
    assert sorted(os.listdir(pushed)) == sorted(["serving", "vision", "geo", "thresholds.csv", "taxonomy.csv",
                                                 "gate_report.json", "model_card.json", release_layout.MARKER])
    assert serving_info.read_serving_info(os.path.join(pushed, "serving"))["geo"] == "trained"
    assert os.path.exists(os.path.join(pushed, "vision", vision_export.KERAS_FILE))
    card = json.load(open(os.path.join(pushed, "model_card.json")))
    assert card["geo_prior"] == {"status": "trained", "explanation": "combined with the prior", "vision_top1": 0.7,
                                 "prior_top1": 0.9, "examples_with_coordinates": 10}
    assert card["model_fingerprint"] == release_layout.model_fingerprint(models["composed"])

    baseline = artifact(standard_artifacts.Model, tmp_path / "baseline")
    baseline_statistics = artifact(standard_artifacts.ExampleStatistics, tmp_path / "baseline_statistics")
    PreviousRelease.test_call(destination=destination, releases_state="", baseline_model=baseline,
                              baseline_statistics=baseline_statistics)
    baseline_serving = os.path.join(baseline.uri, "Format-Serving")
    assert release_layout.model_fingerprint(baseline_serving) == baseline.get_string_custom_property(
        "model_fingerprint")  # the Evaluator's "identical to the baseline" test compares serving models
    assert serving_info.read_serving_info(baseline_serving)["geo"] == "trained"
    # the Trainer warm-starts from the baseline's vision model, with its Keras file
    assert os.path.exists(os.path.join(release_layout.baseline_vision_dir(baseline.uri), vision_export.KERAS_FILE))
