"""The Trainer's training speed fed by its real input pipeline against the same model fed from memory.

    python -m benchmarks.trainer_step

The demo profile's model and optimizer (`inatvision/config.py`: Xception at 71 px, global batch 32, float32),
built and compiled as the Trainer does it (`components.trainer.model`). Photos: the generated sample export's
(`inatvision.sample_export`, 300 to 500 px JPEGs like iNaturalist's medium size), or `--photos DIR`; they are
written into a temporary gzipped TFRecord of tf.Examples and read by `input_pipeline.vision_dataset`
(training=True: shuffle, fused decode-and-crop, resize, uint8 batches). The in-memory reference is one
batch of uint8 images and one-hot labels repeated (`Dataset.from_tensors(...).repeat()`), so it costs nothing
to produce. A first `fit` call traces the training step (about a minute here) and is not timed; each round
then times `--steps` steps of one `fit` call per feed, from the end of the `--warmup-steps`-th step, and
the figures are medians over `--rounds`. Ends with `fed_img_s=<n> memory_img_s=<n> ratio=<n>`.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from benchmarks._common import (generated_photos, load_average, median, photo_files, step_timer, write_examples,
                               write_transform_graph)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402  (after _common sets the environment)
import tf_keras as keras  # noqa: E402

from inatvision.components.trainer import input_pipeline, model as classifier  # noqa: E402
from inatvision.config import demo  # noqa: E402

NUM_CLASSES = 16  # about the demo export's class count; only the classifier layer depends on it


def timed_fit(model: keras.Model, dataset: tf.data.Dataset, warmup_steps: int, steps: int,
              batch_size: int) -> tuple[float, float]:
    """(images/s, CPU ms per image) over `steps` steps that follow `warmup_steps` steps of one fit call."""
    times = step_timer()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup_steps + steps, callbacks=[times], verbose=0)
    first, last = warmup_steps - 1, warmup_steps + steps - 1
    seconds = times.wall[last] - times.wall[first]
    cpu_seconds = times.cpu[last] - times.cpu[first]
    return steps * batch_size / seconds, 1000 * cpu_seconds / (steps * batch_size)


def main() -> None:
    trainer_config = demo().trainer
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", help="folder of JPEGs (default: the generated sample export's photos)")
    parser.add_argument("--species", type=int, default=8, help="sample export size when --photos is not given")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round and feed")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size, batch_size = trainer_config.image_size, trainer_config.global_batch_size

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        paths = photo_files(args.photos) if args.photos else generated_photos(folder, args.species)
        photos = [open(path, "rb").read() for path in paths]
        shards = write_examples(os.path.join(folder, "data_tfrecord"), photos, NUM_CLASSES, shards=2)
        graph = write_transform_graph(folder, shards, size)
        setup_s = time.perf_counter() - start

        keras.mixed_precision.set_global_policy(trainer_config.precision)
        model = classifier.build_classifier(NUM_CLASSES, trainer_config)
        classifier.compile_classifier(model, trainer_config, steps_per_epoch=len(photos) // batch_size)
        fed = input_pipeline.vision_dataset(shards, graph, NUM_CLASSES, size, batch_size, training=True,
                                            shuffle_buffer=trainer_config.shuffle_buffer)
        rng = np.random.default_rng(0)
        images = tf.constant(rng.integers(0, 256, (batch_size, size, size, 3), dtype=np.uint8))
        labels = tf.one_hot(rng.integers(0, NUM_CLASSES, batch_size), NUM_CLASSES)
        memory = tf.data.Dataset.from_tensors((images, labels)).repeat()

        start = time.perf_counter()
        model.fit(fed, epochs=1, steps_per_epoch=2, verbose=0)  # traces the training step
        trace_s = time.perf_counter() - start
        fed_runs, memory_runs = [], []
        for _ in range(args.rounds):
            fed_runs.append(timed_fit(model, fed, args.warmup_steps, args.steps, batch_size))
            memory_runs.append(timed_fit(model, memory, args.warmup_steps, args.steps, batch_size))

    fed_img_s, memory_img_s = median([r for r, _ in fed_runs]), median([r for r, _ in memory_runs])
    print(json.dumps({
        "photos": len(paths), "image_size": size, "batch_size": batch_size, "precision": trainer_config.precision,
        "timed_steps_per_round": args.steps, "setup_s": round(setup_s, 1), "first_fit_s": round(trace_s, 1),
        "fed_img_s_rounds": [round(r, 1) for r, _ in fed_runs],
        "memory_img_s_rounds": [round(r, 1) for r, _ in memory_runs],
        "fed_cpu_ms_per_img": round(median([c for _, c in fed_runs]), 1),
        "memory_cpu_ms_per_img": round(median([c for _, c in memory_runs]), 1),
        # On a CPU-only machine the pipeline and the training step share the cores, so with every core busy
        # the fed rate is the in-memory rate times this: a figure less sensitive to other processes' load.
        "cpu_time_ratio": round(median([c for _, c in memory_runs]) / median([c for _, c in fed_runs]), 3),
        "load_average": load_average()}))
    print(f"fed_img_s={fed_img_s:.1f} memory_img_s={memory_img_s:.1f} ratio={fed_img_s / memory_img_s:.2f}")


if __name__ == "__main__":
    main()
