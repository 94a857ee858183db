"""The one "has a location" rule (inatvision/location.py, docs/data.md): edge cases, and NumPy and TF agree."""
import numpy as np
import pytest

from inatvision import features, location
from inatvision.config import GeoConfig

LIMIT = GeoConfig().max_positional_accuracy_m
NAN, INF = float("nan"), float("inf")
# (latitude, longitude, positional accuracy, usable)
CASES = [
    (45.0, 10.0, 20.0, True),
    (0.0, 0.0, 5.0, True),  # 0/0 is a place
    (90.0, 180.0, NAN, True),  # the ranges include their ends; an absent accuracy is usable
    (-90.0, -180.0, LIMIT, True),  # an accuracy at the limit is usable
    (45.0, 10.0, LIMIT + 1.0, False),  # above the limit
    (45.0, 10.0, INF, False),
    (90.01, 10.0, 20.0, False),
    (-95.0, 10.0, NAN, False),
    (10.0, 180.5, NAN, False),
    (10.0, -181.0, 5.0, False),
    (NAN, 10.0, 5.0, False),
    (10.0, NAN, 5.0, False),
    (NAN, NAN, NAN, False),
    (INF, 10.0, NAN, False),
    (10.0, -INF, NAN, False),
]
LATITUDES, LONGITUDES, ACCURACIES, USABLE = (np.array(column) for column in zip(*CASES))


def test_edge_cases_with_an_accuracy():
    np.testing.assert_array_equal(location.has_location(LATITUDES, LONGITUDES, ACCURACIES, LIMIT), USABLE)


def test_without_an_accuracy_only_the_coordinates_count():
    coordinates_ok = np.array([True] * 6 + [False] * 9)
    np.testing.assert_array_equal(location.has_location(LATITUDES, LONGITUDES), coordinates_ok)
    np.testing.assert_array_equal(location.has_location(LATITUDES, LONGITUDES, np.full(len(CASES), NAN), LIMIT),
                                  coordinates_ok)


def test_scalars_and_none():
    assert location.has_location(45.0, 10.0) and not location.has_location(None, 10.0)
    assert not location.has_location(45.0, None) and not location.has_location(None, None)
    assert location.has_location(45.0, 10.0, None, LIMIT)  # no accuracy at all
    assert location.has_location(45.0, 10.0, [None], LIMIT).tolist() == [True]
    assert not location.has_location(45.0, 10.0, 2 * LIMIT, LIMIT)
    assert location.has_location(45.0, 10.0).shape == ()


def test_an_accuracy_needs_the_limit():
    with pytest.raises(ValueError, match="max_positional_accuracy_m"):
        location.has_location(45.0, 10.0, 5.0)
    with pytest.raises(ValueError, match="max_positional_accuracy_m"):
        location.has_location_tf([45.0], [10.0], [5.0])


def test_numpy_and_tensorflow_agree():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    n = 4000
    latitudes = rng.uniform(-100, 100, n).astype(np.float32)
    longitudes = rng.uniform(-190, 190, n).astype(np.float32)
    accuracies = rng.uniform(0, 2 * LIMIT, n).astype(np.float32)
    for column in (latitudes, longitudes, accuracies):
        column[rng.random(n) < 0.1] = np.nan
    latitudes[:4] = [90.0, np.nextafter(np.float32(90), np.float32(91)), -90.0, 0.0]
    accuracies[:4] = [LIMIT, np.nextafter(np.float32(LIMIT), np.float32(LIMIT + 1)), np.inf, 0.0]
    latitudes, longitudes, accuracies = (np.concatenate([c, column]) for c, column in
                                         zip((LATITUDES, LONGITUDES, ACCURACIES), (latitudes, longitudes, accuracies)))
    graph = tf.function(lambda lat, lng, accuracy: location.has_location_tf(lat, lng, accuracy, LIMIT))  # Grappler
    expected = location.has_location(latitudes, longitudes, accuracies, LIMIT)
    for got in (location.has_location_tf(latitudes, longitudes, accuracies, LIMIT),
                graph(tf.constant(latitudes), tf.constant(longitudes), tf.constant(accuracies))):
        np.testing.assert_array_equal(got.numpy(), expected)
    coordinates_only = tf.function(location.has_location_tf)(tf.constant(latitudes), tf.constant(longitudes))
    np.testing.assert_array_equal(coordinates_only.numpy(), location.has_location(latitudes, longitudes))
    assert 0 < expected.sum() < len(expected)


def located_examples():
    """tf.Examples over CASES, an absent accuracy left out (as the export does), plus one without coordinates."""
    from tests import examples_factory

    rows = []
    for photo_id, (lat, lng, accuracy, _) in enumerate(CASES + [(None, None, NAN, False)], start=1):
        example = examples_factory.example(0, 101, b"", photo_id, lat=lat, lng=lng)
        if lat is not None:
            example.features.feature[features.POSITIONAL_ACCURACY].float_list.value[:] = [accuracy]
            if np.isnan(accuracy):
                del example.features.feature[features.POSITIONAL_ACCURACY]
        rows.append(example)
    return rows, np.append(USABLE, False)


def test_transform_and_the_geo_presences_apply_the_rule(tmp_path):
    """The Transform graph's `has_location` (as every model reads it) and the geo Trainer's presences."""
    import tensorflow as tf
    import tensorflow_transform as tft

    from inatvision.components.geo_prior import presences
    from inatvision.components.transform import raw_inputs
    from tests import examples_factory

    rows, expected = located_examples()
    path = examples_factory.write_split(str(tmp_path / "Split-train"), rows)
    graph = tft.TFTransformOutput(examples_factory.write_transform_graph(
        str(tmp_path), [path], image_size=8, max_positional_accuracy_m=LIMIT))
    raw = raw_inputs.parse_examples(tf.constant([row.SerializeToString() for row in rows]),
                                    raw_inputs.feature_spec(graph, exclude=[features.IMAGE]))
    transformed = graph.transform_features_layer()(raw)
    np.testing.assert_array_equal(transformed[features.HAS_LOCATION].numpy(), expected.astype(np.float32))

    chosen, counts = presences.select_presences(presences.read_locations([path], graph))
    assert counts["presences"] == expected.sum() and len(chosen) == expected.sum()
    coordinates_ok = location.has_location(*zip(*[(lat, lng) for lat, lng, _, _ in CASES]))
    assert counts["without_location"] == (~coordinates_ok).sum() + 1
    assert counts["excluded_by_accuracy"] == (coordinates_ok & ~USABLE).sum()
