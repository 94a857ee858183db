"""Finds the baseline: the newest complete release in the push destination.

A container step (no TFX Resolver) so the same component runs locally, on
open-source Kubeflow Pipelines and on Vertex. The baseline's serving model (what the
Evaluator compares the candidate's serving model with, and whose fingerprint the model
card records) is copied into this component's Model artifact as `Format-Serving`, and
its vision model (the Keras file the Trainer warm-starts from) as `Format-Vision`;
with no release the artifact is empty and carries `found=0`. The release's training statistics
become `baseline_statistics` (split `train`; no split when there is no release or it has none).
"""
import json
import os

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleStatistics, Model

from inatvision.components.data_validation.baseline import fill_baseline_statistics
from inatvision.components.pusher import release_layout


@component
def PreviousRelease(destination: Parameter[str], releases_state: Parameter[str],  # noqa: N802
                    baseline_model: OutputArtifact[Model],
                    baseline_statistics: OutputArtifact[ExampleStatistics]) -> None:
    """`releases_state` fingerprints the destination's releases so a new release invalidates the cache."""
    del releases_state
    latest = release_layout.latest_release(destination)
    if latest is None:
        baseline_model.set_int_custom_property("found", 0)
        fill_baseline_statistics(baseline_statistics, None)
        return
    version, path = latest
    fill_baseline_statistics(baseline_statistics, path, str(version))
    serving_dir = os.path.join(baseline_model.uri, "Format-Serving")
    release_layout.copy_tree(os.path.join(path, release_layout.SERVING_DIR), serving_dir)
    vision_dir = release_layout.baseline_vision_dir(baseline_model.uri)
    release_layout.copy_tree(os.path.join(path, release_layout.VISION_DIR), vision_dir)
    card = release_layout.read_model_card(path)
    baseline_model.set_int_custom_property("found", 1)
    baseline_model.set_string_custom_property("release", str(version))
    baseline_model.set_string_custom_property("release_path", path)
    baseline_model.set_string_custom_property("model_fingerprint", card.get("model_fingerprint", ""))
    baseline_model.set_string_custom_property("metrics", json.dumps(card.get("metrics", {})))
    tf.io.gfile.makedirs(serving_dir)
    tf.io.gfile.makedirs(vision_dir)
