"""TFMA's wall time on the pipeline's EvalConfig against a plain Keras evaluation of the same model.

    python -m benchmarks.evaluator

Builds the demo-size classifier (`components.trainer.model.build_classifier`, untrained: speed does not depend
on the weights), exports it with `components.trainer.export.export_classifier` as the Trainer does, and writes
`--examples` test examples (generated sample-export photos, or `--photos DIR`, with the slice features the
EvalConfig reads) into a gzipped TFRecord. Then, each timed from start to finish with imports excluded:

- TFMA: `tfma.run_model_analysis` with `components.evaluator.eval_config.build_eval_config` without a baseline
  (as the Evaluator adapts it for a first release): signature `serving_examples`, top-1/5/10 and the example
  count overall and by iconic taxon and leaf rank, and the taxon outcomes metric; Beam options from the
  configuration (`beam.*`, or `--direct-running-mode`); its output written to a temporary folder.
- Keras: load the Keras file beside the SavedModel, `input_pipeline.vision_dataset(training=False)` over the
  same file (the same evaluation preprocessing), `model.predict`, top-1/5/10 with NumPy.

Ends with `tfma_s=<n> keras_s=<n> ratio=<n>`.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from benchmarks._common import generated_photos, load_average, photo_files

import numpy as np  # noqa: E402  (after _common sets the environment)
import tensorflow_model_analysis as tfma  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from inatvision.components.evaluator.component import adapt_eval_config  # noqa: E402
from inatvision.components.evaluator.eval_config import CANDIDATE, build_eval_config  # noqa: E402
from inatvision.components.trainer import export, input_pipeline, model as classifier  # noqa: E402
from inatvision.config import demo  # noqa: E402
from inatvision.taxonomy import TAXONOMY_FILE  # noqa: E402
from tests import examples_factory  # noqa: E402

NUM_CLASSES = 16
LEAF_TAXA = list(range(1001, 1001 + NUM_CLASSES))


def write_test_split(folder: str, photos: list[bytes], count: int) -> str:
    """`count` examples cycling over the photos and classes, with every feature the EvalConfig slices on."""
    rows = [examples_factory.example(index % NUM_CLASSES, LEAF_TAXA[index % NUM_CLASSES], photos[index % len(photos)],
                                     photo_id=index + 1, lat=10.0, lng=20.0) for index in range(count)]
    return examples_factory.write_split(os.path.join(folder, "Split-test"), rows)


def keras_evaluation(export_dir: str, test_file: str, graph: tft.TFTransformOutput, image_size: int,
                     batch_size: int) -> dict:
    start = time.perf_counter()
    model = export.load_keras_classifier(export_dir)
    load_s = time.perf_counter() - start
    dataset = input_pipeline.vision_dataset([test_file], graph, NUM_CLASSES, image_size, batch_size, training=False)
    probabilities = model.predict(dataset.map(lambda images, labels: images), verbose=0)
    labels = np.concatenate([np.argmax(labels, -1) for _, labels in dataset.map(lambda i, l: (0, l))])
    top = np.argsort(-probabilities, axis=-1)[:, :10]
    metrics = {f"top{k}": float(np.mean(np.any(top[:, :k] == labels[:, None], axis=1))) for k in (1, 5, 10)}
    return {**metrics, "load_s": round(load_s, 1)}


def tfma_evaluation(export_dir: str, test_file: str, output_dir: str, beam_args: list[str]) -> dict:
    eval_config = adapt_eval_config(build_eval_config(demo().gate, with_baseline=False), None)
    shared_model = tfma.default_eval_shared_model(eval_saved_model_path=export_dir, eval_config=eval_config,
                                                  model_name=CANDIDATE)
    result = tfma.run_model_analysis(eval_shared_model=shared_model, eval_config=eval_config,
                                     data_location=test_file, output_path=output_dir,
                                     pipeline_options=PipelineOptions(beam_args))
    overall = next(metrics for key, metrics in result.slicing_metrics if key == ())
    values = overall[""][""]
    return {name: values[name].get("doubleValue") for name in ("top1", "top5", "top10") if name in values}


def main() -> None:
    config = demo()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--photos", help="folder of JPEGs (default: the generated sample export's photos)")
    parser.add_argument("--species", type=int, default=8, help="sample export size when --photos is not given")
    parser.add_argument("--direct-running-mode", choices=["in_memory", "multi_threading", "multi_processing"],
                        default=config.beam.direct_running_mode, help="Beam DirectRunner mode (configuration: "
                        "%(default)s)")
    args = parser.parse_args()
    config.beam.direct_running_mode = args.direct_running_mode
    trainer_config = config.trainer

    with tempfile.TemporaryDirectory() as folder:
        paths = photo_files(args.photos) if args.photos else generated_photos(folder, args.species)
        photos = [open(path, "rb").read() for path in paths]
        test_file = write_test_split(folder, photos, args.examples)
        taxonomy = os.path.join(folder, TAXONOMY_FILE)
        examples_factory.write_taxonomy(taxonomy, LEAF_TAXA)
        export_dir = os.path.join(folder, "serving")
        graph = tft.TFTransformOutput(examples_factory.write_transform_graph(folder, test_file,
                                                                             trainer_config.image_size))
        export.export_classifier(classifier.build_classifier(NUM_CLASSES, trainer_config), export_dir, taxonomy,
                                 graph, trainer_config.image_size, trainer_config.top_k)

        start = time.perf_counter()
        keras_metrics = keras_evaluation(export_dir, test_file, graph, trainer_config.image_size,
                                         trainer_config.global_batch_size)
        keras_s = time.perf_counter() - start
        start = time.perf_counter()
        tfma_metrics = tfma_evaluation(export_dir, test_file, os.path.join(folder, "tfma"),
                                       config.beam.pipeline_args())
        tfma_s = time.perf_counter() - start

    print(json.dumps({
        "examples": args.examples, "photos": len(paths), "image_size": trainer_config.image_size,
        "beam": config.beam.pipeline_args(), "tfma_metrics": tfma_metrics, "keras_metrics": keras_metrics,
        "load_average": load_average()}))
    print(f"tfma_s={tfma_s:.1f} keras_s={keras_s:.1f} ratio={tfma_s / keras_s:.2f}")


if __name__ == "__main__":
    main()
