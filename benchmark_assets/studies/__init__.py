"""Study files: YAML -> validated spec objects, with one clear line for every mistake."""
from benchmark_assets.studies.spec import (
    Study,
    StudyError,
    discover_studies,
    load_study,
    resolve_study_path,
    studies_dir,
)

__all__ = ["Study", "StudyError", "discover_studies", "load_study", "resolve_study_path", "studies_dir"]
