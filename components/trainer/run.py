"""The Trainer's `run_fn`: the production recipe, resumable, exported in float32."""
from __future__ import annotations

import hashlib
import json
import logging
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from inatvision.taxonomy import MODEL_TAXONOMY_FILE, read_taxonomy
from inatvision.components.keras_progress import EpochProgress
from inatvision.components.trainer import distribution, export, input_pipeline, model as classifier
from inatvision.components.transform import leaf_vocabulary, raw_inputs
from inatvision.config import Config

STATE_DIR = "trainer_state"
TENSORBOARD_DIR = "tensorboard"  # tensorboard --logdir <root>/artifacts/Trainer/tensorboard
SUMMARY_FILE = "training_summary.json"


def run_fn(fn_args) -> None:
    """Trains the vision classifier on `train`, selects the best epoch on `eval`, exports it."""
    custom = fn_args.custom_config
    config = Config.from_json(custom["config"])
    trainer_config = config.trainer
    placement = distribution.strategy_for(trainer_config.worker_timeout_s)  # before any other TensorFlow op
    tree = read_taxonomy(custom["taxonomy_path"])
    taxon_ids, num_classes = tree.leaf_taxon_ids, tree.num_classes
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    leaf_vocabulary.check_against_taxonomy(transform_output, tree, custom["taxonomy_path"])
    raw_inputs.check_image_size(transform_output, trainer_config.image_size)
    key = training_key(fn_args.train_files, config, custom["taxonomy_path"], fn_args.transform_graph_path)
    state_dir = os.path.join(custom["state_root"], STATE_DIR, key)
    tensorboard_dir = os.path.join(custom["state_root"], TENSORBOARD_DIR, key)

    keras.mixed_precision.set_global_policy(trainer_config.precision)
    try:
        trained, summary = _train(fn_args, config, transform_output, taxon_ids, state_dir, tensorboard_dir,
                                  custom.get("warm_start_model"), placement)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    serving = classifier.float32_copy(trained, num_classes, trainer_config)  # every worker reads the weights
    # Every worker saves (the chief's export is the model; the others write a temporary copy and delete it).
    export.export_classifier(serving, distribution.worker_dir(fn_args.serving_model_dir, placement),
                             custom["taxonomy_path"], transform_output, trainer_config.image_size,
                             trainer_config.top_k)
    distribution.remove_worker_dir(fn_args.serving_model_dir, placement)
    summary.update(num_classes=num_classes, precision=trainer_config.precision, state_dir=state_dir,
                   weights_sha256=_weights_digest(serving, placement))
    if not placement.is_chief:
        return
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)


def _weights_digest(model: keras.Model, placement: distribution.Placement) -> str:
    """A fingerprint of the trained weights, printed by every worker: replicas in sync print the same one."""
    digest = hashlib.sha256(b"".join(weights.tobytes() for weights in model.get_weights())).hexdigest()
    print(f"trainer: worker {placement.worker_index} of {placement.num_workers} weights sha256={digest}", flush=True)
    return digest


