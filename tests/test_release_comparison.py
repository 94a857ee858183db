"""Two releases with different class sets, compared through the real path (issue 6).

Release 1 (the baseline) and the candidates are tiny nearest-colour classifiers exported by the vision
Trainer's export and composed into serving models as ComposeServing does (vision-only: no geo prior). The
candidate's class set differs from the baseline's: it adds taxon 101, whose smaller id shifts every
leaf_class_id by one (taxonomy.csv orders leaves by taxon id), and drops taxon 107. The relabelled candidate
carries the baseline's weights moved to the new class order; the regressed one also swaps the weights of two
common taxa. Each candidate goes through the TaxonEvaluator's executor (TFMA with the taxon-outcomes metric,
the baseline found by PreviousRelease in a release folder) and then the ReleaseGate component.
"""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from inatvision import features
from inatvision.artifacts import GateReport, Taxonomy
from inatvision.components.evaluator.component import TaxonEvaluatorExecutor
from inatvision.components.evaluator.eval_config import build_eval_config
from inatvision.components.previous_release.component import PreviousRelease
from inatvision.components.pusher import release_layout
from inatvision.components.release_gate import component as gate_component, inputs as release_inputs
from inatvision.components.release_gate.component import ReleaseGate
from inatvision.components.serving import compose
from inatvision.components.trainer import export as vision_export
from inatvision.config import build_config
from tests import examples_factory
from tests.examples_factory import artifact

IMAGE_SIZE = 32
RED, GREEN, BLUE, YELLOW, MAGENTA, CYAN = examples_factory.COLOURS
OCHRE = (200, 150, 40)  # nearer yellow than red: a photo of the red taxon both releases get wrong
COLOUR_OF = {101: CYAN, 102: RED, 103: GREEN, 104: BLUE, 105: YELLOW, 107: MAGENTA}
BASELINE_TAXA = [102, 103, 104, 105, 107]
CANDIDATE_TAXA = [101, 102, 103, 104, 105]  # 101 added (every class index moves up by one), 107 removed
COMMON, RARE = 60, 5  # training photos of a leaf (demo profile: common from 20)
TRAIN_PHOTOS = {101: RARE, 102: COMMON, 103: COMMON, 104: COMMON, 105: RARE}
TEST_PHOTOS = {101: 6, 102: 8, 103: 8, 104: 8, 105: 6}
HARD_PHOTOS = 4  # ochre photos of taxon 102
CONFIG = build_config("demo")
BEAM_ARGS = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]


def nearest_colour_classifier(taxa) -> keras.Model:
    """One class per taxon, in the given order: the nearest colour (of the photo's mean colour) scores highest."""
    return examples_factory.nearest_colour_classifier([COLOUR_OF[taxon] for taxon in taxa], IMAGE_SIZE)


def relabel(model: keras.Model, from_taxa, to_taxa, swap=()) -> keras.Model:
    """`model`'s weights in `to_taxa`'s class order: a shared taxon keeps its exact kernel column and bias; a new
    taxon gets its own colour. `swap`: two taxa whose weights trade places (a broken model)."""
    kernel, bias = model.get_layer("probabilities").get_weights()
    relabelled = nearest_colour_classifier(to_taxa)
    new_kernel, new_bias = relabelled.get_layer("probabilities").get_weights()
    source = {taxon: from_taxa.index(taxon) for taxon in to_taxa if taxon in from_taxa}
    if swap:
        source[swap[0]], source[swap[1]] = source[swap[1]], source[swap[0]]
    for index, taxon in enumerate(to_taxa):
        if taxon in source:
            new_kernel[:, index], new_bias[index] = kernel[:, source[taxon]], bias[source[taxon]]
    relabelled.get_layer("probabilities").set_weights([new_kernel, new_bias])
    return relabelled


def candidate_test_split() -> list[tf.train.Example]:
    """The candidate's test split: labels are candidate class indices; taxon 102 also has ochre photos."""
    rows, photo_id = [], 1
    for taxon, count in sorted(TEST_PHOTOS.items()):
        colours = [COLOUR_OF[taxon]] * count + ([OCHRE] * HARD_PHOTOS if taxon == 102 else [])
        for colour in colours:
            example = examples_factory.example(CANDIDATE_TAXA.index(taxon), taxon,
                                               examples_factory.jpeg(colour, photo_id, (40, 40)), photo_id)
            example.features.feature[features.LEAF_TRAIN_PHOTOS].int64_list.value[:] = [TRAIN_PHOTOS[taxon]]
            rows.append(example)
            photo_id += 1
    return rows


