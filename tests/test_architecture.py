"""The layout holds: one import root, one-way layers, artifact type names that import (docs/architecture.md)."""
import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Folder -> the package it is installed as (pyproject.toml's package-dir).
PACKAGE_DIRS = {"inatvision": "inatvision", "pipeline": "inatvision.pipeline", "components": "inatvision.components",
                "kubeflow": "inatvision.kubeflow", "schemas": "inatvision.schemas",
                "sample_export": "inatvision.sample_export"}
# Bottom to top; a module may import its own layer and those below, never one above.
LAYERS = (
    ("inatvision", "inatvision.schemas"),  # configuration, artifact types, feature keys, the taxonomy contract
    ("inatvision.components", "inatvision.sample_export"),  # domain rules and TFX components
    ("inatvision.pipeline.pipeline", "inatvision.pipeline.metadata"),  # the pipeline definition
    ("inatvision.pipeline", "inatvision.kubeflow"),  # runners: local, TFX CLI, Kubeflow; gc, predict
    ("inatvision.pipeline.cli",),  # the command line
)
SOURCE_FOLDERS = tuple(PACKAGE_DIRS) + ("tests", "benchmarks")


def layer_of(module: str) -> int:
    """The layer of an `inatvision` module: its longest matching prefix in LAYERS."""
    best, best_length = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    if best is None:
        raise ValueError(f"{module} is in no layer")
    return best


def imported_modules(source: str) -> set[str]:
    """Every module an import statement of `source` names, at any depth (lazy imports inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def layer_violations(module: str, source: str) -> list[str]:
    """Imports of `module` that reach a layer above its own."""
    own = layer_of(module)
    return [f"{module} (layer {own}) imports {name} (layer {layer_of(name)})"
            for name in sorted(imported_modules(source))
            if name.split(".")[0] == "inatvision" and _is_module_path(name) and layer_of(name) > own]


def _is_module_path(name: str) -> bool:
    """`from inatvision.x import y` names `inatvision.x.y`, which is a module or a name in `inatvision.x`."""
    parts = name.split(".")
    folder = {v: k for k, v in PACKAGE_DIRS.items()}
    for depth in range(len(parts), 0, -1):
        package = ".".join(parts[:depth])
        if package in folder:
            path = REPO / folder[package] / Path(*parts[depth:])
            return path.with_suffix(".py").exists() or (path / "__init__.py").exists()
    return False


def package_modules() -> dict[str, Path]:
    """Every installed module, by its `inatvision.*` name."""
    modules = {}
    for folder, package in PACKAGE_DIRS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            modules[".".join((package,) + parts)] = path
    return modules


def test_every_module_is_in_a_layer_and_imports_only_its_own_or_lower_layers():
    problems = [problem for module, path in package_modules().items()
                for problem in layer_violations(module, path.read_text())]
    assert problems == []


def test_the_layer_check_catches_a_component_that_imports_the_pipeline():
    source = "import os\n\ndef f():\n    from inatvision.pipeline.run import run\n"
    assert layer_violations("inatvision.components.trainer.run", source) == [
        "inatvision.components.trainer.run (layer 1) imports inatvision.pipeline.run (layer 3)"]
    assert layer_violations("inatvision.components.trainer.run", "from inatvision.pipeline import pipeline") != []
    assert layer_violations("inatvision.config", "from inatvision.components import features") != []
    assert layer_violations("inatvision.pipeline.cli", "from inatvision.kubeflow import commands") == []


def test_code_tests_and_benchmarks_import_only_the_inatvision_root():
    """A bare `import pipeline` would load a second copy of a module under another name."""
    bare = []
    for folder in SOURCE_FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            source = path.read_text()
            bare += [f"{path.relative_to(REPO)}: {name}" for name in imported_modules(source)
                     if name.split(".")[0] in set(PACKAGE_DIRS) - {"inatvision"}]
            bare += [f"{path.relative_to(REPO)}: -m {folder_name}" for folder_name in set(PACKAGE_DIRS) - {"inatvision"}
                     if f'"-m", "{folder_name}.' in source]
    assert bare == []


def test_packaged_code_imports_nothing_from_tests_or_benchmarks():
    leaks = [f"{module}: {name}" for module, path in package_modules().items()
             for name in imported_modules(path.read_text()) if name.split(".")[0] in ("tests", "benchmarks")]
    assert leaks == []


def test_every_custom_artifact_type_name_imports_its_class():
    """TFX's container entrypoint imports each artifact class by its TYPE_NAME (tfx.utils.import_utils)."""
    from tfx.types.artifact import Artifact
    from tfx.utils import import_utils

    from inatvision import artifacts

    classes = [value for value in vars(artifacts).values()
               if isinstance(value, type) and issubclass(value, Artifact) and value is not Artifact]
    assert len(classes) >= 5
    for cls in classes:
        assert import_utils.import_class_by_path(cls.TYPE_NAME) is cls


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy: setuptools writes build/ and *.egg-info beside the sources
    for folder in PACKAGE_DIRS:
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, env=dict(os.environ, PIP_NO_INDEX="1"))
    return zipfile.ZipFile(next(out.glob("inatvision-*.whl")))


def test_the_wheel_installs_one_top_level_package(wheel):
    top_level = next(name for name in wheel.namelist() if name.endswith(".dist-info/top_level.txt"))
    assert wheel.read(top_level).decode().split() == ["inatvision"]
    roots = {name.split("/")[0] for name in wheel.namelist() if ".dist-info/" not in name}
    assert roots == {"inatvision"}
    names = set(wheel.namelist())
    for expected in ("inatvision/pipeline/cli.py", "inatvision/components/trainer/run.py", "inatvision/config.py",
                     "inatvision/schemas/examples.pbtxt", "inatvision/components/release_gate/gate_report.html.j2",
                     "inatvision/kubeflow/runner.py", "inatvision/sample_export/generator.py"):
        assert expected in names, expected
