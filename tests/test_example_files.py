"""The Examples shards read the same plain (as the export writes them) or gzipped (as an importer brings them)."""
import os

import tensorflow as tf

from inatvision.components.example_files import read_shard


def _write(path: str, records: list[bytes], options=None) -> str:
    with tf.io.TFRecordWriter(path, options=options) as writer:
        for record in records:
            writer.write(record)
    return path


def test_plain_and_gzipped_shards_read_the_same_records(tmp_path):
    records = [b"first", b"second", os.urandom(64)]
    plain = _write(str(tmp_path / "data_tfrecord-00000-of-00001"), records)
    gzipped = _write(str(tmp_path / "data_tfrecord-00000-of-00001.gz"), records, options="GZIP")
    assert os.path.getsize(plain) != os.path.getsize(gzipped)
    files = tf.data.Dataset.from_tensor_slices([plain, gzipped])
    assert [r.numpy() for r in files.interleave(read_shard, cycle_length=1)] == records + records
