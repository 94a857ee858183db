"""The gate's report: a self-contained HTML page (figures inlined as PNG) and the same result as JSON.

With a location prior the report also shows a map of one taxon's geo scores (`geo_map.png`, drawn by the
gate's `geo_map`): it is inlined in the HTML and kept beside the JSON, so `inatvision report` can rebuild it.
"""
from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Optional

import jinja2
import numpy as np
from matplotlib.figure import Figure  # a bare Figure renders PNG with Agg, without pyplot's global state

from inatvision.components.release_gate.report_data import GateResult
from inatvision.components.release_gate.statistics import wilson_interval
from inatvision.provenance import header_line

HTML_NAME = "gate_report.html"
JSON_NAME = "gate_report.json"
TEMPLATE_NAME = "gate_report.html.j2"
GEO_MAP_NAME = "geo_map.png"
CANDIDATE_COLOURS = ("#1f6fb2", "#8fbce6")  # top-1, top-5
BASELINE_COLOURS = ("#d9822b", "#f2c08f")


def write_gate_report(result: GateResult, out_dir: str | os.PathLike,
                      geo_map_png: Optional[bytes] = None) -> tuple[Path, Path]:
    """Writes `gate_report.html` and `gate_report.json` into the local folder `out_dir`.

    `geo_map_png` is written there as `geo_map.png`; without it, a `geo_map.png` already in `out_dir` is used.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if geo_map_png is not None:
        (out / GEO_MAP_NAME).write_bytes(geo_map_png)
    elif (out / GEO_MAP_NAME).exists():
        geo_map_png = (out / GEO_MAP_NAME).read_bytes()
    json_path = out / JSON_NAME
    json_path.write_text(json.dumps(result.to_json(), indent=2))
    html_path = out / HTML_NAME
    html_path.write_text(render_gate_report(result, geo_map_png))
    return html_path, json_path


def load_gate_result_json(path: str | os.PathLike) -> GateResult:
    """The `GateResult` a `gate_report.json` holds, e.g. to rebuild the HTML."""
    return GateResult.from_json(json.loads(Path(path).read_text()))


def render_gate_report(result: GateResult, geo_map_png: Optional[bytes] = None) -> str:
    """The report's HTML text; `geo_map_png` is shown in the location prior's section."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
                                     undefined=jinja2.StrictUndefined)
    environment.filters.update(percent=_percent, points=_points, hundred=_hundred, p_value=_p_value,
                               provenance=header_line)
    figures = {"iconic": iconic_figure(result), "train_photos": train_photos_figure(result),
               "regressed": regressed_taxa_figure(result)}
    encoded = {name: _png_base64(figure) if figure else None for name, figure in figures.items()}  # None: no data
    encoded["geo_map"] = (base64.b64encode(geo_map_png).decode("ascii")
                          if geo_map_png and result.geo_prior is not None else None)
    return environment.get_template(TEMPLATE_NAME).render(result=result, figures=encoded)


def _percent(fraction: Optional[float]) -> str:
    return "–" if fraction is None else f"{fraction * 100:.1f}%"


def _points(fraction: Optional[float]) -> str:
    return "–" if fraction is None else f"{fraction * 100:+.2f}"


def _hundred(fraction: Optional[float]) -> str:
    """A threshold's value, limit or bound in percent (accuracies) or percentage points (changes)."""
    return "–" if fraction is None else f"{fraction * 100:.2f}"


def _p_value(p: Optional[float]) -> str:
    return "–" if p is None else f"{p:.3g}"


