"""A world map of one taxon's geo scores, for the gate report ("where does the prior expect this taxon?").

The gate draws it from the candidate it already reads: the composed serving model keeps the geo prior it
calls (`geo`) and the prior's `assets/thresholds.csv` (each leaf's threshold and training presences). The
taxon is the leaf with the most training presences, its best-known range.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure  # a bare Figure renders PNG with Agg, without pyplot's global state

from inatvision.components.geo_prior.export import read_threshold_rows
from inatvision.components.serving.compose import THRESHOLDS_ASSET

GRID_STEP_DEGREES = 2.0
GRATICULE_DEGREES = 30  # labelled meridians and parallels: no coastline data ships with the packages here


@dataclass
class MapTaxon:
    leaf_class_id: int
    taxon_id: int
    name: str
    presences: int
    threshold: float

    def caption(self) -> str:
        return (f"Geo scores of {self.name} (taxon {self.taxon_id}), the leaf with the most training presences "
                f"({self.presences:,}), so the range the prior knows best; the white contour is its 'expected "
                f"nearby' threshold {self.threshold:.3g}, grid lines every {GRATICULE_DEGREES} degrees of latitude, "
                f"{2 * GRATICULE_DEGREES} of longitude.")


def most_observed_taxon(thresholds_path: str, names: dict[int, str]) -> Optional[MapTaxon]:
    """The leaf with the most training presences (the best-known range), or None when no leaf has any."""
    rows = read_threshold_rows(thresholds_path)
    if not rows:
        return None
    best = max(rows, key=lambda row: (int(row["presences"]), -int(row["leaf_class_id"])))
    if int(best["presences"]) == 0:
        return None
    taxon = int(best["taxon_id"])
    return MapTaxon(int(best["leaf_class_id"]), taxon, names.get(taxon, f"taxon {taxon}"), int(best["presences"]),
                    float(best["threshold"]))


def score_grid(geo_serve: Callable, leaf: int, step: float = GRID_STEP_DEGREES):
    """(latitudes [h], longitudes [w], scores [h, w]) of one leaf on a regular grid, date unknown."""
    latitudes = np.arange(-90.0, 90.0 + step / 2, step, dtype=np.float32)
    longitudes = np.arange(-180.0, 180.0 + step / 2, step, dtype=np.float32)
    lat, lng = np.meshgrid(latitudes, longitudes, indexing="ij")
    scores = geo_serve(tf.constant(lat.ravel()), tf.constant(lng.ravel()),
                       tf.zeros([lat.size], tf.int64))["geo_scores"].numpy()[:, leaf]
    return latitudes, longitudes, scores.reshape(lat.shape)


def map_png(latitudes: np.ndarray, longitudes: np.ndarray, scores: np.ndarray, title: str,
            threshold: Optional[float] = None) -> bytes:
    """A lat/lng heat map of `scores` [lat, lng] in [0, 1], with the threshold's contour."""
    figure = Figure(figsize=(8.0, 4.4))
    axes = figure.add_subplot()
    image = axes.imshow(scores, origin="lower", aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0,
                        extent=(longitudes[0], longitudes[-1], latitudes[0], latitudes[-1]))
    if threshold is not None and float(scores.min()) < threshold < float(scores.max()):
        axes.contour(longitudes, latitudes, scores, levels=[threshold], colors="white", linewidths=1.0)
    graticule(axes)
    axes.set_title(title, fontsize="medium")
    figure.colorbar(image, ax=axes, label="geo score")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def graticule(axes) -> None:
    """Parallels every GRATICULE_DEGREES and meridians every twice that (readable labels), in degrees east/west
    and north/south."""
    meridians = np.arange(-180, 181, 2 * GRATICULE_DEGREES)
    parallels = np.arange(-90, 91, GRATICULE_DEGREES)
    axes.set_xticks(meridians, [_degrees(value, "E", "W") for value in meridians])
    axes.set_yticks(parallels, [_degrees(value, "N", "S") for value in parallels])
    axes.grid(True, color="white", alpha=0.35, linewidth=0.6)
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")


def _degrees(value: float, positive: str, negative: str) -> str:
    return "0°" if value == 0 else f"{abs(value):g}°{positive if value > 0 else negative}"


def taxon_map_png(geo_serve: Callable, taxon: MapTaxon) -> bytes:
    latitudes, longitudes, scores = score_grid(geo_serve, taxon.leaf_class_id)
    return map_png(latitudes, longitudes, scores, f"Geo scores of {taxon.name} ({taxon.presences:,} presences)",
                   taxon.threshold)


def draw_geo_map(serving_dir: str, names: dict[int, str]) -> Optional[tuple[bytes, MapTaxon]]:
    """(PNG, its taxon) of the composed serving model's prior; None for a vision-only model (no thresholds
    asset) or when no leaf has training presences. `names`: leaf taxon id -> name."""
    thresholds_path = os.path.join(serving_dir, THRESHOLDS_ASSET)
    if not tf.io.gfile.exists(thresholds_path):
        return None
    taxon = most_observed_taxon(thresholds_path, names)
    if taxon is None:
        return None
    served = tf.saved_model.load(serving_dir)  # held while its geo prior runs: the function needs its variables
    return taxon_map_png(served.geo.serve, taxon), taxon
