"""The `inatvision` command line (docs/contract.md, Commands)."""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow loads, here and in Beam workers
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import sys  # noqa: E402

import click  # noqa: E402

DEFAULT_ROOT = "./inatvision-root"
profile_option = click.option("--profile", default="demo", show_default=True, help="demo or production")
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="override a configuration key, e.g. --set trainer.epochs=3 (repeatable)")


class InputProblem(click.ClickException):
    """A wrong path, key or value the user gave: exit 2 (`input_error`), as `inatvision run` does."""

    exit_code = 2


@click.group()
def main():
    """Train and release an iNaturalist-style species classifier with TFX."""


@main.command("sample-export")
@click.argument("out")
@click.option("--species", default=24, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--scale", default=1.0, show_default=True, help="a later snapshot with SCALE times the observations")
@click.option("--tables-only", is_flag=True, help="write the tables, no photos")
def sample_export(out, species, seed, scale, tables_only):
    """Write a generated export in the iNaturalist Open Data layout."""
    from inatvision.sample_export import write_sample_export
    counts = write_sample_export(out, species=species, seed=seed, scale=scale, tables_only=tables_only)
    click.echo(f"wrote {out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@main.command("run")
@click.option("--export", "export_dir", required=True, help="export folder (Open Data layout)")
@click.option("--root", default=DEFAULT_ROOT, show_default=True)
@click.option("--photo-root", default="", help="photos/ root if not inside the export (local, gs://)")
@profile_option
@set_option
@click.option("-v", "--verbose", is_flag=True, help="show library logs too (always kept in runs/<id>/run.log)")
def run_command(export_dir, root, photo_root, profile, overrides, verbose):
    """Run the whole pipeline locally; writes runs/<id>/summary.json."""
    from inatvision.pipeline.run import run
    summary, code = run(export_dir, root, profile, overrides, photo_root, verbose=verbose)
    click.echo(format_summary(summary))
    sys.exit(code)


def format_summary(summary: dict) -> str:
    lines = [f"status: {summary['status']}"]
    if summary.get("error"):
        lines.append(f"error: {summary['error']}")
    for key in ("examples_per_split", "num_classes", "candidate", "baseline", "blessed", "pushed_to"):
        if summary.get(key) is not None:
            lines.append(f"{key}: {json.dumps(summary[key])}")
    if summary.get("anomalies"):
        lines.append(f"anomalies: {len(summary['anomalies'])}")
    lines.append(f"summary: runs/{summary['run_id']}/summary.json")
    return "\n".join(lines)


@main.command("export-preview")
@click.option("--export", "export_dir", required=True)
@click.option("--out", required=True)
@profile_option
@set_option
def export_preview(export_dir, out, profile, overrides):
    """taxonomy.csv and taxa_report.csv without reading a photo."""
    from inatvision.components.export_examples.preview import run_preview
    from inatvision.components.export_examples.tables import InputError
    from inatvision.config import ConfigError, build_config
    try:
        export = build_config(profile, overrides).export
        click.echo(cutoffs_line(profile, export), err=True)
        summary = run_preview(export_dir, out, export)
    except (InputError, ConfigError) as error:
        raise InputProblem(str(error)) from None
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "rejected_examples"}, indent=2))


def cutoffs_line(profile: str, export) -> str:
    """Which inclusion cut-offs the preview applies, and the production ones when they differ."""
    from inatvision.config import build_config
    line = (f"cut-offs ({profile} profile): {export.min_observations} observations, "
            f"{export.min_research_grade} research grade per leaf")
    production = build_config("production").export
    if (production.min_observations, production.min_research_grade) != (export.min_observations,
                                                                         export.min_research_grade):
        line += (f"; --profile production applies {production.min_observations} and "
                 f"{production.min_research_grade}")
    return line


@main.command("convert-export")
@click.argument("csv_path")
@click.option("--photos", "photos_dir", default=None)
@click.option("--out", required=True)
def convert_export(csv_path, photos_dir, out):
    """iNaturalist export-tool CSV to the Open Data layout."""
    from inatvision.components.export_examples.convert import convert_export_tool_csv
    click.echo(json.dumps(convert_export_tool_csv(csv_path, photos_dir, out), indent=2))


@main.command("report")
@click.argument("run_dir")
def report(run_dir):
    """Rebuild a finished run's reports (gate and validation HTML) from their JSON."""
    from inatvision.components.data_validation import report as validation_report
    from inatvision.components.release_gate.report import load_gate_result_json, write_gate_report
    written = []
    validation_json = os.path.join(run_dir, validation_report.JSON_NAME)
    if os.path.exists(validation_json):
        with open(validation_json) as f:
            validation_report.write_report(json.load(f), run_dir)
        written.append(validation_report.HTML_NAME)
    path = os.path.join(run_dir, "gate_report.json")
    if os.path.exists(path):
        write_gate_report(load_gate_result_json(path), run_dir)  # the map from geo_map.png beside it
        written.append("gate_report.html")
    elif not written:
        raise click.ClickException(f"{path}: not found; the run stopped before the release gate")
    click.echo(f"rebuilt {', '.join(written)} in {run_dir}")


@main.command("releases")
@click.option("--root", default=DEFAULT_ROOT, show_default=True)
@click.option("--destination", default=None, help="push destination (default <root>/releases)")
def releases(root, destination):
    """List complete releases with their metrics."""
    from inatvision.components.pusher import release_layout
    destination = destination or os.path.join(root, "releases")
    if not os.path.isdir(destination) and "://" not in destination:
        raise InputProblem(f"{destination}: no releases folder; is {root} a pipeline root?")
    click.echo(format_releases([(version, path, release_layout.read_model_card(path))
                                for version, path in release_layout.complete_releases(destination)]))


def format_releases(releases: list[tuple[int, str, dict]]) -> str:
    """A table with a header: version, created, top-1, top-5 (three decimals), path."""
    rows = [("version", "created", "top1", "top5", "path")]
    for version, path, card in releases:
        metrics = card.get("metrics") or {}
        rows.append((str(version), str(card.get("created", "")), _metric(metrics.get("top1")),
                     _metric(metrics.get("top5")), path))
    if len(rows) == 1:
        return "no releases yet"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(value.ljust(width) for value, width in zip(row, widths)) + "  " + row[-1]
                     for row in rows)


def _metric(value) -> str:
    return "-" if value is None else f"{value:.3f}"


@main.command("gc")
@click.option("--root", default=DEFAULT_ROOT, show_default=True)
@click.option("--keep", type=int, required=True, help="keep the artifacts of the newest KEEP runs")
@click.option("--destination", default=None, help="push destination (default <root>/releases)")
def gc(root, keep, destination):
    """Remove artifacts of old runs; never a release or anything a release's lineage needs."""
    from inatvision.config import local_paths
    from inatvision.pipeline.gc import collect_garbage
    from inatvision.pipeline.run import RootLock, RunInProgress
    root = os.path.abspath(root)
    paths = local_paths(root)
    if not os.path.exists(paths["metadata"]):
        raise click.ClickException(f"{paths['metadata']}: no metadata store; is {root} a pipeline root?")
    try:
        with RootLock(root, "gc"):
            freed = collect_garbage(paths["metadata"], paths["artifacts"], destination or paths["releases"], keep)
    except RunInProgress as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(freed))


from inatvision.kubeflow.commands import compile_kubeflow, submit_kubeflow  # noqa: E402

from inatvision.pipeline.predict import predict_command  # noqa: E402

main.add_command(predict_command, "predict")
main.add_command(compile_kubeflow)
main.add_command(submit_kubeflow)

if __name__ == "__main__":
    main()
