"""Claims that no other test held (issue 21): each checked end to end against a value worked out by hand.

1. The Evaluator's TFMA metrics (top-1, top-5, top-10 and the example count, overall, by iconic taxon and by
   leaf rank: the slices of `eval_config.py`) and its `taxon_outcomes` metric equal a hand computation on a small
   fixed test split, read back with `tfma.load_metrics` as the release gate reads them.
2. A real schema anomaly in an export makes a whole `inatvision run` end `validation_failed` with exit 4,
   naming it, with no Trainer run and no release pushed.
"""
import collections
import io
import json
import os
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
import tf_keras as keras
from PIL import Image
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from inatvision import features
from inatvision.artifacts import BLOCKED_REPORT
from inatvision.components.example_files import read_shard
from inatvision.components.evaluator.component import TaxonEvaluatorExecutor
from inatvision.components.evaluator.eval_config import CANDIDATE, build_eval_config
from inatvision.components.evaluator.taxon_metrics import METRIC_NAME
from inatvision.components.pusher import release_layout
from inatvision.components.release_gate import component as gate_component
from inatvision.components.serving import compose
from inatvision.components.trainer import export as vision_export
from inatvision.config import build_config, local_paths
from inatvision.pipeline.gc import free_interrupted_outputs
from inatvision.pipeline.metadata import executions_by_node, open_store
from inatvision.pipeline.run import run
from inatvision.sample_export import write_sample_export
from inatvision.taxon_outcomes import NO_BASELINE_RANK, OutcomeKey, decode
from tests import examples_factory
from tests.examples_factory import artifact

CONFIG = build_config("demo")
BEAM_ARGS = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]

# ------------------------------------------------------------------------------------------------ 1. TFMA metrics

IMAGE_SIZE = 32
TOP_K = 10  # the export's top taxon ids: a true taxon ranked 11th or lower has taxon-outcome rank 0
# Twelve leaves whose colours lie on one line, 16 red levels apart: a photo's rank of each leaf is that of the
# distance of its colour to the leaf's colour (the nearest-colour classifier below).
TAXA = list(range(301, 313))
SPACING, FIRST_RED, GREEN_BLUE = 16, 30, 120


def centroid(index: int) -> tuple[int, int, int]:
    return FIRST_RED + SPACING * index, GREEN_BLUE, GREEN_BLUE


# Four test taxa (by class index), their slices and training-photo counts (read from the examples, not the
# taxonomy: TFMA slices on the example's features, and so does the taxon-outcomes metric).
TEST_TAXA = {1: ("Plantae", "species", 40), 4: ("Plantae", "genus", 5), 7: ("Aves", "species", 25),
             10: ("Insecta", "genus", 0)}
# (true class, class whose colour the photo takes, offset toward the true class so no two leaves tie):
# ranks 1 and 2 to 5, 6 to 10 and beyond 10 (worked out in `designed_rank`).
PHOTOS = [
    (1, 1), (1, 1), (1, 0), (1, 3), (1, 11),
    (4, 4), (4, 6), (4, 8), (4, 0),
    (7, 7), (7, 1), (7, 9), (7, 3),
    (10, 10), (10, 2), (10, 0), (10, 11),
]
OFFSET = 5  # red levels: distances then differ by at least 6 levels, far above JPEG's rounding on a flat photo
LOCATED = {0, 3, 5, 9, 12, 16}  # photos (by position) with coordinates: the served model's has_location


def photo_colour(true_class: int, like: int) -> tuple[int, int, int]:
    red = centroid(like)[0] + OFFSET * int(np.sign(true_class - like))
    return red, GREEN_BLUE, GREEN_BLUE


def designed_rank(true_class: int, like: int) -> int:
    """1-based rank of the true class among the 12 leaves by distance to the photo's colour (the construction)."""
    red = photo_colour(true_class, like)[0]
    distances = np.abs(np.array([centroid(i)[0] for i in range(len(TAXA))]) - red)
    return 1 + int((distances < distances[true_class]).sum())