def _png_base64(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _as_percentages(values: list[Optional[float]]) -> np.ndarray:
    return np.array([np.nan if value is None else value * 100 for value in values])


def _grouped_bars(labels: list[str], series: dict[str, tuple[list[Optional[float]], str]], title: str,
                  examples: Optional[list[int]] = None, confidence: float = 0.95) -> Figure:
    """One group of bars per label, one bar per series (name -> (accuracies, colour)), in percent. With
    `examples` (each label's number of test examples) every bar gets its Wilson interval at `confidence`."""
    figure = Figure(figsize=(max(6.0, 0.9 * len(labels) + 2), 3.6))
    axes = figure.add_subplot()
    width = 0.8 / len(series)
    positions = np.arange(len(labels))
    for offset, (name, (values, colour)) in enumerate(series.items()):
        heights = _as_percentages(values)
        errors = None
        if examples is not None:
            intervals = [wilson_interval(value, n, confidence) if value is not None else (np.nan, np.nan)
                         for value, n in zip(values, examples)]
            errors = np.abs(np.array(intervals).T * 100 - heights)  # [2, bars]: below, above
        axes.bar(positions + (offset - (len(series) - 1) / 2) * width, heights, width,
                 label=name, color=colour, yerr=errors, ecolor="#444", capsize=2, error_kw={"linewidth": 0.8})
    crowded = len(labels) > 6
    axes.set_xticks(positions, labels, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    axes.set_ylim(0, 100)
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def iconic_figure(result: GateResult) -> Optional[Figure]:
    """Top-1/top-5 per iconic taxon: both releases on shared examples, or the candidate alone on a first release."""
    if result.first_release:
        rows = result.per_iconic
        series = {"candidate top-1": ([r.candidate_top1 for r in rows], CANDIDATE_COLOURS[0]),
                  "candidate top-5": ([r.candidate_top5 for r in rows], CANDIDATE_COLOURS[1])}
        title = "Candidate accuracy per iconic taxon (all test examples)"
        examples = [row.n for row in rows]
    else:
        rows = [row for row in result.per_iconic if row.n_shared]
        series = {"candidate top-1": ([r.shared_candidate_top1 for r in rows], CANDIDATE_COLOURS[0]),
                  "baseline top-1": ([r.shared_baseline_top1 for r in rows], BASELINE_COLOURS[0]),
                  "candidate top-5": ([r.shared_candidate_top5 for r in rows], CANDIDATE_COLOURS[1]),
                  "baseline top-5": ([r.shared_baseline_top5 for r in rows], BASELINE_COLOURS[1])}
        title = "Candidate vs baseline per iconic taxon (shared examples)"
        examples = [row.n_shared for row in rows]
    if not rows:
        return None
    labels = [f"{row.name}\nn={n:,}" for row, n in zip(rows, examples)]
    return _grouped_bars(labels, series, f"{title}, {result.confidence:.0%} intervals", examples, result.confidence)


def train_photos_figure(result: GateResult) -> Optional[Figure]:
    """Each leaf's candidate top-1 against its training photos (log scale), a point per taxon whose area grows
    with its test examples; None for a report without per-taxon rows."""
    taxa = result.taxon_accuracy
    if not taxa:
        return None
    figure = Figure(figsize=(7.0, 3.8))
    axes = figure.add_subplot()
    photos = np.array([max(taxon.train_photos, 1) for taxon in taxa])
    top1 = np.array([100 * taxon.candidate_correct / taxon.n for taxon in taxa])
    examples = np.array([taxon.n for taxon in taxa])
    axes.scatter(photos, top1, s=12 + 60 * examples / examples.max(), alpha=0.5, color=CANDIDATE_COLOURS[0],
                 edgecolors="none")
    axes.set_xscale("log")
    axes.set_ylim(-3, 103)
    axes.set_xlabel("training photos of the taxon (log scale)")
    axes.set_ylabel("candidate top-1 (%)")
    axes.set_title(f"Top-1 per taxon against its training photos ({len(taxa):,} taxa; "
                   f"point area: test examples, {examples.min():,} to {examples.max():,})", fontsize="medium")
    return figure


def regressed_taxa_figure(result: GateResult) -> Optional[Figure]:
    """Horizontal bars of the top-1 change of the most regressed taxa, worst on top."""
    taxa = result.regressed_taxa
    if not taxa:
        return None
    figure = Figure(figsize=(7.0, 0.3 * len(taxa) + 1.2))
    axes = figure.add_subplot()
    labels = [f"{taxon.name} ({taxon.baseline_correct}→{taxon.candidate_correct} of {taxon.n})" for taxon in taxa]
    axes.barh(np.arange(len(taxa)), [taxon.change * 100 for taxon in taxa], color=BASELINE_COLOURS[0])
    axes.set_yticks(np.arange(len(taxa)), labels, fontsize="small")
    axes.invert_yaxis()
    axes.set_xlabel("top-1 change (percentage points)")
    axes.set_title("Most regressed shared taxa (correct test examples: baseline→candidate)")
    return figure
