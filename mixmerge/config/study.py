"""The whole params file: its top-level keys and the checks across sections that need no more
than the schema.

`params_problems` gives every problem at once, each with its key path and the bad value, with
a did-you-mean for misspelt names; `mixmerge.validation.load_params`, the one entry point every
stage calls, adds the library's checks. Each section's schema lives in its own module here
(`data`, `mixtures`, `base_model`, `training`, `merges`, `evaluation`, `report`), so that a stage
depends on the schema of the sections it reads and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from mixmerge import paths
from mixmerge.config.base_model import (
    BaseModelConfig,
    BuiltinBaseConfig,
    GgufBaseConfig,
    HubBaseConfig,
)
from mixmerge.config.cluster import ClusterConfig
from mixmerge.config.common import (
    Language,
    Name,
    Problem,
    Strict,
    problem_of,
    unique_items,
)
from mixmerge.config.data import (
    GENERATORS,
    BuiltinSourceConfig,
    DataConfig,
    FileSourceConfig,
    GeneratedSourceConfig,
    HubSourceConfig,
    TableSourceConfig,
)
from mixmerge.config.evaluation import EvaluationConfig
from mixmerge.config.merges import MergeabilityConfig, MergeConfig
from mixmerge.config.mixtures import MixtureConfig
from mixmerge.config.report import ReportConfig
from mixmerge.config.searches import SearchConfig
from mixmerge.config.syntheses import SynthesisConfig
from mixmerge.config.training import RunConfig, TrainConfig
from mixmerge.config.translations import TranslationConfig
from mixmerge.core.suggest import did_you_mean


class StudyConfig(Strict):
    languages: Annotated[list[Language], Field(min_length=1), AfterValidator(unique_items)]
    # Training seeds: every model, the base included, has one replicate per seed, and a seed's
    # replicates form a chain (its base, the runs trained from it, their merges); figures
    # aggregate them.
    seeds: Annotated[list[int], Field(min_length=1), AfterValidator(unique_items)] = [0]
    data: DataConfig
    # Data made by stages from other sources: `translate@<name>` and `synthesize@<name>`.
    translations: dict[Name, TranslationConfig] = {}
    syntheses: dict[Name, SynthesisConfig] = {}
    mixtures: dict[Name, MixtureConfig] = {}
    base: BaseModelConfig | None = None
    train: TrainConfig | None = None
    sft: dict[Name, RunConfig] = {}
    dpo: dict[Name, RunConfig] = {}
    merges: dict[Name, MergeConfig] = {}
    # Whether each merge's models can be merged at all: losses along the path between them.
    mergeability: MergeabilityConfig = MergeabilityConfig()
    # Merge recipes whose weights or parameters are searched on the dev split: `search@<name>`.
    searches: dict[Name, SearchConfig] = {}
    evaluation: EvaluationConfig | None = None
    report: ReportConfig | None = None
    # What each stage's job asks a cluster for (`mixmerge run --executor slurm`).
    cluster: ClusterConfig = ClusterConfig()

    @property
    def model_refs(self) -> set[str]:
        """Every model of the study: the base, each run and merge (`sft/x`, `merge/y`), and
        the merges each search chooses (`merge/<search>-best`)."""
        tables = paths.TABLES.items()
        declared = {paths.ref(k, n) for k, key in tables for n in getattr(self, key)}
        return {paths.BASE} | declared | paths.chosen_refs(list(self.searches))

    def mixture_languages(self, name: str) -> list[str]:
        return self.mixtures[name].languages or self.languages

    @property
    def trust_remote_code(self) -> bool:
        """Whether models may run code of their own: only a hub base whose params allow it."""
        return isinstance(self.base, HubBaseConfig) and self.base.trust_remote_code

    @model_validator(mode="after")
    def _trainable(self) -> StudyConfig:
        if isinstance(self.base, BuiltinBaseConfig) and not any(
            isinstance(source, BuiltinSourceConfig) for source in self.data.sources.values()
        ):
            raise PydanticCustomError(
                "builtin_base",
                "`base.kind: builtin` trains on the embedded world: add a `builtin` data source",
            )
        warmed = (
            isinstance(self.base, (HubBaseConfig, GgufBaseConfig)) and self.base.warmup is not None
        )
        if warmed and not any(
            isinstance(source, BuiltinSourceConfig) and source.warmup.general + source.warmup.safety
            for source in self.data.sources.values()
        ):
            raise PydanticCustomError(
                "base_warmup",
                "`base.warmup` trains on the embedded world's warm-up split: add a `builtin` "
                "data source with `warmup` sizes",
            )
        if (self.sft or self.dpo) and (self.base is None or self.train is None):
            raise PydanticCustomError("training", "runs in `sft` or `dpo` need `base` and `train`")
        for kind, form in (("sft", "sft"), ("dpo", "preference")):
            for name, run in getattr(self, kind).items():
                if form not in self.mixtures[run.mixture].forms:
                    raise PydanticCustomError(
                        "form",
                        "{kind}.{name} trains on mixture {mixture}, which has no {form} set",
                        {"kind": kind, "name": name, "mixture": run.mixture, "form": form},
                    )
        return self


# ---------------------------------------------------------------------------------------------


def params_problems(
    raw: Any, domain: Mapping[str, Any]
) -> tuple[StudyConfig | None, list[Problem]]:
    """The params, if the schema accepts them, and every problem found: the schema's, with the
    library's checks that `domain` carries (`common.DOMAIN_CHECKS`), and the checks across
    sections that need no more than the schema."""
    if not isinstance(raw, Mapping):
        return None, [Problem("<file>", "expected a mapping of keys", raw)]
    problems = _cycles(raw)
    try:
        params = StudyConfig.model_validate(raw, context=_context(raw) | dict(domain))
    except ValidationError as error:
        return None, [problem_of(e, StudyConfig) for e in error.errors()] + problems
    problems += _source_problems(params) + _split_problems(params) + _cluster_problems(params)
    return params, problems


def _source_problems(params: StudyConfig) -> list[Problem]:
    """Translations and syntheses read a hub or file source (not a generated one: that would
    make a stage depend on the folder it writes in); a source of prompts alone is trained on
    only through a synthesis."""
    problems = []
    for table in GENERATORS.values():
        for name, entry in getattr(params, table).items():
            source = params.data.sources.get(entry.source)
            where = f"{table}.{name}.source"
            if source is None:
                hint = did_you_mean(entry.source, params.data.sources)
                problems.append(Problem(where, f"no data source of that name{hint}", entry.source))
            elif not isinstance(source, (HubSourceConfig, FileSourceConfig)):
                problems.append(
                    Problem(
                        where,
                        f"a {source.kind} source; only hub and file sources are read here",
                        entry.source,
                    )
                )
            elif table == "syntheses" and source.objective == "general":
                problems.append(
                    Problem(
                        where,
                        "holds general prompts; a synthesis answers safety (or benign) prompts",
                        entry.source,
                    )
                )
    synthesized = {entry.source for entry in params.syntheses.values()}
    for name, source in params.data.sources.items():
        table = isinstance(source, (HubSourceConfig, FileSourceConfig))
        if table and source.use != "eval" and source.prompts_only and name not in synthesized:
            problems.append(
                Problem(
                    f"data.sources.{name}",
                    "a source used for training needs `columns.response` or `columns.chosen`; "
                    "set `use: eval` for prompts only, or name it as the `source` of a "
                    "synthesis, which answers its train prompts",
                )
            )
        if isinstance(source, GeneratedSourceConfig):
            problems += _generated_problems(params, f"data.sources.{name}", source)
    return problems


def _generated_problems(
    params: StudyConfig, where: str, source: GeneratedSourceConfig
) -> list[Problem]:
    """A generated source must say what its stage made: its objective, answers to train on,
    and no translated copy of eval prompts in training."""
    generator, _, name = source.from_.partition("/")
    entry = getattr(params, GENERATORS[generator]).get(name)
    read = params.data.sources.get(entry.source) if entry is not None else None
    if not isinstance(read, (HubSourceConfig, FileSourceConfig)):
        return []  # reported at the translation or synthesis
    problems = []
    if source.objective != read.objective:
        problems.append(
            Problem(
                f"{where}.objective",
                f"{source.from_} makes {read.objective} records, from {entry.source!r}",
                source.objective,
            )
        )
    if generator == "translate" and source.use != "eval":
        answerless = read.prompts_only or not {"response", "chosen"} & set(entry.fields)
        if answerless:
            problems.append(
                Problem(
                    f"{where}.use",
                    f"{source.from_} translates no answer to train on; set `use: eval`",
                    source.use,
                )
            )
        if entry.split == "eval":
            problems.append(
                Problem(
                    f"{where}.use",
                    f"{source.from_} translates eval records, which no model may train on; "
                    "set `use: eval`",
                    source.use,
                )
            )
    return problems


def _cluster_problems(params: StudyConfig) -> list[Problem]:
    """Only the training stages spread over several nodes or GPUs, and only through accelerate:
    any other job asking for them would leave all but one idle. Checked for the defaults (which
    every stage not named under `stages` takes) and for each stage named."""
    problems = []
    launcher = params.train.runtime.launcher if params.train else "python"
    spread = " and ".join(paths.DISTRIBUTED_STAGES)
    # The defaults as a stage that names nothing of its own would take them.
    asking = {"defaults": ("a stage it applies to", params.cluster.resources(""))}
    asking |= {
        f"stages.{stage}": (stage, params.cluster.resources(stage))
        for stage in params.cluster.stages
    }
    for where, (stage, job) in asking.items():
        if job.nodes > 1 and stage not in paths.DISTRIBUTED_STAGES:
            problems.append(Problem(
                f"cluster.{where}.nodes",
                f"{stage} runs on one node; only {spread} spread over several (set nodes under "
                "cluster.stages.<stage>)",
                job.nodes,
            ))  # fmt: skip
        elif (job.nodes > 1 or job.gpus_per_node > 1) and launcher != "accelerate":
            problems.append(Problem(
                f"cluster.{where}",
                f"{stage} would use one GPU of the {job.nodes * job.gpus_per_node} it asks "
                "for: set train.runtime.launcher: accelerate (and an accelerate_config)",
            ))  # fmt: skip
    return problems


def _split_problems(params: StudyConfig) -> list[Problem]:
    """A translation or synthesis reads a split its source has."""
    problems = []
    for table, entries in (("translations", params.translations), ("syntheses", params.syntheses)):
        for name, entry in entries.items():
            read = params.data.sources.get(entry.source)
            split = getattr(entry, "split", "train")
            if isinstance(read, (HubSourceConfig, FileSourceConfig)) and read.use not in (
                split,
                "both",
            ):
                problems.append(
                    Problem(
                        f"{table}.{name}.source",
                        f"{entry.source!r} has no {split} split (its `use` is {read.use}; "
                        "`both` holds out eval prompts and keeps the rest for training)",
                        entry.source,
                    )
                )
    return problems
    return problems


def _table(raw: Mapping, key: str) -> Mapping:
    section = raw.get(key)
    return section if isinstance(section, Mapping) else {}


def _context(raw: Mapping) -> dict:
    """What cross-references are checked against, read leniently from the raw file. A check
    whose table is itself malformed is skipped: that table gets its own error."""
    languages = raw.get("languages")
    tables_ok = all(isinstance(raw.get(key, {}), Mapping) for key in paths.TABLES.values())
    tables_ok = tables_ok and isinstance(raw.get("searches", {}), Mapping)
    models = {paths.BASE} | {
        paths.ref(kind, name) for kind, key in paths.TABLES.items() for name in _table(raw, key)
    }
    models |= paths.chosen_refs([str(name) for name in _table(raw, "searches")])
    mixtures_ok = isinstance(raw.get("mixtures", {}), Mapping)
    sources = _table(_table(raw, "data"), "sources")
    return {
        "judged_sources": [
            str(name)
            for name, source in sources.items()
            if isinstance(source, Mapping)
            and source.get("kind") != "builtin"
            and source.get("use", _default_use(source.get("kind"))) != "train"
        ],
        "languages": [str(c) for c in languages] if isinstance(languages, list) else None,
        "mixtures": set(map(str, _table(raw, "mixtures"))) if mixtures_ok else None,
        "generated": {
            kind: set(map(str, _table(raw, table))) for kind, table in GENERATORS.items()
        },
        "models": models if tables_ok else None,
    }


def _default_use(kind: object) -> str:
    schema = GeneratedSourceConfig if kind == "generated" else TableSourceConfig
    return schema.model_fields["use"].default


def _dependencies(raw: Mapping) -> dict[str, list[tuple[str, str]]]:
    """Model -> the models it is built from, each with the key path that names it."""
    edges: dict[str, list[tuple[str, str]]] = {}
    for kind in ("sft", "dpo"):
        for name, run in _table(raw, kind).items():
            init = run.get("init", paths.BASE) if isinstance(run, Mapping) else None
            if isinstance(init, str):
                edges[paths.ref(kind, name)] = [(init, f"{kind}.{name}.init")]
    for name, merge in _table(raw, "merges").items():
        merge = merge if isinstance(merge, Mapping) else {}
        inputs = merge.get("models") if isinstance(merge.get("models"), list) else []
        edges[paths.ref("merge", name)] = [
            (m["model"], f"merges.{name}.models[{i}].model")
            for i, m in enumerate(inputs)
            if isinstance(m, Mapping) and isinstance(m.get("model"), str)
        ]
        if isinstance(merge.get("base"), str):
            edges[paths.ref("merge", name)].append((merge["base"], f"merges.{name}.base"))
    return edges


def _cycles(raw: Mapping) -> list[Problem]:
    """Models that (indirectly) start from or merge themselves."""
    edges = _dependencies(raw)
    problems, done = [], set()

    def visit(node: str, trail: list[str]) -> None:
        for target, path in edges.get(node, []):
            if target in trail:
                loop = " -> ".join(trail[trail.index(target) :] + [target])
                problems.append(Problem(path, f"models depend on each other: {loop}", target))
            elif target not in done:
                visit(target, trail + [target])
        done.add(node)

    for node in edges:
        if node not in done:
            visit(node, [node])
    return problems