def flat_jpeg(colour, size=(40, 40)) -> bytes:
    """A photo of one flat colour: its mean colour is the colour, within JPEG's rounding."""
    buffer = io.BytesIO()
    Image.new("RGB", size, tuple(colour)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def nearest_colour_classifier() -> keras.Model:
    """Photos to the 12 leaves in class order, ranked by the distance of the photo's mean colour to each leaf's."""
    return examples_factory.nearest_colour_classifier([centroid(i) for i in range(len(TAXA))], IMAGE_SIZE)


def fixed_test_split() -> list[tf.train.Example]:
    rows = []
    for position, (true_class, like) in enumerate(PHOTOS):
        taxon = TAXA[true_class]
        iconic, rank, train_photos = TEST_TAXA[true_class]
        located = position in LOCATED
        example = examples_factory.example(true_class, taxon, flat_jpeg(photo_colour(true_class, like)),
                                           photo_id=position + 1, lat=12.5 if located else None,
                                           lng=-3.0 if located else None)
        feature = example.features.feature
        feature[features.ICONIC_TAXON].bytes_list.value[:] = [iconic.encode()]
        feature[features.LEAF_RANK].bytes_list.value[:] = [rank.encode()]
        feature[features.LEAF_TRAIN_PHOTOS].int64_list.value[:] = [train_photos]
        rows.append(example)
    return rows


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The served model exported as the pipeline exports it, evaluated by the Evaluator's executor as on a first
    release (PreviousRelease found none), and its own `serving_examples` outputs on the same examples."""
    tmp = tmp_path_factory.mktemp("claims_tfma")
    taxonomy = str(tmp / "taxonomy.csv")
    examples_factory.write_taxonomy(taxonomy, TAXA)
    graph_dir = examples_factory.transform_graph_of_taxa(str(tmp), TAXA, IMAGE_SIZE)
    vision_dir, serving_dir = str(tmp / "vision"), str(tmp / "model" / "Format-Serving")
    vision_export.export_classifier(nearest_colour_classifier(), vision_dir, taxonomy,
                                    tft.TFTransformOutput(graph_dir), IMAGE_SIZE, top_k=TOP_K)
    compose.compose_serving(vision_dir, None, taxonomy, graph_dir, serving_dir)

    rows = fixed_test_split()
    examples = artifact(standard_artifacts.Examples, tmp / "examples")
    examples_factory.write_split(os.path.join(examples.uri, "Split-test"), rows)
    examples.split_names = artifact_utils.encode_split_names(["test"])
    model = artifact(standard_artifacts.Model, tmp / "model")
    baseline = artifact(standard_artifacts.Model, tmp / "baseline_model")
    baseline.set_int_custom_property("found", 0)  # as PreviousRelease writes it without a release
    evaluation = artifact(standard_artifacts.ModelEvaluation, tmp / "evaluation")
    blessing = artifact(standard_artifacts.ModelBlessing, tmp / "blessing")
    eval_config = build_eval_config(CONFIG.gate, with_baseline=True)  # as pipeline.create_pipeline compiles it
    TaxonEvaluatorExecutor(BaseBeamExecutor.Context(beam_pipeline_args=BEAM_ARGS)).Do(
        {"examples": [examples], "model": [model], "baseline_model": [baseline]},
        {"evaluation": [evaluation], "blessing": [blessing]},
        {"eval_config": proto_utils.proto_to_json(eval_config), "example_splits": json.dumps(["test"])})

    signature = tf.saved_model.load(serving_dir).signatures["serving_examples"]
    served = {key: value.numpy() for key, value in signature(
        examples=tf.constant([row.SerializeToString() for row in rows])).items()}
    return {"evaluation": evaluation.uri, "blessing": blessing, "served": served, "rows": rows}


def hand_ranks(served: dict) -> tuple[np.ndarray, np.ndarray]:
    """(1-based rank of the label among the served probabilities, the taxon-outcome rank: the true taxon's
    position among the served top taxon ids, 0 beyond them), by NumPy."""
    labels = np.array([true_class for true_class, _ in PHOTOS])
    probabilities = served["probabilities"]
    label_scores = probabilities[np.arange(len(labels)), labels]
    rank = 1 + (probabilities > label_scores[:, None]).sum(axis=1)
    true_taxa = np.array(TAXA)[labels]
    top_ids = served["top_taxon_ids"]
    hits = top_ids == true_taxa[:, None]
    outcome_rank = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)
    return rank, outcome_rank


def slice_name(metrics_for_slice) -> tuple:
    """((column, value), ...): () for the overall slice."""
    def value(key):
        found = getattr(key, key.WhichOneof("kind"))
        return found.decode() if isinstance(found, bytes) else found
    return tuple((key.column, value(key)) for key in metrics_for_slice.slice_key.single_slice_keys)


def tfma_metrics(evaluation_uri: str) -> dict:
    """slice -> metric name -> value, for the candidate, as written by TFMA and read back by `tfma.load_metrics`."""
    read = {}
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        values = {}
        for item in metrics_for_slice.metric_keys_and_values:
            assert item.key.model_name in ("", CANDIDATE), item.key
            value = item.value
            values[item.key.name] = (json.loads(value.bytes_value) if value.WhichOneof("type") == "bytes_value"
                                     else value.double_value.value)
        read[slice_name(metrics_for_slice)] = values
    return read


def test_tfma_metrics_equal_a_hand_computation_on_a_fixed_split(evaluated):
    """TFMA's top-1/5/10 and example counts, overall, by iconic taxon and by leaf rank, and the taxon-outcome
    counts of every slice, equal NumPy's from the served model's own outputs and from the construction."""
    served = evaluated["served"]
    rank, outcome_rank = hand_ranks(served)
    # The fixed split is what it was designed to be: ranks 1, 2-5, 6-10 and beyond the top 10, none tied.
    np.testing.assert_array_equal(rank, [designed_rank(*photo) for photo in PHOTOS])
    np.testing.assert_array_equal(outcome_rank, np.where(rank <= TOP_K, rank, 0))
    assert (rank == 1).any() and ((rank >= 2) & (rank <= 5)).any() and ((rank >= 6) & (rank <= 10)).any()
    assert (rank > 10).any()
    located = np.array([position in LOCATED for position in range(len(PHOTOS))])
    np.testing.assert_array_equal(served["has_location"], located)
    np.testing.assert_array_equal(served["vision_top_taxon_ids"], served["top_taxon_ids"])  # vision-only

    labels = [true_class for true_class, _ in PHOTOS]
    iconic = np.array([TEST_TAXA[label][0] for label in labels])
    leaf_rank = np.array([TEST_TAXA[label][1] for label in labels])
    everything = np.ones(len(PHOTOS), bool)
    slices = {(): everything}
    slices.update({((features.ICONIC_TAXON, value),): iconic == value for value in set(iconic)})
    slices.update({((features.LEAF_RANK, value),): leaf_rank == value for value in set(leaf_rank)})

    read = tfma_metrics(evaluated["evaluation"])
    assert set(read) == set(slices)  # exactly the eval config's slices: overall, iconic taxon, leaf rank
    for name, mask in slices.items():
        metrics = read[name]
        assert set(metrics) == {"top1", "top5", "top10", "example_count", METRIC_NAME}, (name, set(metrics))
        assert metrics["example_count"] == mask.sum(), name
        for k in (1, 5, 10):
            assert metrics[f"top{k}"] == pytest.approx((rank[mask] <= k).mean(), abs=1e-6), (name, k)

        expected_outcomes = collections.Counter()
        expected_confusions = collections.Counter()
        for position in np.flatnonzero(mask):
            label = labels[position]
            taxon = TAXA[label]
            expected_outcomes[OutcomeKey(
                leaf_taxon_id=taxon, iconic_taxon=TEST_TAXA[label][0], leaf_rank=TEST_TAXA[label][1],
                leaf_train_photos=TEST_TAXA[label][2], candidate_rank=int(outcome_rank[position]),
                baseline_rank=NO_BASELINE_RANK, shared=False, vision_rank=int(outcome_rank[position]),
                has_location=bool(located[position]), baseline_vision_rank=NO_BASELINE_RANK)] += 1
            if outcome_rank[position] != 1:
                expected_confusions[(taxon, int(served["top_taxon_ids"][position, 0]))] += 1
        rows, confusions = decode(metrics[METRIC_NAME])
        assert dict(rows) == dict(expected_outcomes), name
        assert len(rows) == len(expected_outcomes)  # one row per outcome key
        assert sorted(confusions) == sorted((true, predicted, count)
                                            for (true, predicted), count in expected_confusions.items()), name

    # The release gate's reader finds the same overall outcomes.
    assert decode(gate_component.taxon_outcomes(evaluated["evaluation"]))[0] == decode(read[()][METRIC_NAME])[0]
    # TFMA's value threshold (the top-1 floor) blessed the model exactly when the hand top-1 reaches it.
    blessed = (rank <= 1).mean() >= CONFIG.gate.min_top1
    assert evaluated["blessing"].get_int_custom_property("blessed") == int(blessed)


# ------------------------------------------------------------------------------------------------ 2. validation_failed

# An upstream tool that writes -1 for "accuracy unknown". The export checks only that an accuracy is a finite number
# (tables._observation_problem: it rejects NaN and infinities, not negative values) and writes it into the examples
# unchanged (beam_pipeline.make_example); the curated schema gives positional_accuracy `float_domain { min: 0 }`, so
# ExampleValidator reports FLOAT_TYPE_SMALL_FLOAT, which no demo `validation.warn_only` downgrades. It must block:
# the location rule (inatvision/location.py) would take -1 m for a very precise location.
BAD_ACCURACY = "-1"
SPOILED_OBSERVATIONS = 12


def spoil_accuracies(export_dir: str) -> set[str]:
    """Sets the positional accuracy of the first SPOILED_OBSERVATIONS research-grade observations with coordinates to
    BAD_ACCURACY; returns their uuids."""
    path = os.path.join(export_dir, "observations.csv")
    with open(path, encoding="utf-8") as f:
        header, *lines = f.read().splitlines()
    columns = header.split("\t")
    uuid, latitude, accuracy, grade = (columns.index(name) for name in (
        "observation_uuid", "latitude", "positional_accuracy", "quality_grade"))
    spoiled = set()
    for number, line in enumerate(lines):
        fields = line.split("\t")
        if len(spoiled) == SPOILED_OBSERVATIONS:
            break
        if fields[grade] == "research" and fields[latitude] and fields[accuracy]:
            fields[accuracy] = BAD_ACCURACY
            lines[number] = "\t".join(fields)
            spoiled.add(fields[uuid])
    assert len(spoiled) == SPOILED_OBSERVATIONS
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join([header, *lines]) + "\n")
    return spoiled


def written_accuracies(artifacts: str) -> dict[str, tuple[str, float]]:
    """observation uuid -> (split, positional_accuracy) of every example with an accuracy the export wrote."""
    found = {}
    for path in tf.io.gfile.glob(os.path.join(artifacts, "ExportExamples", "examples", "*", "Split-*", "*")):
        split = os.path.basename(os.path.dirname(path))[len("Split-"):]
        for record in read_shard(tf.constant(path)):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            if feature[features.POSITIONAL_ACCURACY].float_list.value:
                uuid = feature[features.OBSERVATION_UUID].bytes_list.value[0].decode()
                found[uuid] = split, feature[features.POSITIONAL_ACCURACY].float_list.value[0]
    return found


@pytest.mark.e2e
def test_a_real_anomaly_fails_a_whole_run_with_exit_4_before_the_trainer(tmp_path):
    """A negative positional accuracy in observations.csv (see BAD_ACCURACY) goes through the export into the
    examples; TFDV's ExampleValidator finds it against the curated schema, the validation gate blocks, and
    `inatvision run` ends `validation_failed` (exit 4) naming it, with no Transform or Trainer run and no release."""
    export_dir, root = str(tmp_path / "export"), str(tmp_path / "root")
    write_sample_export(export_dir, species=8, seed=3)
    spoiled = spoil_accuracies(export_dir)
    started = time.monotonic()
    summary, code = run(export_dir, root, "demo", ["beam.direct_running_mode=in_memory"], verbose=False)
    elapsed = time.monotonic() - started

    assert (code, summary["status"]) == (4, "validation_failed"), summary.get("error")
    assert summary["error"].startswith("ValidationFailed: ") and "positional_accuracy" in summary["error"]
    anomalies = summary["anomalies"]
    assert anomalies and {row["feature"] for row in anomalies} == {features.POSITIONAL_ACCURACY}, anomalies
    assert {row["type"] for row in anomalies} == {"FLOAT_TYPE_SMALL_FLOAT"}, anomalies
    # The export wrote the bad value itself: it did not reject those observations.
    paths = local_paths(root)
    written = written_accuracies(paths["artifacts"])
    bad = {uuid: split for uuid, (split, accuracy) in written.items() if accuracy < 0}
    assert bad and set(bad) <= spoiled and all(written[uuid][1] == float(BAD_ACCURACY) for uuid in bad)
    # One anomaly per split that holds a spoiled example, and none elsewhere.
    assert sorted(row["split"] for row in anomalies) == sorted(set(bad.values())), anomalies

    # Nothing after the gate ran, and nothing was released.
    executions = executions_by_node(open_store(paths["metadata"], read_only=True))
    assert executions.get("ExampleValidator") and executions.get("ValidationGate")
    for node in ("Transform", "Trainer", "GeoTrainer", "ComposeServing", "Evaluator", "ReleaseGate", "ReleasePusher"):
        assert not executions.get(node), node
    assert not os.path.exists(os.path.join(paths["artifacts"], "Trainer"))
    assert release_layout.complete_releases(paths["releases"]) == []
    assert summary["pushed_to"] is None and summary["blessed"] is False
    with open(os.path.join(paths["runs"], summary["run_id"], "summary.json")) as f:
        assert json.load(f)["status"] == "validation_failed"
    # The gate's report reached the run folder although TFX deleted the failed gate's outputs.
    with open(summary["reports"]["validation_report"]) as f:
        report = json.load(f)
    assert not report["passed"] and report["anomalies"] == anomalies
    assert "positional_accuracy" in open(summary["reports"]["validation_report_html"]).read()
    # The gate's copy of its report is freed at the next run's start, as an interrupted execution's outputs are.
    blocked = os.path.join(paths["artifacts"], "ValidationGate", BLOCKED_REPORT)
    assert os.listdir(blocked)
    free_interrupted_outputs(paths["metadata"], paths["artifacts"])
    assert not os.listdir(blocked)
    assert elapsed < 120, f"the run took {elapsed:.0f} s"
