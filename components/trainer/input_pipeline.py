"""tf.data input pipelines over the Examples artifact's TFRecord shards."""
from __future__ import annotations

import tensorflow as tf

from inatvision import features
from inatvision.components.example_files import read_shard
from inatvision.components.trainer.image_preprocessing import eval_image, train_image

AUTOTUNE = tf.data.AUTOTUNE

VISION_FEATURES = {
    features.IMAGE: tf.io.FixedLenFeature([], tf.string),
    features.LABEL: tf.io.FixedLenFeature([], tf.int64),
}


def _files(file_patterns: list[str], shuffle: bool, seed: int | None) -> tf.data.Dataset:
    return tf.data.Dataset.list_files(file_patterns, shuffle=shuffle, seed=seed)


def _records(file_patterns: list[str], training: bool, seed: int | None) -> tf.data.Dataset:
    """Parallel reads across shards; order is fixed only for evaluation."""
    return _files(file_patterns, training, seed).interleave(
        read_shard,
        cycle_length=AUTOTUNE, num_parallel_calls=AUTOTUNE, deterministic=not training)


def vision_dataset(file_patterns: list[str], num_classes: int, image_size: int, batch_size: int,
                   training: bool, shuffle_buffer: int = 10000, seed: int | None = None,
                   repeat: bool | None = None) -> tf.data.Dataset:
    """(uint8 images [b, s, s, 3], one-hot labels [b, classes]) batches.

    Training: shuffle, fused decode-and-crop, resize (the flip is a model layer); evaluation: central crop, resize.
    Every map is parallel; labels are one-hot encoded per batch; batches are prefetched. Each op inside
    a map runs on one thread: the parallel map already keeps every core busy, and splitting small ops
    across threads only adds hand-offs (benchmarks/input_pipeline.py).
    """
    records = _records(file_patterns, training, seed)
    if training:
        records = records.shuffle(shuffle_buffer, seed=seed)
    if repeat if repeat is not None else training:
        records = records.repeat()
    preprocess = train_image if training else eval_image

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, VISION_FEATURES)
        return preprocess(example[features.IMAGE], image_size), example[features.LABEL]

    def one_hot(images, labels):
        return images, tf.one_hot(labels, num_classes)

    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    # Under MultiWorkerMirroredStrategy each worker trains on whole Examples files of its own (the file list is
    # shuffled with the same seed everywhere, so the shards are disjoint); evaluation takes every n-th example.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.FILE if training else tf.data.experimental.AutoShardPolicy.DATA)
    return (records.map(parse, num_parallel_calls=AUTOTUNE, deterministic=not training)
            .batch(batch_size, drop_remainder=training)
            .map(one_hot)
            .prefetch(AUTOTUNE)
            .with_options(options))


def count_records(file_patterns: list[str]) -> int:
    """Examples in the shards (one cheap pass without parsing)."""
    return int(_records(file_patterns, False, None).reduce(0, lambda count, _: count + 1))
