"""The schema a run validates against: the curated file plus this run's label domain."""
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Schema

from inatvision import artifacts, features
from inatvision.artifacts import Taxonomy

CURATED_SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "schemas", "examples.pbtxt")


def schema_for_taxonomy(curated_path: str, num_classes: int):
    """The curated schema with `leaf_class_id` restricted to [0, num_classes)."""
    schema = tfdv.load_schema_text(curated_path)
    label = tfdv.get_feature(schema, features.LABEL)
    label.int_domain.min = 0
    label.int_domain.max = num_classes - 1
    return schema


@component
def CuratedSchema(taxonomy: InputArtifact[Taxonomy], curated_schema_path: Parameter[str],  # noqa: N802
                  schema: OutputArtifact[Schema]) -> None:
    """Writes `schema.pbtxt`; the number of classes is the taxonomy's (its artifact's `num_classes`, which
    ExportExamples counted in the taxonomy.csv it wrote), never from the labels seen."""
    curated = schema_for_taxonomy(curated_schema_path or CURATED_SCHEMA, artifacts.num_classes(taxonomy))
    # The Kubeflow V2 entrypoint does not create output folders (a gs:// root needs none; a local one does).
    tf.io.gfile.makedirs(schema.uri)
    tfdv.write_schema_text(curated, os.path.join(schema.uri, "schema.pbtxt"))
