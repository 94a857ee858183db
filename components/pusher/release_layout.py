"""The release layout of the contract: `releases/<version>/...`, `RELEASE_COMPLETE` written last.

Pure file-system rules, shared by the Pusher, the baseline finder, `releases` and `gc`.
A folder without the marker is not a release; versions only grow; nothing is overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os

import tensorflow as tf

MARKER = "RELEASE_COMPLETE"
MODEL_CARD = "model_card.json"
VISION_DIR = "vision"
SERVING_DIR = "serving"
GEO_DIR = "geo"
BASELINE_VISION_FORMAT = "Format-Vision"  # the baseline Model artifact's copy of the release's vision/


def baseline_vision_dir(baseline_model_uri: str) -> str:
    """Where PreviousRelease puts the baseline release's vision model (the Trainer warm-starts from it)."""
    return os.path.join(baseline_model_uri, BASELINE_VISION_FORMAT)


def _versions(destination: str) -> list[int]:
    if not tf.io.gfile.isdir(destination):
        return []
    names = [name.rstrip("/") for name in tf.io.gfile.listdir(destination)]
    return sorted(int(name) for name in names if name.isdigit())


def complete_releases(destination: str) -> list[tuple[int, str]]:
    """(version, path) of every release whose marker exists, oldest first."""
    found = []
    for version in _versions(destination):
        path = os.path.join(destination, str(version))
        if tf.io.gfile.exists(os.path.join(path, MARKER)):
            found.append((version, path))
    return found


def latest_release(destination: str) -> tuple[int, str] | None:
    releases = complete_releases(destination)
    return releases[-1] if releases else None


def releases_state(destination: str) -> str:
    """A short fingerprint of the complete releases, to key caches on."""
    return hashlib.sha256(json.dumps(complete_releases(destination)).encode()).hexdigest()[:16]


RESERVED = ".reserved"  # on gs://, the object whose creation claims a version


def _create_gcs_object_once(uri: str) -> None:
    """Creates an empty object at a gs:// URI only if none exists (a generation precondition, atomic on the
    server); raises FileExistsError otherwise."""
    from google.api_core import exceptions
    from google.cloud import storage

    bucket, _, name = uri[len("gs://"):].partition("/")
    try:
        storage.Client().bucket(bucket).blob(name).upload_from_string(b"", if_generation_match=0)
    except exceptions.PreconditionFailed:
        raise FileExistsError(uri) from None


def _claim(path: str) -> None:
    """Claims a version's folder; raises FileExistsError if another push has it."""
    if path.startswith("gs://"):
        _create_gcs_object_once(os.path.join(path, RESERVED))
    elif path.startswith("s3://"):  # no atomic create through tf.io.gfile: one pipeline per bucket at a time
        if tf.io.gfile.exists(path):
            raise FileExistsError(path)
        tf.io.gfile.makedirs(path)
    else:
        os.mkdir(path)


def reserve_next_version(destination: str) -> tuple[int, str]:
    """Claims the next version's folder atomically (mkdir locally, a generation precondition on gs://), so two
    pushes never share a version."""
    tf.io.gfile.makedirs(destination)
    version = (max(_versions(destination), default=0)) + 1
    while True:
        path = os.path.join(destination, str(version))
        try:
            _claim(path)
            return version, path
        except FileExistsError:
            version += 1


def read_model_card(release_path: str) -> dict:
    path = os.path.join(release_path, MODEL_CARD)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def copy_tree(source: str, target: str) -> None:
    """Recursive copy through tf.io.gfile (local folders, gs://)."""
    for directory, _, files in tf.io.gfile.walk(source):
        relative = os.path.relpath(directory, source)
        destination = os.path.normpath(os.path.join(target, relative))
        tf.io.gfile.makedirs(destination)
        for name in files:
            tf.io.gfile.copy(os.path.join(directory, name), os.path.join(destination, name), overwrite=True)


def model_fingerprint(model_dir: str) -> str:
    """sha256 over the SavedModel's graph and variables: equal models have equal fingerprints."""
    digest = hashlib.sha256()
    for directory, _, files in sorted(tf.io.gfile.walk(model_dir)):
        if os.path.relpath(directory, model_dir).startswith("keras"):
            continue
        for name in sorted(files):
            if name == "fingerprint.pb":
                continue
            with tf.io.gfile.GFile(os.path.join(directory, name), "rb") as f:
                digest.update(name.encode())
                digest.update(f.read())
    return digest.hexdigest()