def _train(fn_args, config: Config, transform_output: tft.TFTransformOutput, taxon_ids: list[int], state_dir: str,
           tensorboard_dir: str, warm_start_model: str | None, placement: distribution.Placement):
    trainer_config = config.trainer
    num_classes = len(taxon_ids)
    train_examples = input_pipeline.count_records(fn_args.train_files)
    steps_per_epoch = trainer_config.steps_per_epoch or classifier.steps_for(
        train_examples, trainer_config.global_batch_size)
    distribution.check_global_batch(trainer_config.global_batch_size, placement.strategy)
    distribution.check_files_cover_workers(tf.io.gfile.glob(fn_args.train_files), placement)
    keras.utils.set_random_seed(config.export.seed)  # the same initial weights in any process (a container per step)
    with placement.strategy.scope():
        model = classifier.build_classifier(num_classes, trainer_config)
        warm = _warm_start(model, taxon_ids, warm_start_model) if trainer_config.warm_start else None
        classifier.compile_classifier(model, trainer_config, steps_per_epoch)
    summary = {"train_examples": train_examples, "steps_per_epoch": steps_per_epoch,
               "epochs": trainer_config.epochs, "warm_start": warm,
               "learning_rate": trainer_config.effective_learning_rate(),
               "global_batch_size": trainer_config.global_batch_size, "strategy": placement.kind,
               "num_replicas": placement.strategy.num_replicas_in_sync, "num_workers": placement.num_workers}
    if trainer_config.epochs == 0:
        summary.update(epochs_run=0, history={})
        return model, summary

    train = input_pipeline.vision_dataset(
        fn_args.train_files, transform_output, num_classes, trainer_config.image_size, trainer_config.global_batch_size,
        training=True, shuffle_buffer=trainer_config.shuffle_buffer, seed=config.export.seed)
    evaluation = input_pipeline.vision_dataset(
        fn_args.eval_files, transform_output, num_classes, trainer_config.image_size, trainer_config.global_batch_size,
        training=False)
    best_weights = os.path.join(state_dir, "best", "weights")
    epoch_log = EpochLog(os.path.join(state_dir, "epochs.jsonl"), write=placement.is_chief)
    # A resumed run keeps the best epoch so far: without the threshold the checkpoint's best starts from
    # scratch and the first epoch after a restart overwrites the best weights, however worse it is.
    best_so_far = epoch_log.best("val_top1") if tf.io.gfile.exists(best_weights + ".index") else None
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(state_dir, "backup")),
        keras.callbacks.ModelCheckpoint(best_weights, monitor="val_top1", mode="max", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=best_so_far),
        keras.callbacks.TensorBoard(tensorboard_dir),
        epoch_log,
        EpochProgress("Trainer", trainer_config.epochs),
    ]
    history = model.fit(train, epochs=trainer_config.epochs, steps_per_epoch=steps_per_epoch,
                        validation_data=evaluation, callbacks=callbacks, verbose=0)
    if placement.num_workers > 1:
        distribution.barrier(placement.strategy)  # the chief's last checkpoint is written before anyone reads it
    if tf.io.gfile.exists(best_weights + ".index"):
        model.load_weights(best_weights)
    # The eval top-1 of the weights exported, before precise BatchNorm: best_val_top1 when the best epoch was kept.
    summary["best_weights_val_top1"] = float(model.evaluate(evaluation, verbose=0, return_dict=True)["top1"])
    if trainer_config.precise_batchnorm_batches:
        # Shuffled, augmented training batches: the statistics the network was trained with. Unshuffled
        # shards hold few classes per batch and gave statistics that cut the demo's top-1 from 0.89 to 0.36.
        calibration = input_pipeline.vision_dataset(
            fn_args.train_files, transform_output, num_classes, trainer_config.image_size, trainer_config.global_batch_size,
            training=True, shuffle_buffer=trainer_config.shuffle_buffer,
            seed=config.export.seed + 1).map(lambda images, labels: images)
        summary["precise_batchnorm_batches"] = classifier.precise_batchnorm(
            model, calibration, trainer_config.precise_batchnorm_batches)
    summary.update(history={k: [float(v) for v in vals] for k, vals in history.history.items()},
                   epochs_run=epoch_log.epochs_run(), best_val_top1=epoch_log.best("val_top1"))
    return model, summary


def _warm_start(model, taxon_ids, warm_start_model):
    if not warm_start_model:
        logging.info("trainer.warm_start is on but there is no previous release: training from scratch")
        return None
    baseline = export.load_keras_classifier(warm_start_model)
    baseline_ids = read_taxonomy(os.path.join(warm_start_model, MODEL_TAXONOMY_FILE)).leaf_taxon_ids
    return classifier.warm_start_from(model, baseline, taxon_ids, baseline_ids)


def training_key(train_files: list[str], config: Config, taxonomy_path: str, transform_graph_path: str) -> str:
    """Keys the state folder by the Trainer's inputs and configuration: same inputs resume, new ones start fresh."""
    return hashlib.sha256(json.dumps(
        {"train_files": sorted(train_files), "taxonomy": taxonomy_path, "transform_graph": transform_graph_path,
         "trainer": config.trainer.model_dump(exclude={"worker_timeout_s"}), "seed": config.export.seed}, sort_keys=True
    ).encode()).hexdigest()[:16]


class EpochLog(keras.callbacks.Callback):
    """Appends each finished epoch's metrics to a JSON-lines file that survives restarts."""

    def __init__(self, path: str, write: bool = True):
        super().__init__()
        self.path, self.write = path, write  # write: the chief only, under several workers

    def on_epoch_end(self, epoch, logs=None):
        if not self.write:
            return
        tf.io.gfile.makedirs(os.path.dirname(self.path))
        with tf.io.gfile.GFile(self.path, "a") as f:
            f.write(json.dumps({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}) + "\n")

    def _rows(self):
        if not tf.io.gfile.exists(self.path):
            return []
        with tf.io.gfile.GFile(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def epochs_run(self) -> int:
        return len({row["epoch"] for row in self._rows()})

    def best(self, key: str):
        values = [row[key] for row in self._rows() if key in row]
        return max(values) if values else None
