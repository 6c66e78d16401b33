"""Errors a user can fix: the CLI prints them without a traceback."""


class StageError(Exception):
    """The inputs of a stage cannot give what was asked (too few examples, an empty source...)."""
