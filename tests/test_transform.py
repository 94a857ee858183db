"""The Transform graph's own checks: the leaf-taxa vocabulary against taxonomy.csv, and the compiled image size."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from inatvision import features
from inatvision.components.transform import leaf_vocabulary, raw_inputs
from inatvision.errors import ConfigError, InputError
from inatvision.taxonomy import read_taxonomy
from tests import examples_factory

LEAVES = [101, 102, 103]
IMAGE_SIZE = 16


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("transform"))
    return tft.TFTransformOutput(examples_factory.transform_graph_of_taxa(tmp, LEAVES, IMAGE_SIZE))


def test_unknown_leaves_keep_the_vocabulary_order():
    assert leaf_vocabulary.unknown_leaves(["7", "101", "5"], [101, 102]) == ["7", "5"]
    assert leaf_vocabulary.unknown_leaves(["101"], [101]) == []


def test_examples_of_other_leaves_than_the_taxonomy_stop_the_trainer_naming_them(graph, tmp_path):
    same = tmp_path / "same.csv"
    examples_factory.write_taxonomy(str(same), LEAVES)
    leaf_vocabulary.check_against_taxonomy(graph, read_taxonomy(str(same)), str(same))
    other = tmp_path / "other.csv"
    examples_factory.write_taxonomy(str(other), [101, 104])
    with pytest.raises(InputError, match=r"other.csv: .* 2 leaf taxa .* \((102, 103|103, 102)\)"):
        leaf_vocabulary.check_against_taxonomy(graph, read_taxonomy(str(other)), str(other))


def test_the_image_size_is_compiled_into_the_graph(graph):
    raw_inputs.check_image_size(graph, IMAGE_SIZE)
    with pytest.raises(ConfigError, match=f"trainer.image_size=32, but the Transform graph resizes photos to "
                                          f"{IMAGE_SIZE}x{IMAGE_SIZE}"):
        raw_inputs.check_image_size(graph, 32)


def test_the_graph_gives_what_the_fed_features_determine(graph):
    """A photo alone gives the image (whole, resized, whole levels); locations alone give the location features."""
    photo = examples_factory.jpeg((200, 40, 40), seed=1, size=(64, 48))
    out = graph.transform_features_layer()(raw_inputs.photo_features(tf.constant([photo])))
    assert set(out) == {features.IMAGE_PIXELS}
    image = out[features.IMAGE_PIXELS].numpy()
    assert image.shape == (1, IMAGE_SIZE, IMAGE_SIZE, 3) and image.dtype == np.float32
    assert (image == np.floor(image)).all() and 0 <= image.min() and image.max() <= 255
    assert image[..., 0].mean() > 150 > image[..., 1].mean()  # red

    located = graph.transform_features_layer()(raw_inputs.location_features(
        tf.constant([45.0, float("nan")]), tf.constant([10.0, 0.0]), tf.constant([100, 0], tf.int64)))
    assert features.IMAGE_PIXELS not in located and features.LABEL not in located
    np.testing.assert_array_equal(located[features.HAS_LOCATION].numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(located[features.LOCATION_ENCODING].numpy()[1], [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(located[features.DATE_ENCODING].numpy()[1], [0.0, 0.0])
