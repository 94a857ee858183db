"""A fingerprint of the source the Transform graph is built from, compiled into the Transform step.

TFX caches a step by its inputs and properties; `preprocessing_fn` is named by its import path, which stays
the same when its code changes. The fingerprint, one of Transform's properties, changes with the code, so
an edited graph runs Transform again, and with its new graph every step after it (the Trainers,
ComposeServing, the Evaluator).
"""
import hashlib
import importlib
import inspect

GRAPH_MODULES = ("inatvision.components.transform.preprocessing", "inatvision.components.geo_prior.encoding",
                 "inatvision.location", "inatvision.features")  # what preprocessing_fn's graph is made of


def source_fingerprint() -> str:
    """sha256 of the graph's modules' source, in a fixed order (16 hex digits). The modules are looked up
    when it is called, so the code a run imports is the code it fingerprints."""
    digest = hashlib.sha256()
    for name in GRAPH_MODULES:
        source = inspect.getsource(importlib.import_module(name))
        digest.update(name.encode() + b"\0" + source.encode() + b"\0")
    return digest.hexdigest()[:16]
