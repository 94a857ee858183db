"""What a composed serving model says about itself (`assets/serving_info.json`), readable without TFX."""
from __future__ import annotations

import json
import os

import tensorflow as tf

INFO_FILE = "assets/serving_info.json"
GEO_TRAINED, GEO_NONE, GEO_DISABLED = "trained", "none", "disabled"


def write_serving_info(model_dir: str, info: dict) -> None:
    with tf.io.gfile.GFile(os.path.join(model_dir, INFO_FILE), "w") as f:
        json.dump(info, f, indent=2)


def read_serving_info(model_dir: str) -> dict:
    """`{"geo": trained | none | disabled, "explanation", "min_score", "top_k", "num_classes", ...}` of a
    composed model; FileNotFoundError for any other model."""
    path = os.path.join(model_dir, INFO_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: not found; {model_dir} is not a composed serving model")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
