"""`inatvision predict --release DIR PHOTO... [--lat --lng --date] [--top K] [--json]`: suggestions for photos.

Calls the release's `serving/` model (vision combined with the location prior, composed by ComposeServing), so
the scores, "expected nearby" flags and common ancestor are those of the served graph, computed by
`components.geo_prior.scoring`. For each photo it prints the top taxa with names and scores, whether each is
expected nearby (with a location and a prior), and the common ancestor; `--json` writes the same for machines.

Bad options (coordinates out of range, a latitude without a longitude, a malformed date, `--top` below 1, a
folder that is not a release) are one line on stderr naming the culprit, exit 2, before any photo is read.

A photo that cannot be predicted (missing, a folder, unreadable, empty or not an image TensorFlow decodes) does
not stop the batch: the other photos are predicted and printed as usual, each rejected photo is one line on
stderr with its path and reason (`--json`: a `rejected` list of {"photo", "reason"} beside `photos`), then a
line counting them, and the exit status is 2 so that scripts notice. When no photo can be read, the same lines
and exit 2 come at once, without loading the model. Exit 0 means every photo was predicted.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow loads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import datetime  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import click  # noqa: E402

from inatvision.location import MAX_LATITUDE, MAX_LONGITUDE, has_location  # noqa: E402

EXIT_INPUT_ERROR = 2
BATCH = 16
DEFAULT_TOP = 5


class PredictError(ValueError):
    """Input the user can fix; the message is one line and names the photo, value or folder."""


class PhotoError(PredictError):
    """A photo that cannot be predicted: `photo` is its path as given, `reason` says why (no path)."""

    def __init__(self, photo: str, reason: str):
        super().__init__(f"{photo}: {reason}")
        self.photo, self.reason = photo, reason


class NoReadablePhoto(PredictError):
    """No photo can be read; `rejected` lists each as {"photo", "reason"}. Raised before the model loads."""

    def __init__(self, rejected: list[dict]):
        n = len(rejected)
        super().__init__("the photo could not be read; nothing predicted" if n == 1 else
                         f"none of the {n} photos could be read; nothing predicted")
        self.rejected = rejected


@dataclass
class Location:
    latitude: float
    longitude: float
    date: Optional[str] = None  # YYYY-MM-DD
    day_of_year: int = 0  # 0: unknown


def parse_location(latitude: Optional[float], longitude: Optional[float], date: Optional[str]) -> Optional[Location]:
    """Checks the coordinates and date; None when no location is given (a date alone is kept for nothing)."""
    if (latitude is None) != (longitude is None):
        given, missing = ("--lat", "--lng") if longitude is None else ("--lng", "--lat")
        raise PredictError(f"{given} needs {missing} too: give both coordinates or neither")
    day = 0
    if date is not None:
        try:
            day = datetime.date.fromisoformat(date).timetuple().tm_yday
        except ValueError:
            raise PredictError(f"--date {date!r} is not a date in the form YYYY-MM-DD") from None
    if latitude is None:
        return None
    # The coordinate half of the one rule (inatvision/location.py); predict has no accuracy to weigh, and a value
    # the rule would ignore is an error the user can fix, not a silent "no location".
    if not has_location(latitude, 0.0):  # NaN fails too
        raise PredictError(f"--lat {latitude} is out of range: a latitude is between -{MAX_LATITUDE:g} and "
                           f"{MAX_LATITUDE:g} degrees")
    if not has_location(0.0, longitude):
        raise PredictError(f"--lng {longitude} is out of range: a longitude is between -{MAX_LONGITUDE:g} and "
                           f"{MAX_LONGITUDE:g} degrees")
    return Location(float(latitude), float(longitude), date, day)


def read_photo(path: str) -> bytes:
    """The photo's bytes, once TensorFlow has decoded them as the served model will; PhotoError otherwise."""
    import tensorflow as tf

    if not os.path.exists(path):
        raise PhotoError(path, "no such file")
    if os.path.isdir(path):
        raise PhotoError(path, "is a folder, not a photo")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise PhotoError(path, f"cannot be read ({error.strerror or error})") from None
    if not data:
        raise PhotoError(path, "is empty, not a photo")
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        raise PhotoError(path, "not a photo the model can read (JPEG, PNG, GIF or BMP)") from None
    return data


