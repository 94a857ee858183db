"""Training images/s of the production model, float32 against mixed precision, on the GPUs it finds.

    python -m benchmarks.gpu_throughput                          # every GPU, global batch 256, 299 px
    python -m benchmarks.gpu_throughput --global-batch-size 128 --precisions float32,mixed_float16

The production profile's model and optimizer (`inatvision.config.production().trainer`: Xception at 299 px,
RMSprop, label smoothing, Keras' LossScaleOptimizer under mixed_float16), built and compiled by
`components.trainer.model` inside a `MirroredStrategy` over every visible GPU when there are several (the batch
is the global batch, as in the Trainer). Inputs are synthetic: one batch of uint8 images and one-hot labels held
in memory and repeated, so the figures are the model's ceiling, not the input pipeline's. Per precision one
`fit` call runs `--warmup-steps` untimed steps (tracing, autotuning) then `--steps` timed steps.

Without a GPU it runs a tiny smoke version (71 px, batch 4, two timed steps, float32 against mixed_bfloat16)
that checks the script and says no GPU was found; its figures are not GPU figures. Ends with `float32_img_s=<n> mixed_img_s=<n> ratio=<n>`
(`mixed` is the first mixed policy measured, mixed_float16 by default; every policy is in the JSON line).
"""
from __future__ import annotations

import argparse
import json
import time

from benchmarks._common import median, step_timer

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402  (after _common sets the environment)
import tf_keras as keras  # noqa: E402

from inatvision.components.trainer import model as classifier  # noqa: E402
from inatvision.config import production  # noqa: E402

SMOKE = {"image_size": 71, "global_batch_size": 4, "steps": 2, "warmup_steps": 1, "num_classes": 100}
SMOKE_PRECISIONS = "float32,mixed_bfloat16"  # float16 arithmetic is emulated on CPUs: one smoke step took about a minute here


def _strategy(gpus: list) -> tf.distribute.Strategy:
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def measure(precision: str, args, strategy: tf.distribute.Strategy) -> dict:
    """Images/s of `args.steps` training steps under one precision policy."""
    keras.backend.clear_session()
    trainer_config = production().trainer.model_copy(update={
        "image_size": args.image_size, "global_batch_size": args.global_batch_size, "precision": precision,
        "xla": args.xla})
    keras.mixed_precision.set_global_policy(precision)
    try:
        with strategy.scope():
            model = classifier.build_classifier(args.num_classes, trainer_config)
            classifier.compile_classifier(model, trainer_config, steps_per_epoch=1000)
        rng = np.random.default_rng(0)
        size, batch = args.image_size, args.global_batch_size
        images = tf.constant(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
        labels = tf.one_hot(rng.integers(0, args.num_classes, batch), args.num_classes)
        data = tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(2)
        times = step_timer()
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=args.warmup_steps + args.steps, callbacks=[times], verbose=0)
        total_s = time.perf_counter() - start
    finally:
        keras.mixed_precision.set_global_policy("float32")
    first, last = args.warmup_steps - 1, args.warmup_steps + args.steps - 1
    step_s = np.diff(times.wall[first:last + 1])
    return {"img_s": args.steps * batch / (times.wall[last] - times.wall[first]),
            "median_step_ms": round(1000 * median(list(step_s)), 1), "first_fit_s": round(total_s, 1)}


def main() -> None:
    recipe = production().trainer
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--global-batch-size", type=int, default=recipe.global_batch_size)
    parser.add_argument("--image-size", type=int, default=recipe.image_size)
    parser.add_argument("--num-classes", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--precisions", help="comma-separated policies (default: float32,mixed_float16,"
                        "mixed_bfloat16; without a GPU: %s)" % SMOKE_PRECISIONS)
    parser.add_argument("--xla", action="store_true", help="compile the training step with XLA (trainer.xla)")
    args = parser.parse_args()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print("no GPU found: running a tiny CPU smoke version (its figures are not GPU figures)")
        for key, value in SMOKE.items():
            setattr(args, key, value)
    default_precisions = "float32,mixed_float16,mixed_bfloat16" if gpus else SMOKE_PRECISIONS
    precisions = [p.strip() for p in (args.precisions or default_precisions).split(",") if p.strip()]
    if "float32" not in precisions or len(precisions) < 2:
        parser.error("--precisions needs float32 and at least one mixed policy")
    strategy = _strategy(gpus)
    results = {precision: measure(precision, args, strategy) for precision in precisions}
    device = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    mixed = next(p for p in precisions if p != "float32")
    float32_img_s, mixed_img_s = results["float32"]["img_s"], results[mixed]["img_s"]
    print(json.dumps({
        "devices": device or ["cpu"], "replicas": strategy.num_replicas_in_sync, "smoke": not gpus,
        "image_size": args.image_size, "global_batch_size": args.global_batch_size, "num_classes": args.num_classes,
        "xla": args.xla, "timed_steps": args.steps, "mixed": mixed,
        "results": {p: {**r, "img_s": round(r["img_s"], 1)} for p, r in results.items()}}))
    print(f"float32_img_s={float32_img_s:.1f} mixed_img_s={mixed_img_s:.1f} ratio={mixed_img_s / float32_img_s:.2f}")


if __name__ == "__main__":
    main()
