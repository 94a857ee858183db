"""Reading the Examples artifact's TFRecord shards, plain or gzipped by their name (TFX's own rule).

The export writes plain shards: the photos are JPEG bytes, which gzip cannot shrink, and inflating them
cost the Trainer's input pipeline about 0.14 ms of CPU per image (docs/benchmarks.md). Examples from
elsewhere (an importer, TFX's ExampleGen) are usually gzipped and named `*.gz`; both read the same.
"""
import tensorflow as tf
from tfx_bsl.tfxio import dataset_util


def read_shard(path: tf.Tensor) -> tf.data.Dataset:
    """The serialized tf.Examples of one shard, its compression told by tfx_bsl from the file name."""
    return tf.data.TFRecordDataset(path, compression_type=dataset_util.detect_compression_type(
        tf.reshape(path, [1])))
