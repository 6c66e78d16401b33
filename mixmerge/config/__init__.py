"""The typed schema of params.yaml, one module per params section. It imports nothing of the
library above `mixmerge.core`: `mixmerge.validation.load_params`, which every stage calls,
adds the checks that need the library's knowledge."""

from mixmerge.config.common import ParamsError, Problem
from mixmerge.config.study import StudyConfig

__all__ = ["ParamsError", "Problem", "StudyConfig"]
