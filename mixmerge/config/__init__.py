"""The typed schema of params.yaml, one module per params section, and `load_params`, the
validation every stage runs before it starts (`mixmerge.config.study`)."""

from mixmerge.config.common import ParamsError, Problem
from mixmerge.config.study import StudyConfig, load_params, validate_params

__all__ = ["ParamsError", "Problem", "StudyConfig", "load_params", "validate_params"]
