"""The schema a run validates against: the curated file plus this run's label domain."""
import os

import tensorflow_data_validation as tfdv
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Schema

from inatvision import features
from inatvision.artifacts import Taxonomy
from inatvision.components.data_validation.taxonomy_checks import read_table

CURATED_SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "schemas", "examples.pbtxt")


def schema_for_taxonomy(curated_path: str, num_classes: int):
    """The curated schema with `leaf_class_id` restricted to [0, num_classes)."""
    schema = tfdv.load_schema_text(curated_path)
    label = tfdv.get_feature(schema, features.LABEL)
    label.int_domain.min = 0
    label.int_domain.max = num_classes - 1
    return schema


def count_leaf_rows(taxonomy_csv: str) -> int:
    """Rows with a `leaf_class_id`; whether the ids are sound is the ValidationGate's to say."""
    _, rows = read_table(taxonomy_csv)
    return sum(1 for row in rows if row.get("leaf_class_id"))


@component
def CuratedSchema(taxonomy: InputArtifact[Taxonomy], curated_schema_path: Parameter[str],  # noqa: N802
                  schema: OutputArtifact[Schema]) -> None:
    """Writes `schema.pbtxt`; the number of classes comes from taxonomy.csv, never from the labels seen."""
    num_classes = count_leaf_rows(os.path.join(taxonomy.uri, "taxonomy.csv"))
    tfdv.write_schema_text(schema_for_taxonomy(curated_schema_path or CURATED_SCHEMA, num_classes),
                           os.path.join(schema.uri, "schema.pbtxt"))
