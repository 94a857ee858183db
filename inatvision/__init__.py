"""inatvision: the TFX pipeline that trains and releases an iNaturalist-style species classifier.

This package is the bottom layer, imported by every other: the configuration (`config`), the custom
artifact types (`artifacts`), the tf.Example feature keys (`features`), the `taxonomy.csv` contract
(`taxonomy`) and the Evaluator's outcome record that the release gate reads (`taxon_outcomes`). Above
it: the domain rules and TFX components (`inatvision.components`, folder `components/`), the pipeline
definition (`inatvision.pipeline.pipeline`), and the runners and command line (`inatvision.pipeline.run`,
`inatvision.kubeflow`, `inatvision.pipeline.cli`). docs/architecture.md draws the layers;
tests/test_architecture.py holds them.
"""

# Custom artifact types are named `inatvision.<Class>` (the Kubeflow V2 compiler allows one module segment),
# and TFX's container entrypoint imports each by that name. Resolved lazily, so that importing the
# configuration does not load TFX.
_ARTIFACT_TYPES = ("Taxonomy", "ExportReport", "ValidationReport", "GateReport", "Release")


def __getattr__(name: str):
    if name in _ARTIFACT_TYPES:
        from inatvision import artifacts
        return getattr(artifacts, name)
    raise AttributeError(f"module 'inatvision' has no attribute {name!r}")