def resolve_release(path: str) -> str:
    """A complete release folder; a push destination (releases/) resolves to its newest complete release."""
    from inatvision.components.pusher import release_layout

    if not os.path.isdir(path):
        raise PredictError(f"--release {path}: no such folder")
    if os.path.exists(os.path.join(path, release_layout.MARKER)):
        return path
    latest = release_layout.latest_release(path)
    if latest is not None:
        return latest[1]
    if os.path.isdir(os.path.join(path, release_layout.SERVING_DIR)):
        raise PredictError(f"--release {path}: not a complete release (no {release_layout.MARKER}); "
                           "it may still be being written or its push failed")
    raise PredictError(f"--release {path}: not a release (expected {release_layout.SERVING_DIR}/ and "
                       f"{release_layout.MARKER}, or a folder of numbered releases)")


@dataclass
class LoadedRelease:
    path: str
    serve: object  # the serving_default concrete function of the composed serving model
    geo: str  # trained, none or disabled
    geo_explanation: str
    ranks: dict[int, str] = field(default_factory=dict)  # taxon id -> rank name
    model: object = None  # the loaded SavedModel, which keeps the function's variables alive


def load_release(path: str) -> LoadedRelease:
    import tensorflow as tf

    from inatvision.components.pusher import release_layout
    from inatvision.components.serving.info import read_serving_info
    from inatvision.taxonomy import MODEL_TAXONOMY_FILE, TAXONOMY_FILE, read_taxonomy

    release = resolve_release(path)
    serving_dir = os.path.join(release, release_layout.SERVING_DIR)
    try:
        model = tf.saved_model.load(serving_dir)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise PredictError(f"--release {release}: cannot load {serving_dir} ({str(error).splitlines()[0]})") from None
    serve = model.signatures["serving_default"]
    taxonomy = os.path.join(release, TAXONOMY_FILE)
    tree = read_taxonomy(taxonomy if os.path.exists(taxonomy) else os.path.join(serving_dir, MODEL_TAXONOMY_FILE))
    try:
        info = read_serving_info(serving_dir)
    except FileNotFoundError as error:
        raise PredictError(f"--release {release}: {error}") from None
    loaded = LoadedRelease(
        path=release, serve=serve, geo=info["geo"], geo_explanation=info["explanation"],
        ranks={row.taxon_id: row.rank for row in tree.rows}, model=model)
    return loaded


def _run(release: LoadedRelease, photos: list[bytes], location: Optional[Location]) -> dict:
    """The serving outputs for the photos as numpy arrays, batch by batch."""
    import numpy as np
    import tensorflow as tf

    outputs: dict[str, list] = {}
    for start in range(0, len(photos), BATCH):
        chunk = photos[start:start + BATCH]
        n = len(chunk)
        served = release.serve(
            image_bytes=tf.constant(chunk), latitude=tf.fill([n], location.latitude if location else float("nan")),
            longitude=tf.fill([n], location.longitude if location else float("nan")),
            day_of_year=tf.fill([n], tf.constant(location.day_of_year if location else 0, tf.int64)))
        for key, value in served.items():
            outputs.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in outputs.items()}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def predict(release: str | LoadedRelease, photos: Sequence[str], latitude: Optional[float] = None,
            longitude: Optional[float] = None, date: Optional[str] = None, top: Optional[int] = None) -> dict:
    """Suggestions for each readable photo as a JSON-ready dict.

    `top`: suggestions per photo, at most what the release serves (None: 5 or fewer).

    Checks the location, `top` and the release folder, then reads every photo, all before loading the model, so
    bad input fails fast. Bad options raise PredictError. A photo that cannot be read does not stop the others:
    it goes to the result's `rejected` ({"photo", "reason"}, in the order given) and `photos` holds the rest;
    when no photo can be read, NoReadablePhoto (a PredictError carrying `rejected`) is raised and the model is
    never loaded.
    """
    location = parse_location(latitude, longitude, date)
    if not photos:
        raise PredictError("no photo given")
    if top is not None and top < 1:
        raise PredictError(f"--top {top}: must be at least 1")
    if not isinstance(release, LoadedRelease):
        release = resolve_release(release)  # a folder that is not a release fails before any photo is read
    readable, images, rejected = [], [], []
    for path in photos:
        try:
            images.append(read_photo(path))
        except PhotoError as error:
            rejected.append({"photo": error.photo, "reason": error.reason})
        else:
            readable.append(path)
    if not images:
        raise NoReadablePhoto(rejected)
    loaded = release if isinstance(release, LoadedRelease) else load_release(release)
    outputs = _run(loaded, images, location)
    served_k = outputs["top_scores"].shape[1]
    located = location is not None and loaded.geo == "trained"
    notes = []
    if top is not None and top > served_k:
        notes.append(f"the release serves {served_k} suggestions per photo; showing {served_k}")
    if location is not None and not located:
        notes.append(f"the location is not used: {loaded.geo_explanation}")
    k = min(DEFAULT_TOP if top is None else top, served_k)
    results = []
    for i, path in enumerate(readable):
        suggestions = []
        for j in range(k):
            class_id = int(outputs["top_class_ids"][i, j])
            suggestions.append({
                "rank": j + 1, "taxon_id": int(outputs["top_taxon_ids"][i, j]),
                "name": _text(outputs["top_names"][i, j]), "score": float(outputs["top_scores"][i, j]),
                "vision_score": float(outputs["vision_probabilities"][i, class_id]),
                "nearby": bool(outputs["nearby"][i, j]) if located else None})
        ancestor_id = int(outputs["common_ancestor_taxon_id"][i])
        ancestor = None
        if ancestor_id >= 0:
            ancestor = {"taxon_id": ancestor_id, "name": _text(outputs["common_ancestor_name"][i]),
                        "rank": loaded.ranks.get(ancestor_id, ""),
                        "score": float(outputs["common_ancestor_score"][i])}
        results.append({"photo": path, "suggestions": suggestions, "common_ancestor": ancestor})
    return {
        "release": loaded.path, "geo": loaded.geo, "geo_explanation": loaded.geo_explanation,
        "location": None if location is None else {"latitude": location.latitude, "longitude": location.longitude,
                                                   "date": location.date, "day_of_year": location.day_of_year},
        "location_used": located, "notes": notes, "photos": results, "rejected": rejected,
    }


