"""Trainer: the recipe's pieces, one preprocessing graph, resume, warm start."""
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from inatvision.components.trainer import export, input_pipeline, model as classifier, run
from inatvision.config import build_config
from tests import examples_factory

LEAVES = [101, 102, 103]


def tiny_config(**trainer):
    config = build_config("demo", [f"trainer.{k}={v}" for k, v in trainer.items()])
    return config


def fn_args(tmp: str, config, files, taxonomy, warm_start_model=None, transform_graph=None):
    transform_graph = transform_graph or examples_factory.write_transform_graph(
        tmp, files["train"], config.trainer.image_size)
    return SimpleNamespace(
        train_files=[files["train"]], eval_files=[files["eval"]], transform_graph_path=transform_graph,
        serving_model_dir=os.path.join(tmp, "serving"), model_run_dir=os.path.join(tmp, "run"),
        custom_config={"config": config.to_json(), "taxonomy_path": taxonomy, "state_root": os.path.join(tmp, "state"),
                       "warm_start_model": warm_start_model})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("trainer"))
    files = examples_factory.write_examples_artifact(tmp, LEAVES, {"train": 16, "eval": 4})
    taxonomy = os.path.join(tmp, "taxonomy.csv")
    examples_factory.write_taxonomy(taxonomy, LEAVES)
    config = tiny_config(epochs=2, global_batch_size=8, steps_per_epoch=3)
    args = fn_args(tmp, config, files, taxonomy)
    run.run_fn(args)
    return SimpleNamespace(tmp=tmp, files=files, taxonomy=taxonomy, config=config, args=args)


def test_served_scores_equal_the_evaluation_path(trained):
    """The SavedModel alone reproduces the Trainer's evaluation path within 1e-5 (float32)."""
    keras_model = export.load_keras_classifier(trained.args.serving_model_dir)
    dataset = input_pipeline.vision_dataset([trained.files["eval"]],
                                            tft.TFTransformOutput(trained.args.transform_graph_path), len(LEAVES),
                                            trained.config.trainer.image_size, batch_size=4, training=False)
    expected = np.concatenate([keras_model(images, training=False).numpy() for images, _ in dataset])

    loaded = tf.saved_model.load(trained.args.serving_model_dir)
    records = [r.numpy() for r in tf.data.TFRecordDataset(trained.files["eval"], compression_type="GZIP")]
    parsed = [tf.train.Example.FromString(r).features.feature["image/encoded"].bytes_list.value[0] for r in records]
    by_photo = loaded.signatures["serving_default"](image_bytes=tf.constant(parsed))
    by_example = loaded.signatures["serving_examples"](examples=tf.constant(records))
    np.testing.assert_allclose(by_photo["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(by_example["probabilities"].numpy(), expected, atol=1e-5)
    assert set(by_photo["top_taxon_ids"].numpy().ravel()) <= set(LEAVES)
    assert by_photo["top_names"].numpy()[0, 0].decode().startswith("Species ")


def test_export_is_float32_and_policy_reset(trained):
    assert keras.mixed_precision.global_policy().name == "float32"
    keras_model = export.load_keras_classifier(trained.args.serving_model_dir)
    assert all(w.dtype == tf.float32 for w in keras_model.weights)
    summary = json.load(open(os.path.join(trained.args.model_run_dir, run.SUMMARY_FILE)))
    assert summary["epochs_run"] == 2 and summary["num_classes"] == 3


def test_learning_rate_follows_the_recipe():
    config = build_config("production").trainer
    assert config.effective_learning_rate() == pytest.approx(0.05)
    assert classifier.learning_rate_at_epoch(config, 3) == pytest.approx(0.05)
    assert classifier.learning_rate_at_epoch(config, 4) == pytest.approx(0.05 * 0.94)
    assert classifier.learning_rate_at_epoch(config, 79) == pytest.approx(0.05 * 0.94 ** 19)
    config.global_batch_size = 512
    assert config.effective_learning_rate() == pytest.approx(0.1)
    schedule = classifier.StepDecaySchedule(0.05, steps_per_epoch=10, decay_epochs=4, warmup_epochs=2)
    assert float(schedule(0)) == pytest.approx(0.05 * 0.1 / 2)
    assert float(schedule(45)) == pytest.approx(0.05 * 0.94)


def test_warm_start_copies_rows_of_shared_taxa(trained):
    baseline = export.load_keras_classifier(trained.args.serving_model_dir)
    config = trained.config.trainer
    fresh = classifier.build_classifier(3, config)
    new_taxa = [102, 103, 104]  # 101 left the model, 104 is new
    counts = classifier.warm_start_from(fresh, baseline, new_taxa, LEAVES)
    assert counts == {"classifier_rows_copied": 2, "classifier_rows_new": 1}
    old_kernel, old_bias = baseline.get_layer("classifier").get_weights()
    kernel, bias = fresh.get_layer("classifier").get_weights()
    np.testing.assert_array_equal(kernel[:, 0], old_kernel[:, 1])
    np.testing.assert_array_equal(kernel[:, 1], old_kernel[:, 2])
    assert not np.allclose(kernel[:, 2], old_kernel[:, 0])
    np.testing.assert_array_equal(fresh.get_layer("xception").get_weights()[0], baseline.get_layer("xception").get_weights()[0])
