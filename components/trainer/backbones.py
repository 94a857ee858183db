"""The backbones the classifier can use (`trainer.backbone`), each with the input range it expects (docs/model.md).

The classifier's augmentations work on pixels in [0, 1]; each backbone's `BackboneSpec` says how those pixels map
to what its `tf_keras.applications` model was defined for (and what ImageNet weights for it were trained on), in a
`backbone_input` layer just in front of it. Xception wants [-1, 1]; EfficientNetV2 and ConvNeXt carry their own
rescaling and normalization (`include_preprocessing`) and want [0, 255]. Nothing after the backbone depends on the
choice: global average pooling gives one feature vector per photo for the dropout and the classifier.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import tensorflow as tf
import tf_keras as keras

from inatvision.config import BACKBONE_MIN_IMAGE_SIZE
from inatvision.errors import ConfigError

BACKBONE_INPUT = "backbone_input"  # the layer that maps [0, 1] pixels to the backbone's range


@dataclass(frozen=True)
class BackboneSpec:
    build: Callable[..., keras.Model]  # a tf_keras.applications constructor
    input_scale: float  # backbone input = pixel in [0, 1] x input_scale + input_offset
    input_offset: float
    imagenet_file: str  # the headless ImageNet weights file Keras keeps in ~/.keras/models
    options: dict = field(default_factory=dict)


BACKBONES = {
    "xception": BackboneSpec(keras.applications.Xception, 2.0, -1.0,
                             "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "efficientnetv2-b0": BackboneSpec(keras.applications.EfficientNetV2B0, 255.0, 0.0, "efficientnetv2-b0_notop.h5",
                                      {"include_preprocessing": True}),
    "convnext_tiny": BackboneSpec(keras.applications.ConvNeXtTiny, 255.0, 0.0, "convnext_tiny_notop.h5",
                                  {"include_preprocessing": True}),
}


def build_backbone(name: str, image_size: int, initial_weights: str | None = None) -> keras.Model:
    """The headless backbone with global average pooling, from `initial_weights` (None: random)."""
    spec = BACKBONES[name]
    if image_size < BACKBONE_MIN_IMAGE_SIZE[name]:
        raise ConfigError(f"trainer.image_size={image_size} is below {name}'s smallest input, "
                          f"{BACKBONE_MIN_IMAGE_SIZE[name]} px")
    weights = initial_weights_file(name, initial_weights)  # before building: a missing file fails at once
    backbone = spec.build(include_top=False, weights=None, input_shape=(image_size, image_size, 3), pooling="avg",
                          **spec.options)
    if weights:
        # Loaded here rather than through Keras' `weights=`, which downloads for "imagenet" and takes only files.
        try:
            backbone.load_weights(weights)
        except (ValueError, OSError, tf.errors.OpError) as error:
            raise ConfigError(f"trainer.initial_weights={initial_weights}: {weights} does not fit the {name} "
                              f"backbone without its top ({error})") from None
    return backbone


def input_scaling(name: str) -> keras.layers.Layer:
    spec = BACKBONES[name]
    return keras.layers.Rescaling(spec.input_scale, spec.input_offset, name=BACKBONE_INPUT)


def keras_cache_dirs() -> list[str]:
    """Where Keras' `get_file` keeps model files: ~/.keras/models, or /tmp/.keras/models when ~ is read-only."""
    return [os.path.join(os.path.expanduser("~"), ".keras", "models"), os.path.join("/tmp", ".keras", "models")]


def initial_weights_file(name: str, initial_weights: str | None) -> str | None:
    """The weights file `trainer.initial_weights` names, checked before anything is built or downloaded.

    None: random initialization. "imagenet": Keras' cached headless ImageNet file for the backbone; Keras cannot
    download it from here, so without the cached file this fails with what to give instead. Anything else: a
    weights file of the same backbone without its top (.h5, or the prefix of a TensorFlow weights checkpoint).
    """
    if not initial_weights:
        return None
    if initial_weights == "imagenet":
        file_name = BACKBONES[name].imagenet_file
        for folder in keras_cache_dirs():
            if os.path.isfile(os.path.join(folder, file_name)):
                return os.path.join(folder, file_name)
        raise ConfigError(
            f"trainer.initial_weights=imagenet: {file_name} is not in Keras' cache ({keras_cache_dirs()[0]}) and "
            f"Keras cannot download it from here; fetch it where the internet is reachable and give its path, "
            f"trainer.initial_weights=/path/to/{file_name}")
    if not (tf.io.gfile.exists(initial_weights) or tf.io.gfile.exists(initial_weights + ".index")):
        raise ConfigError(f"trainer.initial_weights={initial_weights}: no such file; give a weights file of the "
                          f"{name} backbone without its top, imagenet, or none")
    return initial_weights
