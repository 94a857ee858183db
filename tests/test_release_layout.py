"""Releases: versions only grow, the marker is written last, failures never touch earlier releases."""
import os
import threading
import types

import pytest

from inatvision.components.pusher import component as pusher, release_layout


def make_release(destination, files=("taxonomy.csv",), complete=True):
    version, path = release_layout.reserve_next_version(destination)
    for name in files:
        open(os.path.join(path, name), "w").write("x")
    if complete:
        open(os.path.join(path, release_layout.MARKER), "w").write("done")
    return version, path


def test_folders_without_marker_are_not_releases(tmp_path):
    make_release(str(tmp_path))
    make_release(str(tmp_path), complete=False)
    assert [v for v, _ in release_layout.complete_releases(str(tmp_path))] == [1]
    assert release_layout.latest_release(str(tmp_path))[0] == 1
    assert release_layout.reserve_next_version(str(tmp_path))[0] == 3  # versions only grow


def test_concurrent_pushes_never_share_a_version(tmp_path):
    versions = []
    threads = [threading.Thread(target=lambda: versions.append(release_layout.reserve_next_version(str(tmp_path))[0]))
               for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 17))


def test_concurrent_pushes_to_a_bucket_never_share_a_version(monkeypatch):
    """On gs:// a push claims a version by creating `<version>/.reserved` with `if_generation_match=0`, which the
    server refuses when the object exists; a fake bucket plays the server, and every push starts from the same
    (empty) listing, so they all race for version 1 first."""
    from google.api_core import exceptions
    from google.cloud import storage

    created, server = {}, threading.Lock()

    class Blob:
        def __init__(self, bucket: str, name: str):
            self.key = (bucket, name)

        def upload_from_string(self, data, if_generation_match=None):
            assert if_generation_match == 0  # create only: without it the object would be overwritten
            with server:
                if self.key in created:
                    raise exceptions.PreconditionFailed("object exists")
                created[self.key] = data

    class Client:
        def bucket(self, name: str):
            return types.SimpleNamespace(blob=lambda blob_name: Blob(name, blob_name))

    monkeypatch.setattr(storage, "Client", Client)
    monkeypatch.setattr(release_layout, "_versions", lambda destination: [])
    monkeypatch.setattr(release_layout.tf.io.gfile, "makedirs", lambda path: None)
    claimed = []
    threads = [threading.Thread(target=lambda: claimed.append(release_layout.reserve_next_version("gs://b/releases")))
               for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [(v, f"gs://b/releases/{v}") for v in range(1, 17)]
    assert sorted(created) == sorted(("b", f"releases/{v}/{release_layout.RESERVED}") for v in range(1, 17))


def test_releases_state_changes_with_a_new_release(tmp_path):
    before = release_layout.releases_state(str(tmp_path))
    make_release(str(tmp_path), complete=False)
    assert release_layout.releases_state(str(tmp_path)) == before
    make_release(str(tmp_path))
    assert release_layout.releases_state(str(tmp_path)) != before


def _model_dir(tmp_path):
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"graph")
    (model / "variables" / "variables.index").write_bytes(b"weights")
    (tmp_path / "taxonomy").mkdir()
    (tmp_path / "taxonomy" / "taxonomy.csv").write_text("parent_taxon_id,taxon_id\n")
    (tmp_path / "report").mkdir()
    return str(model)


def test_a_failed_write_leaves_no_release_and_earlier_ones_intact(tmp_path, monkeypatch):
    destination = str(tmp_path / "releases")
    _, first = make_release(destination, files=("taxonomy.csv", "model_card.json"))
    before = {name: open(os.path.join(first, name)).read() for name in os.listdir(first)}
    model = _model_dir(tmp_path)
    version, target = release_layout.reserve_next_version(destination)
    real_copy = release_layout.copy_tree

    def disk_full(source, destination_dir):
        real_copy(source, destination_dir)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(release_layout, "copy_tree", disk_full)
    with pytest.raises(OSError, match="No space"):
        pusher.write_release(target, model, str(tmp_path / "taxonomy"), str(tmp_path / "report"), {"created": "now"})
    assert not os.path.exists(os.path.join(target, release_layout.MARKER))
    assert [v for v, _ in release_layout.complete_releases(destination)] == [1]
    assert {name: open(os.path.join(first, name)).read() for name in os.listdir(first)} == before


def test_write_release_writes_the_marker_last(tmp_path):
    model = _model_dir(tmp_path)
    _, target = release_layout.reserve_next_version(str(tmp_path / "releases"))
    pusher.write_release(target, model, str(tmp_path / "taxonomy"), str(tmp_path / "report"), {"created": "now"})
    names = sorted(os.listdir(target))
    assert names == sorted(["vision", "serving", "taxonomy.csv", "model_card.json", release_layout.MARKER])
    marker_time = os.stat(os.path.join(target, release_layout.MARKER)).st_mtime_ns
    assert all(os.stat(os.path.join(target, n)).st_mtime_ns <= marker_time for n in names)


def test_model_fingerprint_ignores_the_keras_copy(tmp_path):
    model = _model_dir(tmp_path)
    first = release_layout.model_fingerprint(model)
    os.makedirs(os.path.join(model, "keras"))
    open(os.path.join(model, "keras", "classifier.keras"), "w").write("other")
    assert release_layout.model_fingerprint(model) == first
    open(os.path.join(model, "variables", "variables.index"), "wb").write(b"changed")
    assert release_layout.model_fingerprint(model) != first
