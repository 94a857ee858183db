"""Hand-made tf.Examples and taxonomies for component-level tests."""
from __future__ import annotations

import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from inatvision import features
from inatvision.taxonomy import COLUMNS

TAXONOMY_HEADER = ",".join(COLUMNS) + "\n"
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (200, 40, 200), (40, 200, 200)]


def jpeg(colour, seed: int, size=(120, 96)) -> bytes:
    """A noisy photo of one colour, so a tiny model can tell classes apart."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_taxonomy(path: str, leaf_taxon_ids: list[int], genus_id: int = 900) -> None:
    """A genus (iconic Plantae) with one species leaf per id; leaf_class_id follows taxon_id order."""
    rows = [f"47126,{genus_id},20,,0,,Genus,genus\n", ",47126,70,,0,,Plantae,kingdom\n"]
    for index, taxon in enumerate(sorted(leaf_taxon_ids)):
        rows.append(f"{genus_id},{taxon},10,{index},0,{index},Species {taxon},species\n")
    rows.sort(key=lambda row: int(row.split(",")[1]))
    with open(path, "w") as f:
        f.write(TAXONOMY_HEADER + "".join(rows))


def example(label: int, leaf_taxon_id: int, image: bytes, photo_id: int, lat=None, lng=None) -> tf.train.Example:
    def b(v): return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
    def i(v): return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
    def f(v): return tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
    feats = {
        features.IMAGE: b(image), features.IMAGE_FORMAT: b(b"jpeg"), features.PHOTO_ID: i(photo_id),
        features.OBSERVATION_UUID: b(f"obs-{photo_id}".encode()), features.TAXON_ID: i(leaf_taxon_id),
        features.LEAF_TAXON_ID: i(leaf_taxon_id), features.LABEL: i(label), features.LEAF_RANK: b(b"species"),
        features.LEAF_TRAIN_PHOTOS: i(10), features.ICONIC_TAXON: b(b"Plantae"),
        features.QUALITY_GRADE: b(b"research"), features.LICENSE: b(b"CC-BY"),
        features.OBSERVED_ON: b(b"2020-06-01"), features.DAY_OF_YEAR: i(153),
    }
    if lat is not None:
        feats.update({features.LATITUDE: f(lat), features.LONGITUDE: f(lng), features.POSITIONAL_ACCURACY: f(10.0)})
    return tf.train.Example(features=tf.train.Features(feature=feats))


def write_split(directory: str, examples: list[tf.train.Example], shards: int = 1) -> str:
    """One gzipped file (its path), or `shards` files dealt round-robin (their glob pattern)."""
    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, f"data_tfrecord-{shard:05d}-of-{shards:05d}.gz") for shard in range(shards)]
    writers = [tf.io.TFRecordWriter(path, options="GZIP") for path in paths]
    for index, ex in enumerate(examples):
        writers[index % shards].write(ex.SerializeToString())
    for writer in writers:
        writer.close()
    return paths[0] if shards == 1 else os.path.join(directory, "data_tfrecord-*")


def write_examples_artifact(root: str, leaf_taxon_ids: list[int], per_class: dict[str, int],
                            shards: int = 1) -> dict[str, str]:
    """Split-<name>/ folders of coloured photos, one colour per class; returns split -> file (or pattern)."""
    files = {}
    photo_id = 1
    for split, count in per_class.items():
        rows = []
        for label, taxon in enumerate(sorted(leaf_taxon_ids)):
            for _ in range(count):
                rows.append(example(label, taxon, jpeg(COLOURS[label % len(COLOURS)], photo_id), photo_id,
                                    lat=10.0 * label, lng=-20.0 * label))
                photo_id += 1
        files[split] = write_split(os.path.join(root, f"Split-{split}"), rows, shards)
    return files


def examples_of_taxa(photos_per_taxon: dict[int, int], leaf_taxon_ids: list[int], first_photo_id: int = 1,
                     photo_size=(16, 16)) -> list[tf.train.Example]:
    """`photos_per_taxon[t]` small photos of each taxon, labelled by its position among `leaf_taxon_ids`."""
    rows = []
    photo_id = first_photo_id
    for taxon, count in sorted(photos_per_taxon.items()):
        label = sorted(leaf_taxon_ids).index(taxon) if taxon in leaf_taxon_ids else len(leaf_taxon_ids)
        for _ in range(count):
            rows.append(example(label, taxon, jpeg(COLOURS[label % len(COLOURS)], photo_id, photo_size), photo_id,
                                lat=10.0 * label, lng=-20.0 * label))
            photo_id += 1
    return rows


def write_transform_graph(root: str, train_files, image_size: int, max_positional_accuracy_m: float = 50000,
                          preprocessing_fn=None) -> str:
    """The Transform graph of `preprocessing_fn` (the pipeline's by default) analyzed on `train_files`, as TFX's
    Transform writes it (transform_fn/, transformed_metadata/, metadata/); returns its folder."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
    from tfx_bsl.public import tfxio

    from inatvision.components.data_validation.curated_schema import CURATED_SCHEMA
    from inatvision.components.transform import preprocessing

    preprocessing_fn = preprocessing_fn or preprocessing.preprocessing_fn
    with open(CURATED_SCHEMA) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    output = os.path.join(root, "transform_graph")
    source = tfxio.TFExampleRecord(file_pattern=list(np.atleast_1d(train_files)), schema=schema)
    custom_config = {"max_positional_accuracy_m": max_positional_accuracy_m, "image_size": image_size}
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=os.path.join(root, "transform_tmp")):
        transform_fn = ((pipeline | source.BeamSource(), source.TensorAdapterConfig())
                        | tft_beam.AnalyzeDataset(lambda inputs: preprocessing_fn(inputs, custom_config)))
        _ = transform_fn | tft_beam.WriteTransformFn(output)
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema), os.path.join(output, "metadata"))
    return output


def transform_graph_of_taxa(root: str, leaf_taxon_ids: list[int], image_size: int,
                            max_positional_accuracy_m: float = 50000) -> str:
    """The pipeline's Transform graph analyzed on one small photo of each leaf (for tests that hand-make
    their models); returns its folder."""
    rows = examples_of_taxa({taxon: 1 for taxon in leaf_taxon_ids}, leaf_taxon_ids)
    train = write_split(os.path.join(root, "transform_examples"), rows)
    return write_transform_graph(root, train, image_size, max_positional_accuracy_m)


def nearest_colour_classifier(colours: list, image_size: int):
    """A Keras classifier of photos (pixel levels, as the Transform graph gives them) into one class per colour,
    in the given order: its softmax ranks the classes by the squared distance of the photo's mean colour to
    theirs (logits -20 |mean - colour|^2 plus a constant)."""
    import tf_keras as keras

    centroids = np.stack([np.array(colour, np.float32) / 255.0 for colour in colours], axis=1)  # [3, classes]
    sharpness = 20.0
    images = keras.Input((image_size, image_size, 3), dtype=tf.float32)
    x = keras.layers.Rescaling(1 / 255.0)(images)
    x = keras.layers.GlobalAveragePooling2D()(x)
    probabilities = keras.layers.Dense(len(colours), activation="softmax", name="probabilities")(x)
    model = keras.Model(images, probabilities)
    model.get_layer("probabilities").set_weights(
        [2 * sharpness * centroids, -sharpness * np.sum(centroids ** 2, axis=0)])
    return model


def artifact(kind, uri):
    """An artifact of type `kind` at `uri`, its folder created (as TFX's local runner creates output folders)."""
    made = kind()
    made.uri = str(uri)
    os.makedirs(made.uri, exist_ok=True)
    return made
