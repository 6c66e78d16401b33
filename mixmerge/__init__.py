"""mixmerge: mix the data, or merge the models? The library behind the study's stages.

By concern: `config` (the params schema, by section), `paths` (where everything lives), `data`
(sources, prepared splits, mixtures), `world` (the embedded six-language world), `training`,
`merging`, `generation`, `judging`, `evaluation`, `reporting`, `warm` (the warm worker) and
`core` (small shared utilities). The stages in `stages/` call it; it never imports them.
"""
