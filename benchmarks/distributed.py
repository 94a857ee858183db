"""What distribution itself costs: the Trainer's model and optimizer with 1 and 2 replicas and 1 and 2 workers.

    python -m benchmarks.distributed [--steps 10 --warmup-steps 3 --image-size 71 --global-batch-size 16]

Each configuration runs in fresh processes (logical devices and TF_CONFIG must be set before TensorFlow starts):
`replicas1` one CPU device (the default strategy); `replicas2` MirroredStrategy over two logical CPU devices of
the same cores; `workers1` MultiWorkerMirroredStrategy in one process (collective ops, no peer); `workers2` two
processes on loopback joined by TF_CONFIG through the Trainer's own `distribution.strategy_for`. The model is
the demo profile's (`components.trainer.model`, float32) fed one in-memory uint8 batch repeated, so the figures
are the step and its all-reduce, not the input pipeline. The global batch is the same in every configuration.
Prints one JSON line per configuration, then
`replicas1_img_s=<n> replicas2_ratio=<n> workers1_ratio=<n> workers2_ratio=<n>` (ratios to replicas1).
On one machine the replicas share its cores: the ratios show the overhead of distributing, not a speed-up.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks._common import load_average

from inatvision.components.trainer import distribution  # noqa: E402

RESULT = "RESULT "


def _child(mode: str, args) -> None:
    import numpy as np
    import tensorflow as tf

    if mode == "replicas2":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from inatvision.components.trainer import model as classifier
    from inatvision.config import build_config

    from benchmarks.trainer_step import timed_fit

    if mode == "replicas2":
        strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    elif mode == "workers1":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif mode == "workers2":
        strategy = distribution.strategy_for(worker_timeout_s=300).strategy
    else:
        strategy = tf.distribute.get_strategy()
    config = build_config("demo", [f"trainer.image_size={args.image_size}",
                                   f"trainer.global_batch_size={args.global_batch_size}"]).trainer
    with strategy.scope():
        model = classifier.build_classifier(args.classes, config)
        classifier.compile_classifier(model, config, steps_per_epoch=100)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.global_batch_size, args.image_size, args.image_size, 3), dtype=np.uint8)
    labels = tf.one_hot(rng.integers(0, args.classes, args.global_batch_size), args.classes)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    data = tf.data.Dataset.from_tensors((images, labels)).repeat().with_options(options)
    img_s, cpu_ms = timed_fit(model, data, args.warmup_steps, args.steps, args.global_batch_size)
    print(RESULT + json.dumps({"config": mode, "replicas": strategy.num_replicas_in_sync,
                               "img_s": round(img_s, 2), "cpu_ms_per_image": round(cpu_ms, 1)}), flush=True)


def _run(mode: str, argv: list[str]) -> dict:
    command = [sys.executable, "-m", "benchmarks.distributed", "--child", mode, *argv]
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    if mode != "workers2":
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        outputs = [done.stdout + done.stderr]
    else:
        addresses = [f"localhost:{port}" for port in distribution.free_ports(2)]
        processes = [subprocess.Popen(command, env={**env, "TF_CONFIG": json.dumps({
            "cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for index in range(2)]
        outputs = [p.communicate()[0] for p in processes]
    for output in outputs:
        for line in output.splitlines():
            if line.startswith(RESULT):
                return json.loads(line[len(RESULT):])  # the first worker's figure: they step together
    raise SystemExit(f"{mode} gave no result:\n" + "\n".join(o[-3000:] for o in outputs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=71)
    parser.add_argument("--global-batch-size", type=int, default=16)
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args)
        return
    argv = [f"--steps={args.steps}", f"--warmup-steps={args.warmup_steps}", f"--image-size={args.image_size}",
            f"--global-batch-size={args.global_batch_size}", f"--classes={args.classes}"]
    results = {}
    for mode in ("replicas1", "replicas2", "workers1", "workers2"):
        results[mode] = _run(mode, argv)
        print(json.dumps({**results[mode], "load": load_average()}), flush=True)
    base = results["replicas1"]["img_s"]
    print(f"replicas1_img_s={base:.2f} " + " ".join(
        f"{mode}_ratio={results[mode]['img_s'] / base:.2f}" for mode in ("replicas2", "workers1", "workers2")))


if __name__ == "__main__":
    main()
