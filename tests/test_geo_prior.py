"""Location prior: scoring library on hand numbers, a tiny presence-only training run, the exports."""
import json
import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf

from inatvision import features
from inatvision.components.geo_prior import encoding, export, model as geo_model, run, scoring
from inatvision.taxonomy import read_taxonomy
from inatvision.config import ConfigError, build_config
from tests import examples_factory

FAMILY, GENUS_A, SPECIES_A1, SPECIES_A2, GENUS_B, SPECIES_B1, SPECIES_B2 = 10, 20, 21, 22, 30, 31, 32
TREE_ROWS = [  # a family with two genera of two species; leaves a1, a2, b1, b2 are classes 0..3
    f",{FAMILY},30,,,,Familia,family",
    f"{FAMILY},{GENUS_A},20,,,,GenusA,genus",
    f"{GENUS_A},{SPECIES_A1},10,0,,0,a1,species",
    f"{GENUS_A},{SPECIES_A2},10,1,,1,a2,species",
    f"{FAMILY},{GENUS_B},20,,,,GenusB,genus",
    f"{GENUS_B},{SPECIES_B1},10,2,,2,b1,species",
    f"{GENUS_B},{SPECIES_B2},10,3,,3,b2,species",
]
LEAVES = [101, 102, 103, 104]  # 104 is never observed with coordinates
PLACES = [(45.0, 10.0), (-30.0, 140.0), (10.0, -70.0)]  # (latitude, longitude) of 101, 102, 103


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    path = tmp_path_factory.mktemp("tree") / "taxonomy.csv"
    path.write_text(examples_factory.TAXONOMY_HEADER + "\n".join(TREE_ROWS) + "\n")
    return read_taxonomy(str(path))


def test_combine_renormalizes_with_the_floor_and_keeps_rows_without_location():
    vision = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]], np.float32)
    geo = np.array([[0.8, 0.001, 0.5], [0.0, 0.0, 1.0]], np.float32)
    combined = scoring.combine(vision, geo, np.array([True, False])).numpy()
    weighted = np.array([0.5 * 0.8, 0.3 * 0.005, 0.2 * 0.5])  # 0.001 is floored to 0.005
    np.testing.assert_allclose(combined[0], weighted / weighted.sum(), rtol=1e-6)
    np.testing.assert_allclose(combined[0], [0.797607, 0.002991, 0.199402], atol=1e-6)
    np.testing.assert_array_equal(combined[1], vision[1])
    np.testing.assert_array_equal(scoring.combine(vision, None, np.array([True, True])).numpy(), vision)
    traced = tf.function(lambda v, g, h: scoring.combine(v, g, h, min_score=0.01))
    np.testing.assert_allclose(traced(vision, geo, np.array([True, False])).numpy()[0, 1],
                               0.3 * 0.01 / (0.4 + 0.003 + 0.1), rtol=1e-6)


def test_tree_and_roll_up(tree):
    assert tree.taxon_ids == (FAMILY, GENUS_A, SPECIES_A1, SPECIES_A2, GENUS_B, SPECIES_B1, SPECIES_B2)
    assert tree.leaves_below == ((0, 1, 2, 3), (0, 1), (0,), (1,), (2, 3), (2,), (3,))
    rolled = scoring.roll_up(np.array([[0.1, 0.2, 0.3, 0.4]]), scoring.ancestor_matrix(tree)).numpy()
    np.testing.assert_allclose(rolled[0], [1.0, 0.3, 0.1, 0.2, 0.7, 0.3, 0.4], rtol=1e-6)


@pytest.mark.parametrize("leaf_scores, expected_taxon, expected_score", [
    ([0.9, 0.05, 0.05, 0.0], GENUS_A, 0.95),  # the species has 0.9 but species are never suggested
    ([0.78, 0.0, 0.22, 0.0], FAMILY, 1.0),  # exactly 0.78 does not exceed 0.78
    ([0.781, 0.0, 0.219, 0.0], GENUS_A, 0.781),
    ([0.4, 0.3, 0.2, 0.1], FAMILY, 1.0),
    ([0.2, 0.2, 0.2, 0.1], scoring.NO_TAXON, 0.0),  # unnormalized scores (e.g. geo) may reach no node
])
def test_common_ancestor(tree, leaf_scores, expected_taxon, expected_score):
    found = scoring.common_ancestor(np.array([leaf_scores], np.float32), tree)
    assert found.taxon_id.numpy().tolist() == [expected_taxon]
    assert found.score.numpy()[0] == pytest.approx(expected_score, abs=1e-6)


