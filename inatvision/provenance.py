"""Where a report or release came from: the code version, when it was made, and for a run its id, export and
release. The components stamp what they know (`created`, `code_version`); `inatvision run` adds the rest to
the copies in `runs/<id>/` (pipeline/outcomes.py), and every report's header shows them (`header_line`).
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import importlib
from importlib import metadata
from pathlib import Path

# The import root and the packages mapped onto it (pyproject.toml's package-dir); editable and wheel installs
# lay these out differently, so files are named by their path under the import root, not on disk.
PACKAGES = ("inatvision", "inatvision.pipeline", "inatvision.components", "inatvision.kubeflow",
            "inatvision.schemas", "inatvision.sample_export")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`<package version>+src.<12 hex digits>`: the digits are a sha256 of the package's Python source, so two
    installs of the same code (a checkout, the image) agree and any edit changes it."""
    sources: dict[str, bytes] = {}
    for package in PACKAGES:
        folder = Path(importlib.import_module(package).__file__).parent
        prefix = Path(*package.split("."))
        for path in folder.rglob("*.py"):
            if "__pycache__" not in path.parts:
                sources.setdefault(str(prefix / path.relative_to(folder)), path.read_bytes())
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name] + b"\0")
    try:
        version = metadata.version("inatvision")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"{version}+src.{digest.hexdigest()[:12]}"


def now() -> str:
    """UTC, to the second, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def component_provenance() -> dict:
    """What a component knows when it writes a report: when, and which code."""
    return {"created": now(), "code_version": code_version()}


def run_provenance(provenance: dict | None, run_id: str, export_dir: str | None, release: str | None) -> dict:
    """A component's provenance with the run's id, export folder and release (None: nothing was pushed)."""
    return {**(provenance or {}), "run_id": run_id, "export": export_dir, "release": release}


def header_line(provenance: dict | None) -> str:
    """One line for a report's header, naming only what is known: a pipeline artifact outside a local run has
    no run id; a report from before provenance existed has nothing."""
    provenance = provenance or {}
    parts = []
    if "run_id" in provenance:
        parts.append(f"run {provenance['run_id']}")
    if "release" in provenance:
        parts.append(f"release {provenance['release']}" if provenance["release"] else "no release pushed")
    if provenance.get("created"):
        parts.append(f"created {provenance['created']}")
    if provenance.get("export"):
        parts.append(f"export {provenance['export']}")
    if provenance.get("code_version"):
        parts.append(f"code {provenance['code_version']}")
    return " · ".join(parts) if parts else "provenance not recorded"
