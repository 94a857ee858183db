"""tf.data input pipelines over the Examples artifact's TFRecord shards."""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from inatvision import features
from inatvision.components.example_files import read_shard
from inatvision.components.trainer.image_preprocessing import train_image
from inatvision.components.transform import raw_inputs

AUTOTUNE = tf.data.AUTOTUNE
VISION_FEATURES = (features.IMAGE, features.LABEL)  # the raw features the vision model's inputs come from


def _files(file_patterns: list[str], shuffle: bool, seed: int | None) -> tf.data.Dataset:
    return tf.data.Dataset.list_files(file_patterns, shuffle=shuffle, seed=seed)


def _records(file_patterns: list[str], training: bool, seed: int | None) -> tf.data.Dataset:
    """Parallel reads across shards; order is fixed only for evaluation."""
    return _files(file_patterns, training, seed).interleave(
        read_shard,
        cycle_length=AUTOTUNE, num_parallel_calls=AUTOTUNE, deterministic=not training)


def vision_dataset(file_patterns: list[str], transform_output: tft.TFTransformOutput, num_classes: int,
                   image_size: int, batch_size: int, training: bool, shuffle_buffer: int = 10000,
                   seed: int | None = None, repeat: bool | None = None) -> tf.data.Dataset:
    """(images [b, s, s, 3], one-hot labels [b, classes]) batches; the label is the Transform graph's.

    Only the photo and the label are parsed. Training: shuffle, fused decode-and-crop, resize: uint8 levels
    (the flip and the colour jitter are model layers); the photo bytes skip the Transform graph, which decodes
    whole photos (docs/transform.md). Evaluation: the Transform graph's `image` (decoded, resized, uncropped),
    the path serving takes. Maps are parallel; each op inside a map runs on one thread: the parallel map
    already keeps every core busy, and splitting small ops across threads only adds hand-offs
    (benchmarks/input_pipeline.py).
    """
    records = _records(file_patterns, training, seed)
    if training:
        records = records.shuffle(shuffle_buffer, seed=seed)
    if repeat if repeat is not None else training:
        records = records.repeat()
    transform = transform_output.transform_features_layer()
    spec = raw_inputs.feature_spec(transform_output, VISION_FEATURES)

    def parse(serialized):
        raw = tf.io.parse_single_example(serialized, spec)
        if training:
            raw[features.IMAGE] = train_image(tf.reshape(raw[features.IMAGE], []), image_size)
        return raw

    def transformed(batch):
        if training:
            images = batch.pop(features.IMAGE)  # the augmented crops; the graph gives the label alone
            return images, tf.one_hot(transform(batch)[features.LABEL], num_classes)
        outputs = transform(batch)
        return outputs[features.IMAGE_PIXELS], tf.one_hot(outputs[features.LABEL], num_classes)

    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    # Each worker of a MultiWorkerMirroredStrategy reads its own files when training (the export writes at
    # least as many shards as workers); evaluation shards by element, so every example is read once.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.FILE if training else tf.data.experimental.AutoShardPolicy.DATA)
    return (records.map(parse, num_parallel_calls=AUTOTUNE, deterministic=not training)
            .batch(batch_size, drop_remainder=training)
            .map(transformed, num_parallel_calls=AUTOTUNE, deterministic=not training)
            .prefetch(AUTOTUNE)
            .with_options(options))


def count_records(file_patterns: list[str]) -> int:
    """Examples in the shards (one cheap pass without parsing)."""
    return int(_records(file_patterns, False, None).reduce(0, lambda count, _: count + 1))