def test_common_ancestor_reaches_species_only_when_allowed_and_traces(tree):
    scores = np.array([[0.9, 0.05, 0.05, 0.0], [0.0, 0.0, 0.1, 0.85]], np.float32)
    assert scoring.common_ancestor(scores, tree, min_rank_level=10).taxon_id.numpy().tolist() == [SPECIES_A1,
                                                                                                  SPECIES_B2]
    traced = tf.function(lambda s: scoring.common_ancestor(s, tree).taxon_id)
    assert traced(tf.constant(scores)).numpy().tolist() == [GENUS_A, GENUS_B]


def test_expected_nearby_includes_the_threshold():
    nearby = scoring.expected_nearby(np.array([[0.2, 0.05, 0.0]]), np.array([0.1, 0.1, 0.0]))
    assert nearby.numpy().tolist() == [[True, False, True]]


def test_encodings():
    np.testing.assert_allclose(encoding.encode_location([90.0], [180.0]).numpy(), [[0, -1, 0, -1]], atol=1e-6)
    np.testing.assert_allclose(encoding.encode_date([1, 0]).numpy(), [[0, 1], [0, 0]], atol=1e-6)
    both = encoding.network_input(encoding.encode_location([0.0], [0.0]), encoding.encode_date([100]), use_date=True)
    assert both.shape == (1, encoding.input_size(True))


def test_loss_at_even_odds_and_background_on_the_sphere():
    logits = tf.zeros([2, 3])
    loss = geo_model.full_assume_negative_loss(logits, logits, tf.constant([0, 2]), positive_weight=2048.0)
    assert float(loss) == pytest.approx((2048 + 2 + 3) * math.log(2), rel=1e-6)
    latitude, longitude = geo_model.random_locations(20000)
    assert np.mean(np.abs(latitude.numpy()) > 30) == pytest.approx(0.5, abs=0.02)  # area above 30 degrees
    assert np.abs(longitude.numpy()).max() <= 180


def test_positive_weight_is_the_recipes_2048_or_the_class_count():
    production, demo = build_config("production").geo, build_config("demo").geo
    assert production.positive_weight == 2048 and production.effective_positive_weight(17) == 2048
    assert demo.positive_weight is None and demo.effective_positive_weight(17) == 17
    assert build_config("production", ["geo.positive_weight=none"]).geo.effective_positive_weight(8142) == 8142
    assert build_config("demo", ["geo.positive_weight=64"]).geo.effective_positive_weight(5) == 64
    with pytest.raises(ConfigError, match="geo.positive_weight"):
        build_config("demo", ["geo.positive_weight=0"])
    assert geo_model.build_presence_model(5, demo, encoding.encode_location).positive_weight == 5


def _example(leaf: int, photo_id: int, place=None, accuracy=10.0, observation=None):
    label = LEAVES.index(leaf)
    lat, lng = place if place else (None, None)
    example = examples_factory.example(label, leaf, b"never decoded", photo_id, lat=lat, lng=lng)
    if place:
        example.features.feature[features.POSITIONAL_ACCURACY].float_list.value[0] = accuracy
    if observation:
        example.features.feature[features.OBSERVATION_UUID].bytes_list.value[0] = observation
    return example


def _around(place, rng):
    return place[0] + rng.uniform(-1.5, 1.5), place[1] + rng.uniform(-1.5, 1.5)


def _fn_args(tmp, train, evaluation, config):
    taxonomy = os.path.join(tmp, "taxonomy.csv")
    examples_factory.write_taxonomy(taxonomy, LEAVES)
    train_files = [examples_factory.write_split(os.path.join(tmp, "Split-train"), train)]
    return SimpleNamespace(
        train_files=train_files, transform_graph_path=examples_factory.write_transform_graph(
            tmp, train_files, image_size=8, max_positional_accuracy_m=config.geo.max_positional_accuracy_m),
        eval_files=[examples_factory.write_split(os.path.join(tmp, "Split-eval"), evaluation)],
        serving_model_dir=os.path.join(tmp, "serving"), model_run_dir=os.path.join(tmp, "run"),
        custom_config={"config": config.to_json(), "taxonomy_path": taxonomy})


def _tiny_config(**geo):
    return build_config("demo", [f"geo.{key}={value}" for key, value in geo.items()])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = np.random.default_rng(0)
    located = [(leaf, _around(place, rng)) for leaf, place in zip(LEAVES, PLACES) for _ in range(20)]
    train = [_example(leaf, photo, place) for photo, (leaf, place) in enumerate(located)]
    train += [_example(101, 900, PLACES[0], observation=b"obs-0"),  # a second photo of observation 0
              _example(102, 901, PLACES[0], accuracy=1e6)]  # too imprecise: would put 102 at 101's place
    train += [_example(104, 910 + i) for i in range(5)]
    evaluation = [_example(leaf, 1000 + 10 * k + i, _around(place, rng))
                  for k, (leaf, place) in enumerate(zip(LEAVES, PLACES)) for i in range(4)]
    args = _fn_args(str(tmp_path_factory.mktemp("geo")), train, evaluation,
                    _tiny_config(epochs=40, batch_size=16, learning_rate=0.005))
    run.run_fn(args)
    return args