def export_serving(model, taxa, folder) -> str:
    """Vision export and a vision-only composed serving model (as ComposeServing without a geo prior)."""
    os.makedirs(folder)
    taxonomy = os.path.join(folder, "taxonomy.csv")
    examples_factory.write_taxonomy(taxonomy, taxa)
    vision_dir, serving_dir = os.path.join(folder, "vision"), os.path.join(folder, "serving")
    graph_dir = examples_factory.transform_graph_of_taxa(folder, taxa, IMAGE_SIZE)
    vision_export.export_classifier(model, vision_dir, taxonomy, tft.TFTransformOutput(graph_dir), IMAGE_SIZE,
                                    top_k=10)
    compose.compose_serving(vision_dir, None, taxonomy, graph_dir, serving_dir)
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("comparison")
    baseline_model = nearest_colour_classifier(BASELINE_TAXA)
    baseline = export_serving(baseline_model, BASELINE_TAXA, str(tmp / "baseline"))
    relabelled = relabel(baseline_model, BASELINE_TAXA, CANDIDATE_TAXA)
    broken = relabel(baseline_model, BASELINE_TAXA, CANDIDATE_TAXA, swap=(102, 103))
    candidates = {"relabelled": export_serving(relabelled, CANDIDATE_TAXA, str(tmp / "relabelled")),
                  "regressed": export_serving(broken, CANDIDATE_TAXA, str(tmp / "regressed"))}

    # Release 1 in the contract's layout; PreviousRelease finds it as the baseline.
    release = tmp / "releases" / "1"
    shutil.copytree(os.path.join(baseline, "serving"), release / release_layout.SERVING_DIR)
    shutil.copytree(os.path.join(baseline, "vision"), release / release_layout.VISION_DIR)
    shutil.copy(os.path.join(baseline, "taxonomy.csv"), release / "taxonomy.csv")
    (release / release_layout.MODEL_CARD).write_text(json.dumps(
        {"model_fingerprint": release_layout.model_fingerprint(os.path.join(baseline, "serving"))}))
    (release / release_layout.MARKER).write_text("now\n")
    baseline_artifact = artifact(standard_artifacts.Model, tmp / "baseline_model")
    PreviousRelease.test_call(destination=str(tmp / "releases"), releases_state="", baseline_model=baseline_artifact,
                              baseline_statistics=artifact(standard_artifacts.ExampleStatistics, tmp / "statistics"))

    rows = candidate_test_split()
    examples = artifact(standard_artifacts.Examples, tmp / "examples")
    examples_factory.write_split(os.path.join(examples.uri, "Split-test"), rows)
    examples.split_names = artifact_utils.encode_split_names(["test"])
    return {"tmp": tmp, "baseline": baseline, "candidates": candidates, "baseline_artifact": baseline_artifact,
            "examples": examples, "rows": rows}


def compare(world, name: str) -> dict:
    """The Evaluator's executor, then the ReleaseGate component, on one candidate; returns what they wrote."""
    out = world["tmp"] / f"run-{name}"
    folder = world["candidates"][name]
    model = artifact(standard_artifacts.Model, out / "model")
    shutil.copytree(os.path.join(folder, "serving"), os.path.join(model.uri, "Format-Serving"))
    model.set_string_custom_property("geo", "disabled")
    taxonomy = artifact(Taxonomy, out / "taxonomy")
    shutil.copy(os.path.join(folder, "taxonomy.csv"), taxonomy.uri)
    evaluation = artifact(standard_artifacts.ModelEvaluation, out / "evaluation")
    evaluator_blessing = artifact(standard_artifacts.ModelBlessing, out / "evaluator_blessing")
    eval_config = build_eval_config(CONFIG.gate, with_baseline=True)  # as pipeline.create_pipeline compiles it
    TaxonEvaluatorExecutor(BaseBeamExecutor.Context(beam_pipeline_args=BEAM_ARGS)).Do(
        {"examples": [world["examples"]], "model": [model], "baseline_model": [world["baseline_artifact"]]},
        {"evaluation": [evaluation], "blessing": [evaluator_blessing]},
        {"eval_config": proto_utils.proto_to_json(eval_config), "example_splits": json.dumps(["test"])})
    blessing = artifact(standard_artifacts.ModelBlessing, out / "blessing")
    report = artifact(GateReport, out / "report")
    ReleaseGate.test_call(evaluation=evaluation, model=model,
                          baseline_model=world["baseline_artifact"], taxonomy=taxonomy,
                          config_json=CONFIG.sections_json("gate", "export"), config_overrides="",
                          blessing=blessing, report=report)
    outcomes = gate_component.taxon_outcomes(evaluation.uri)
    inputs = release_inputs.gate_inputs(outcomes, {t: f"Species {t}" for t in CANDIDATE_TAXA},
                                        {t: f"Species {t}" for t in BASELINE_TAXA}, "1")
    return {"gate": json.load(open(os.path.join(report.uri, "gate_report.json"))), "blessing": blessing,
            "inputs": inputs}


@pytest.fixture(scope="module")
def relabelled(world):
    return compare(world, "relabelled")


@pytest.fixture(scope="module")
def regressed(world):
    return compare(world, "regressed")


