"""The validation report: `validation_report.json` and a self-contained `validation_report.html`
(the photos-per-taxon chart inlined as a PNG) holding the same facts."""
from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Optional

import jinja2
import tensorflow as tf
from matplotlib.figure import Figure  # a bare Figure renders with Agg, without pyplot's global state
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from inatvision.provenance import header_line

JSON_NAME = "validation_report.json"
HTML_NAME = "validation_report.html"
TEMPLATE_NAME = "validation_report.html.j2"
CURRENT_COLOUR, BASELINE_COLOUR = "#1f6fb2", "#d9822b"


def write_report(report: dict, out_dir: str) -> None:
    """Writes both files into `out_dir` (a local folder or a gs:// URI)."""
    tf.io.gfile.makedirs(out_dir)
    with tf.io.gfile.GFile(os.path.join(out_dir, JSON_NAME), "w") as f:
        json.dump(report, f, indent=2)
    with tf.io.gfile.GFile(os.path.join(out_dir, HTML_NAME), "w") as f:
        f.write(render_html(report))


def render_html(report: dict) -> str:
    """The HTML page of a report (as `validation_report.json` holds it)."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
                                     undefined=jinja2.StrictUndefined)
    environment.filters.update(figure=_figure_text, provenance=header_line)
    chart = photos_per_taxon_figure(report["taxa"]["train_photos_sorted"], report["baseline_release"])
    return environment.get_template(TEMPLATE_NAME).render(
        report=report, chart=_png_base64(chart) if chart else None)


def _figure_text(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.4g}"


def photos_per_taxon_figure(sorted_counts: dict, baseline_release: str) -> Optional[Figure]:
    """Training photos per taxon, taxa ranked from most to fewest photos: this export and the previous release."""
    if not sorted_counts["current"]:
        return None
    figure = Figure(figsize=(7.0, 3.6))
    axes = figure.add_subplot()
    series = [("this export", sorted_counts["current"], CURRENT_COLOUR)]
    if sorted_counts["baseline"]:
        series.append((f"release {baseline_release}", sorted_counts["baseline"], BASELINE_COLOUR))
    for label, counts, colour in series:
        axes.stairs(counts, range(len(counts) + 1), baseline=None, label=label, color=colour, linewidth=1.5)
    every_count = [count for _, counts, _ in series for count in counts]
    if max(every_count) > 10 * max(min(every_count), 1):  # a long tail: a log scale shows its end
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(ScalarFormatter())
        axes.yaxis.set_minor_formatter(NullFormatter())
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("taxa, most photographed first")
    axes.set_ylabel("training photos")
    axes.set_title("Training photos per taxon")
    axes.legend(fontsize="small")
    return figure


def _png_base64(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
