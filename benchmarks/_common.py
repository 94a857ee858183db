"""Helpers the benchmarks share: the environment, photo files, temporary Examples shards, load figures."""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow or Keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import glob  # noqa: E402
import statistics  # noqa: E402

PHOTO_PATTERNS = ("*.jpg", "*.jpeg", "*.JPG", "*.JPEG")


def photo_files(directory: str) -> list[str]:
    """Every JPEG under `directory` (e.g. photos/<id>/medium.jpg), sorted."""
    found = set()
    for pattern in PHOTO_PATTERNS:
        found.update(glob.glob(os.path.join(directory, "**", pattern), recursive=True))
    if not found:
        raise SystemExit(f"no JPEG photos under {directory}")
    return sorted(found)


def generated_photos(folder: str, species: int) -> list[str]:
    """Writes a generated sample export (300 to 500 px JPEGs) under `folder` and returns its photo files."""
    from inatvision.sample_export import write_sample_export

    export_dir = os.path.join(folder, "export")
    write_sample_export(export_dir, species=species)
    return photo_files(os.path.join(export_dir, "photos"))


def write_examples(path: str, photos: list[bytes], num_classes: int, shards: int = 1) -> list[str]:
    """TFRecord shards of tf.Examples with every feature the curated schema requires (label and leaf taxon
    cycling over `num_classes`), written as the export writes them (plain, components/example_files.py)."""
    import tensorflow as tf

    from tests import examples_factory

    paths = [f"{path}-{shard:05d}-of-{shards:05d}" for shard in range(shards)]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    for index, jpeg in enumerate(photos):
        label = index % num_classes
        writers[index % shards].write(
            examples_factory.example(label, label + 1, jpeg, photo_id=index + 1).SerializeToString())
    for writer in writers:
        writer.close()
    return paths


def write_transform_graph(folder: str, shards: list[str], image_size: int):
    """The pipeline's Transform graph analyzed on `shards`, as a `TFTransformOutput`."""
    import tensorflow_transform as tft

    from tests import examples_factory

    return tft.TFTransformOutput(examples_factory.write_transform_graph(folder, shards, image_size))


def load_average() -> str:
    """The 1-minute load average and core count, so a figure can be read against contention."""
    try:
        one, _, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} on {os.cpu_count()} cores"


def median(values: list[float]) -> float:
    return statistics.median(values)


def step_timer():
    """A Keras callback that records wall and process CPU time at the end of every training batch.

    A plain `Callback` receives its logs as NumPy values, so Keras waits for each step to finish before calling
    it: the times are those of finished steps, on a GPU too.
    """
    import time

    import tf_keras as keras

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.wall, self.cpu = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.wall.append(time.perf_counter())
            self.cpu.append(time.process_time())

    return StepTimes()