def thresholds(gate: dict) -> dict:
    return {check["name"]: check for check in gate["thresholds"]}


def served(folder: str, rows) -> dict:
    signature = tf.saved_model.load(os.path.join(folder, "serving")).signatures["serving_examples"]
    return {key: value.numpy() for key, value in signature(
        examples=tf.constant([row.SerializeToString() for row in rows])).items()}


def test_the_baseline_was_found_and_the_class_indices_really_differ(world):
    baseline = world["baseline_artifact"]
    assert baseline.get_int_custom_property("found") == 1 and baseline.get_string_custom_property("release") == "1"
    rows = world["rows"]
    before, after = served(world["baseline"], rows), served(world["candidates"]["relabelled"], rows)
    shared = np.array([int(row.features.feature[features.LEAF_TAXON_ID].int64_list.value[0]) != 101 for row in rows])
    np.testing.assert_array_equal(before["top_taxon_ids"][shared, 0], after["top_taxon_ids"][shared, 0])
    assert (before["top_class_ids"][shared, 0] != after["top_class_ids"][shared, 0]).all()  # by index: all changed


def test_the_same_weights_relabelled_show_no_change_and_are_blessed(relabelled):
    inputs, gate = relabelled["inputs"], relabelled["gate"]
    n_test = sum(TEST_PHOTOS.values()) + HARD_PHOTOS
    assert inputs.leaf_taxon_id.size == n_test
    shared = inputs.shared
    n_shared = n_test - TEST_PHOTOS[101]  # 101 is new in the candidate; 107 (removed) has no test photos
    assert shared.sum() == n_shared
    np.testing.assert_array_equal(inputs.candidate_rank[shared], inputs.baseline_rank[shared])  # example by example
    # Both releases are vision-only: each one's vision-only ranks are its served ranks.
    np.testing.assert_array_equal(inputs.vision_rank, inputs.candidate_rank)
    np.testing.assert_array_equal(inputs.baseline_vision_rank, inputs.baseline_rank)
    assert (inputs.candidate_rank[shared] == 1).sum() == n_shared - HARD_PHOTOS  # both miss the ochre photos
    assert (inputs.candidate_rank[~shared] == 1).all()  # the new taxon's photos
    checks = thresholds(gate)
    for name in ("common_top1_regression", "common_top5_regression", "common_vision_top1_regression",
                 "common_vision_top5_regression"):
        check = checks[name]
        assert (check["value"], check["ci_low"], check["ci_high"]) == (0, 0, 0), name
        assert check["passed"] and check["n"] == sum(TEST_PHOTOS[t] for t in (102, 103, 104)) + HARD_PHOTOS
    assert all(check["passed"] for check in gate["thresholds"]), gate["summary"]
    assert gate["blessed"] and not gate["first_release"] and gate["baseline_release"] == "1"
    assert relabelled["blessing"].get_int_custom_property("blessed") == 1
    assert [t["taxon_id"] for t in gate["taxa_added"]] == [101]
    assert [t["taxon_id"] for t in gate["taxa_removed"]] == [107]
    assert gate["regressed_taxa"] == [] and gate["skipped_checks"] == []


def test_a_real_regression_on_common_taxa_is_caught(regressed):
    inputs, gate = regressed["inputs"], regressed["gate"]
    checks = thresholds(gate)
    top1 = checks["common_top1_regression"]
    lost = TEST_PHOTOS[102] + TEST_PHOTOS[103]  # every red and green photo is now named as the other
    assert top1["n"] == sum(TEST_PHOTOS[t] for t in (102, 103, 104)) + HARD_PHOTOS
    assert top1["value"] == pytest.approx(-lost / top1["n"])
    assert top1["ci_high"] < -CONFIG.gate.max_top1_drop  # worse beyond the margin, not only not shown better
    assert not top1["passed"]
    assert checks["common_top5_regression"]["passed"]  # still in the top 5
    # Vision-only releases: vision alone regressed exactly as the served scores did.
    vision_top1 = checks["common_vision_top1_regression"]
    assert {key: vision_top1[key] for key in ("value", "ci_low", "ci_high", "margin", "n")} == {
        key: top1[key] for key in ("value", "ci_low", "ci_high", "margin", "n")}
    assert checks["common_vision_top5_regression"]["passed"]
    assert [name for name, check in checks.items() if not check["passed"]] == [
        "common_top1_regression", "common_vision_top1_regression"]
    assert not gate["blessed"] and "common_top1_regression" in gate["summary"]
    assert regressed["blessing"].get_int_custom_property("blessed") == 0
    assert {t["taxon_id"] for t in gate["regressed_taxa"]} == {102, 103}
    shared = inputs.shared
    assert (inputs.baseline_rank[shared] == 1).sum() - (inputs.candidate_rank[shared] == 1).sum() == lost
    np.testing.assert_array_equal(inputs.baseline_vision_rank, inputs.baseline_rank)
