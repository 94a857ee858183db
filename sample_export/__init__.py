"""A generated iNaturalist Open Data export for demos and tests (`inatvision sample-export`)."""
from inatvision.sample_export.generator import write_sample_export

__all__ = ["write_sample_export"]
