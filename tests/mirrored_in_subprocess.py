"""Trains the project's model on one device and under MirroredStrategy over two logical CPU devices.

Run in its own process (logical devices must be set before TensorFlow starts): argv[1] is the training file
pattern, argv[2] the number of classes, argv[3] the Transform graph's folder, argv[4] the JSON file to write the
results to.
"""
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402

from inatvision.components.trainer import input_pipeline, model as classifier  # noqa: E402
from inatvision.config import build_config  # noqa: E402

STEPS = 5
GLOBAL_BATCH = 8


def two_cpu_devices() -> list[str]:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def frozen_model(config, num_classes: int, initial=None) -> keras.Model:
    """The Trainer's model and optimizer; BatchNorm frozen so that per-replica batch statistics do not matter."""
    model = classifier.build_classifier(num_classes, config)
    for layer in model.get_layer("xception").layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    if initial is not None:
        model.set_weights(initial)
    classifier.compile_classifier(model, config, steps_per_epoch=STEPS)
    return model


def train(strategy, config, files: str, graph: str, num_classes: int, initial=None):
    # The evaluation pipeline repeated: the Transform graph's images in a fixed order, the same batches for both.
    data = input_pipeline.vision_dataset([files], tft.TFTransformOutput(graph), num_classes, config.image_size,
                                         GLOBAL_BATCH, training=False, repeat=True)
    with strategy.scope():
        model = frozen_model(config, num_classes, initial)
    history = model.fit(data, epochs=1, steps_per_epoch=STEPS, verbose=0)
    return model, history.history["loss"]


def main(files: str, num_classes: int, graph: str, out: str) -> None:
    devices = two_cpu_devices()
    config = build_config("demo", ["trainer.random_flip=false", "trainer.color_jitter_fraction=0",
                                   f"trainer.global_batch_size={GLOBAL_BATCH}", "trainer.precision=float32"]).trainer
    keras.utils.set_random_seed(0)
    initial = classifier.build_classifier(num_classes, config).get_weights()
    single, single_loss = train(tf.distribute.OneDeviceStrategy(devices[0]), config, files, graph, num_classes, initial)
    mirrored = tf.distribute.MirroredStrategy(devices)
    replicated, mirrored_loss = train(mirrored, config, files, graph, num_classes, initial)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(single.get_weights(), replicated.get_weights()))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(initial, replicated.get_weights()))

    with open(out, "w") as f:
        json.dump({"replicas": mirrored.num_replicas_in_sync, "max_abs_diff": diff, "max_weight_change": moved,
                   "single_loss": single_loss, "mirrored_loss": mirrored_loss}, f)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
