"""Pushes only blessed models, into the contract's release layout, never overwriting.

The release is assembled inside a freshly reserved version folder and `RELEASE_COMPLETE`
is written last: a push that fails or is killed leaves a folder without the marker,
which every reader ignores, and the previous releases untouched.

`model` is what was gated: the composed serving model (ComposeServing), pushed as `serving/` and
fingerprinted in the model card. `vision_model` (the vision Trainer's) becomes `vision/`, and a trained
`geo_model` becomes `geo/` with its `thresholds.csv` at the release root; a geo model that is only the
NO_LOCATIONS marker is not pushed, and the model card says the release is vision-only.
"""
import json
import os
import shutil

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleStatistics, Model, ModelBlessing
from tfx.utils import path_utils

from inatvision import progress
from inatvision.artifacts import ExportReport, GateReport, Release, Taxonomy
from inatvision.components.data_validation.baseline import copy_statistics_into_release
from inatvision.components.geo_prior.export import NO_LOCATIONS_FILE, THRESHOLDS_FILE
from inatvision.components.pusher import release_layout
from inatvision.config import resolve_config
from inatvision.provenance import component_provenance
from inatvision.taxonomy import TAXONOMY_FILE


def model_card(config_json: str, export_report: dict, gate: dict, fingerprint: str, lineage: dict,
               geo: dict | None = None) -> dict:
    return {
        **component_provenance(),  # created, code_version
        "model_fingerprint": fingerprint,
        "export": {key: export_report.get(key) for key in
                   ("export_dir", "examples_per_split", "num_classes", "licenses", "leaves_by_rank", "rejected")},
        "metrics": {k: (gate.get("overall") or [{}])[0].get(f"candidate_{k}") for k in ("top1", "top5", "top10")},
        "gate": {"blessed": gate.get("blessed"), "summary": gate.get("summary")},
        "geo_prior": {**(geo or {}), **({"vision_top1": gate["geo_prior"].get("vision_top1"),
                                        "prior_top1": gate["geo_prior"].get("prior_top1"),
                                        "examples_with_coordinates": gate["geo_prior"].get("n_located")}
                                       if gate.get("geo_prior") else {})},
        "configuration": json.loads(config_json),
        "lineage": lineage,
    }


def write_release(release_dir: str, model_dir: str, taxonomy_dir: str, report_dir: str, card: dict,
                  geo_dir: str | None = None, vision_dir: str | None = None, statistics=None) -> None:
    """Fills a reserved version folder; the marker goes last.

    `model_dir` becomes `serving/`; `vision_dir` (default: `model_dir`) `vision/`; `geo_dir`, a trained geo
    model, `geo/` and its thresholds `thresholds.csv`; `statistics` (StatisticsGen's artifact) `statistics/`,
    the next run's drift baseline.
    """
    release_layout.copy_tree(vision_dir or model_dir, os.path.join(release_dir, release_layout.VISION_DIR))
    release_layout.copy_tree(model_dir, os.path.join(release_dir, release_layout.SERVING_DIR))
    if geo_dir:
        release_layout.copy_tree(geo_dir, os.path.join(release_dir, release_layout.GEO_DIR))
        tf.io.gfile.copy(os.path.join(geo_dir, THRESHOLDS_FILE), os.path.join(release_dir, THRESHOLDS_FILE))
    tf.io.gfile.copy(os.path.join(taxonomy_dir, TAXONOMY_FILE), os.path.join(release_dir, TAXONOMY_FILE))
    for name in ("gate_report.html", "gate_report.json"):
        source = os.path.join(report_dir, name)
        if tf.io.gfile.exists(source):
            tf.io.gfile.copy(source, os.path.join(release_dir, name))
    if statistics is not None:
        copy_statistics_into_release(statistics, release_dir)
    with tf.io.gfile.GFile(os.path.join(release_dir, release_layout.MODEL_CARD), "w") as f:
        json.dump(card, f, indent=2)
    with tf.io.gfile.GFile(os.path.join(release_dir, release_layout.MARKER), "w") as f:
        f.write(card["created"] + "\n")


def _read_json(path: str) -> dict:
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


@component
def ReleasePusher(model: InputArtifact[Model], blessing: InputArtifact[ModelBlessing],  # noqa: N802
                  gate_report: InputArtifact[GateReport], taxonomy: InputArtifact[Taxonomy],
                  export_report: InputArtifact[ExportReport], destination: Parameter[str],
                  config_json: Parameter[str], config_overrides: Parameter[str],
                  release: OutputArtifact[Release], vision_model: InputArtifact[Model] = None,
                  geo_model: InputArtifact[Model] = None, statistics: InputArtifact[ExampleStatistics] = None) -> None:
    """Outcome in `release`'s custom properties: pushed (with version and path), not_blessed or no_change."""
    if blessing.get_int_custom_property("identical_to_baseline") == 1:
        release.set_string_custom_property("outcome", "no_change")
        return
    if blessing.get_int_custom_property("blessed") != 1:
        release.set_string_custom_property("outcome", "not_blessed")
        return
    config = resolve_config(config_json, config_overrides)
    model_dir = path_utils.serving_model_path(model.uri)
    vision_dir = path_utils.serving_model_path(vision_model.uri) if vision_model is not None else None
    geo_dir = path_utils.serving_model_path(geo_model.uri) if geo_model is not None else None
    if geo_dir and (tf.io.gfile.exists(os.path.join(geo_dir, NO_LOCATIONS_FILE))
                    or model.get_string_custom_property("geo") not in ("", "trained")):
        geo_dir = None  # vision-only release: no usable coordinates, or the prior was disabled at submission
    gate = _read_json(os.path.join(gate_report.uri, "gate_report.json"))
    lineage = {"model_artifact_id": model.id, "blessing_artifact_id": blessing.id,
               "taxonomy_artifact_id": taxonomy.id, "export_report_artifact_id": export_report.id}
    if vision_model is not None:
        lineage["vision_model_artifact_id"] = vision_model.id
    if geo_model is not None:
        lineage["geo_model_artifact_id"] = geo_model.id
    if statistics is not None:
        lineage["statistics_artifact_id"] = statistics.id
    geo = {"status": model.get_string_custom_property("geo") or ("trained" if geo_dir else "none"),
           "explanation": model.get_string_custom_property("geo_explanation")}
    card = model_card(config.to_json(), _read_json(os.path.join(export_report.uri, "export_report.json")), gate,
                      release_layout.model_fingerprint(model_dir), lineage, geo)
    version, release_dir = release_layout.reserve_next_version(destination)
    try:
        write_release(release_dir, model_dir, taxonomy.uri, gate_report.uri, card, geo_dir, vision_dir, statistics)
    except Exception:
        if not release_dir.startswith(("gs://", "s3://")):
            shutil.rmtree(release_dir, ignore_errors=True)  # a half-written folder has no marker anyway
        raise
    release.set_string_custom_property("outcome", "pushed")
    release.set_int_custom_property("version", version)
    release.set_string_custom_property("path", release_dir)
    progress.summary("ReleasePusher", f"release {version} at {release_dir}")
