"""Did-you-mean hints for misspelt names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """A hint to append to an error about `name`: the closest choice, or the list of choices."""
    choices = sorted(set(choices))
    if not choices:
        return ""
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if len(choices) <= 12:
        return f"; expected one of: {', '.join(choices)}"
    return ""