def _served(args, latitudes, longitudes):
    serve = tf.saved_model.load(args.serving_model_dir).signatures["serving_default"]
    return serve(latitude=tf.constant(latitudes, tf.float32), longitude=tf.constant(longitudes, tf.float32),
                 day_of_year=tf.zeros([len(latitudes)], tf.int64))["geo_scores"].numpy()


def test_each_taxon_scores_highest_at_its_own_place(trained):
    scores = _served(trained, [lat for lat, _ in PLACES], [lng for _, lng in PLACES])
    located_taxa = scores[:, :3]
    assert located_taxa.argmax(axis=1).tolist() == [0, 1, 2]  # per place, its own taxon wins
    assert located_taxa.argmax(axis=0).tolist() == [0, 1, 2]  # per taxon, its own place wins
    assert (located_taxa[~np.eye(3, dtype=bool)] < 0.5).all(), located_taxa  # not ~1 wherever anything lives
    np.testing.assert_array_equal(scores[:, 3], 1.0)  # no presences: present everywhere, never floored


def test_thresholds_summary_and_assets(trained):
    thresholds = export.read_thresholds(os.path.join(trained.serving_model_dir, export.THRESHOLDS_FILE))
    rows = export.read_threshold_rows(os.path.join(trained.serving_model_dir, export.THRESHOLDS_FILE))
    assert [(int(r["taxon_id"]), int(r["presences"])) for r in rows] == [(101, 20), (102, 20), (103, 20), (104, 0)]
    assert thresholds[3] == 0 and (thresholds[:3] > 0).all()
    scores = _served(trained, [lat for lat, _ in PLACES], [lng for _, lng in PLACES])
    nearby = scoring.expected_nearby(scores, thresholds).numpy()
    assert nearby.diagonal().all() and nearby[:, 3].all()
    assert os.path.exists(os.path.join(trained.serving_model_dir, "assets", "taxonomy.csv"))
    summary = json.load(open(os.path.join(trained.model_run_dir, run.SUMMARY_FILE)))
    assert summary["status"] == "trained"
    assert summary["train"] == {"examples": 67, "without_location": 5, "excluded_by_accuracy": 1,
                                "repeated_photos_of_an_observation": 1, "presences": 60}
    assert summary["leaves_without_presences"] == [104]
    assert summary["positive_weight"] == 4  # demo: the number of leaves
    assert summary["eval_metrics"]["presences"] == 12 and summary["eval_metrics"]["top1"] >= 0.9


def test_served_geo_scores_equal_the_training_path(trained):
    """Both signatures apply the Transform graph as the GeoTrainer read its locations: the exported network on
    the GeoTrainer's features gives the served scores within 1e-5."""
    import tensorflow_transform as tft

    from inatvision.components.example_files import read_shard
    from inatvision.components.geo_prior import presences

    locations = presences.read_locations(trained.eval_files, tft.TFTransformOutput(trained.transform_graph_path))
    loaded = tf.saved_model.load(trained.serving_model_dir)
    expected = loaded.score(locations.location_encoding, locations.date_encoding)["geo_scores"].numpy()
    records = list(tf.data.Dataset.from_tensor_slices(trained.eval_files).interleave(read_shard).as_numpy_iterator())
    by_example = loaded.signatures["serving_examples"](examples=tf.constant(records))
    np.testing.assert_allclose(by_example["geo_scores"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(by_example[features.HAS_LOCATION].numpy(), locations.has_location)
    parsed = tf.io.parse_example(records, {
        features.LATITUDE: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")),
        features.LONGITUDE: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan")),
        features.DAY_OF_YEAR: tf.io.FixedLenFeature([], tf.int64, default_value=0)})
    by_place = loaded.signatures["serving_default"](latitude=parsed[features.LATITUDE],
                                                    longitude=parsed[features.LONGITUDE],
                                                    day_of_year=parsed[features.DAY_OF_YEAR])
    np.testing.assert_allclose(by_place["geo_scores"].numpy(), expected, atol=1e-5)


def test_no_usable_coordinates_gives_the_marker_and_no_model(tmp_path):
    train = [_example(101, 1), _example(102, 2, PLACES[1], accuracy=1e6)]
    args = _fn_args(str(tmp_path), train, [_example(101, 3)], _tiny_config(epochs=1))
    run.run_fn(args)
    assert os.listdir(args.serving_model_dir) == [export.NO_LOCATIONS_FILE]
    assert "no geo prior" in open(os.path.join(args.serving_model_dir, export.NO_LOCATIONS_FILE)).read()
    summary = json.load(open(os.path.join(args.model_run_dir, run.SUMMARY_FILE)))
    assert summary["status"] == "no_locations" and summary["train"]["excluded_by_accuracy"] == 1