def format_result(result: dict) -> str:
    """The human-readable listing: one block per predicted photo (rejected ones go to stderr: `rejection_lines`)."""
    location = result["location"]
    if location is None:
        where = "no location: vision scores alone"
    else:
        where = f"at {location['latitude']:.5f}, {location['longitude']:.5f}"
        if location["date"]:
            where += f" on {location['date']}"
        where += "" if result["location_used"] else " (not used: vision scores alone)"
    lines = [f"release: {result['release']} (location prior: {result['geo']})"]
    lines += [f"note: {note}" for note in result["notes"]]
    for photo in result["photos"]:
        lines.append("")
        lines.append(f"{photo['photo']}  [{where}]")
        width = max(len(s["name"]) for s in photo["suggestions"])
        for s in photo["suggestions"]:
            nearby = "" if s["nearby"] is None else ("  expected nearby" if s["nearby"] else "  not expected nearby")
            lines.append(f"  {s['rank']:>2}. {s['name']:<{width}}  {s['score'] * 100:6.2f}%  "
                         f"(taxon {s['taxon_id']}){nearby}")
        ancestor = photo["common_ancestor"]
        if ancestor:
            lines.append(f"  common ancestor: {ancestor['rank']} {ancestor['name']} (taxon {ancestor['taxon_id']}), "
                         f"{ancestor['score'] * 100:.1f}%")
        else:
            lines.append("  common ancestor: none (no genus or higher taxon sums above 78%)")
    return "\n".join(lines)


def rejection_lines(rejected: list[dict], predicted: int) -> list[str]:
    """The stderr lines for rejected photos: one per photo with its reason, then the count."""
    lines = [f"error: {entry['photo']}: {entry['reason']}" for entry in rejected]
    if rejected and predicted:
        total = len(rejected) + predicted
        lines.append(f"error: {len(rejected)} of {total} photos could not be read; "
                     f"the other {predicted} {'was' if predicted == 1 else 'were'} predicted")
    return lines


@click.command("predict")
@click.option("--release", "release_dir", required=True, help="a release folder (or a push destination: its newest)")
@click.argument("photos", nargs=-1, required=True)
@click.option("--lat", "latitude", type=float, default=None, help="latitude in degrees, -90 to 90")
@click.option("--lng", "longitude", type=float, default=None, help="longitude in degrees, -180 to 180")
@click.option("--date", default=None, help="observation date, YYYY-MM-DD")
@click.option("--top", default=None, type=int, help=f"suggestions per photo [default: {DEFAULT_TOP}]")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def predict_command(release_dir, photos, latitude, longitude, date, top, as_json):
    """Suggest taxa for PHOTOS with a release's serving model, optionally at a place and date."""
    try:
        result = predict(release_dir, list(photos), latitude, longitude, date, top)
    except NoReadablePhoto as error:
        for line in rejection_lines(error.rejected, 0):
            click.echo(line, err=True)
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_INPUT_ERROR)
    except PredictError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_INPUT_ERROR)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(format_result(result))
    if result["rejected"]:  # the readable photos are printed above; the rejected ones still make the status 2
        for line in rejection_lines(result["rejected"], len(result["photos"])):
            click.echo(line, err=True)
        sys.exit(EXIT_INPUT_ERROR)


if __name__ == "__main__":
    predict_command()
