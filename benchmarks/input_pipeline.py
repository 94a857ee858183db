"""The Trainer's training input pipeline against raw JPEG decoding, on real photos.

    python -m benchmarks.input_pipeline --photos /work/shared/data/real-photos-sample/photos

Writes the photos into a temporary TFRecord of tf.Examples (the features the Trainer parses, stored as the
export stores them), then reads it with `components.trainer.input_pipeline.vision_dataset(training=True)`:
shuffle, parse, fused decode-and-crop, resize to 299, uint8 batches of 32 with the Transform graph's labels
(nothing decoded is cached; the random flip is the model's first layer, on the accelerator). The reference is
`tf.io.decode_jpeg` of the same files in tf.data with parallel maps: whole-photo decoding alone, no crop.
Each round times both, each from a fresh iterator after a warm-up, over `--passes` passes of the files;
figures are medians over `--rounds`, and `ratio` is their quotient. The JSON line also gives each round's
paired ratio and the CPU time per image of each (this process, all threads), whose quotient moves less than
wall time when other processes load the machine. Ends with `pipeline_img_s=<n> raw_decode_img_s=<n> ratio=<n>`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time

from benchmarks._common import load_average, median, photo_files, write_examples, write_transform_graph

import tensorflow as tf  # noqa: E402  (after _common sets the environment)

from inatvision.components.trainer import input_pipeline  # noqa: E402

NUM_CLASSES = 10  # labels only feed tf.one_hot; their number does not change the work


def _timed(dataset: tf.data.Dataset, warmup_batches: int, batches: int, batch_size: int) -> tuple[float, float]:
    """(images/s, CPU ms per image) over `batches` batches after `warmup_batches`, from a fresh iterator.

    CPU time is this process's, all threads: it reads less into other processes' load than wall time does.
    """
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    del iterator  # stops its background threads before the next measurement
    images = batches * batch_size
    return images / seconds, 1000 * cpu_seconds / images


def raw_decode_dataset(paths: list[str], batch_size: int) -> tf.data.Dataset:
    """Read and fully decode each file in parallel; only the shapes are batched (the images differ in size)."""

    def decode(path):
        return tf.shape(tf.io.decode_jpeg(tf.io.read_file(path), channels=3))

    return (tf.data.Dataset.from_tensor_slices(paths).repeat()
            .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, help="folder of JPEGs, e.g. photos/<id>/medium.jpg")
    parser.add_argument("--image-size", type=int, default=299)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--passes", type=int, default=4, help="timed passes over the files per round (>= 2)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup-batches", type=int, default=10)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args()
    if args.passes < 2:
        parser.error("--passes must be at least 2")

    paths = photo_files(args.photos)
    photos = [open(path, "rb").read() for path in paths]
    batches = math.ceil(args.passes * len(paths) / args.batch_size)
    pipeline_rates, raw_rates, pipeline_cpu, raw_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        shards = write_examples(os.path.join(folder, "data_tfrecord"), photos, NUM_CLASSES, args.shards)
        graph = write_transform_graph(folder, shards, args.image_size)
        for _ in range(args.rounds):
            pipeline = input_pipeline.vision_dataset(
                shards, graph, NUM_CLASSES, args.image_size, args.batch_size, training=True, shuffle_buffer=10000)
            rate, cpu_ms = _timed(pipeline, args.warmup_batches, batches, args.batch_size)
            pipeline_rates.append(rate)
            pipeline_cpu.append(cpu_ms)
            rate, cpu_ms = _timed(raw_decode_dataset(paths, args.batch_size), args.warmup_batches, batches,
                                  args.batch_size)
            raw_rates.append(rate)
            raw_cpu.append(cpu_ms)
    pipeline_img_s, raw_img_s = median(pipeline_rates), median(raw_rates)
    print(json.dumps({
        "photos": len(paths), "megabytes": round(sum(map(len, photos)) / 1e6, 1), "image_size": args.image_size,
        "batch_size": args.batch_size, "timed_images_per_round": batches * args.batch_size,
        "pipeline_img_s_rounds": [round(r) for r in pipeline_rates], "raw_img_s_rounds": [round(r) for r in raw_rates],
        "paired_ratios": [round(p / r, 2) for p, r in zip(pipeline_rates, raw_rates)],
        "pipeline_cpu_ms_per_img": round(median(pipeline_cpu), 2), "raw_cpu_ms_per_img": round(median(raw_cpu), 2),
        # With every core busy the wall ratio tends to this; it moves less with other processes' load.
        "cpu_time_ratio": round(median(raw_cpu) / median(pipeline_cpu), 2),
        "load_average": load_average()}))
    print(f"pipeline_img_s={pipeline_img_s:.0f} raw_decode_img_s={raw_img_s:.0f} ratio={pipeline_img_s / raw_img_s:.2f}")


if __name__ == "__main__":
    main()
