"""Merge-weight search on the dev split: the spaces a recipe declares (`space`), the points
NSGA-II proposes (`sampler`), the search itself (`runner`), and what params validation checks
of a search before anything runs (`checks`, which imports no torch)."""
