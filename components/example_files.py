"""Reading the Examples artifact's TFRecord shards, plain or gzipped by their name (TFX's own rule).

The export writes plain shards: the photos are JPEG bytes, which gzip cannot shrink, and inflating them
cost the Trainer's input pipeline about 0.14 ms of CPU per image (docs/benchmarks.md). Examples from
elsewhere (an importer, TFX's ExampleGen) are usually gzipped and named `*.gz`; both read the same.
"""
import tensorflow as tf


def compression_type(path: tf.Tensor) -> tf.Tensor:
    """"GZIP" for a `*.gz` path, "" otherwise (tfx_bsl's `detect_compression_type`, per file)."""
    return tf.where(tf.strings.regex_full_match(path, r".*\.gz"), "GZIP", "")


def read_shard(path: tf.Tensor) -> tf.data.Dataset:
    """The serialized tf.Examples of one shard."""
    return tf.data.TFRecordDataset(path, compression_type=compression_type(path))
