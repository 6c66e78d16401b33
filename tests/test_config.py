from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from mixmerge.config import ParamsError
from mixmerge.config.profiles import read_params
from mixmerge.validation import load_params, validate_params

REPO = Path(__file__).resolve().parents[1]


def problems_of(raw: dict) -> dict[str, str]:
    with pytest.raises(ParamsError) as caught:
        validate_params(raw)
    return {p.path: str(p) for p in caught.value.problems}


def test_default_params_and_every_profile_are_valid():
    for path in [REPO / "params.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        load_params(path)


def _set(raw: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        raw = raw.setdefault(key, {})
    raw[last] = value


BAD = [
    # (key path to set, bad value, the path the problem is reported at, a fragment of its message)
    ("data.sources.world.seed", "zero", "data.sources.world.seed", "valid integer"),
    ("mixtures.mix15.safety", True, "mixtures.mix15.safety", "valid number"),
    ("mixtures.mix15.safety", "0.5", "mixtures.mix15.safety", "valid number"),
    ("mixtures.mix15.safety", 1.5, "mixtures.mix15.safety", "less than or equal to 1"),
    ("mixtures.mix0.safety", -0.1, "mixtures.mix0.safety", "greater than or equal to 0"),
    ("mixtures.mix15.size_per_language", 0, "mixtures.mix15.size_per_language", "greater than 0"),
    ("data.sources.world.train.safety", -3, "data.sources.world.train.safety", "greater than"),
    ("mixtures.mix15.saftey", 0.2, "mixtures.mix15.saftey", "did you mean 'safety'"),
    ("mixturez", {}, "mixturez", "did you mean 'mixtures'"),
    ("languages", ["en", "enn"], "languages[1]", "did you mean 'en'"),
    ("mixtures.mono15_fr.languages", ["fr", "de"], "mixtures.mono15_fr.languages[1]", "not one of"),
    ("sft", {"a": {"mixture": "mix51"}}, "sft.a.mixture", "did you mean 'mix15'"),
    ("sft", {"a": {"mixture": "mix0", "init": "sft/b"}}, "sft.a.init", "unknown model"),
    (
        "merges",
        {"m": {"method": "ties", "models": [{"model": "sft/zz"}, {"model": "base"}]}},
        "merges.m.models[0].model",
        "unknown model",
    ),
    (
        "data.sources.world.kind",
        "bultin",
        "data.sources.world.kind",
        "unknown kind; did you mean 'builtin'",
    ),
    ("mixtures.mono15_fr.size_per_language", 10, "mixtures.mono15_fr", "would be 0.200"),
    ("mixtures.mix0.languages", ["en", "en"], "mixtures.mix0.languages", "more than once"),
    ("mixtures", {"../up": {"safety": 0, "size_per_language": 5}}, "mixtures.../up", "a name may"),
    ("data.sources.world.eval.safety", 500, "data.sources.world", "fewer prompts"),
    ("mixtures.mix0.size_total", 600, "mixtures.mix0", "exactly one of"),
    ("languages", ["en", "de"], "data.sources.world", "not de"),
    ("evaluation.judge", {"kind": "lmm"}, "evaluation.judge.kind", "did you mean 'llm'"),
    (
        "evaluation.judge",
        {"kind": "llm", "model": "gpt-4o"},
        "evaluation.judge.base_url",
        "required",
    ),
    ("evaluation.generation.backend", "vlm", "evaluation.generation.backend", "'hf' or 'vllm'"),
    ("evaluation.generation.top_p", 1.5, "evaluation.generation.top_p", "less than or equal"),
    ("evaluation.bootstrap.samples", 10, "evaluation.bootstrap.samples", "greater than or equal"),
    ("train.dpo.group_by_length", True, "train.dpo.group_by_length", "DPO cannot batch pairs"),
    ("train.dpo.judged_pairs", 0, "train.dpo.judged_pairs", "greater than 0"),
    (
        "evaluation.harm_classifier",
        {"style": "generative"},
        "evaluation.harm_classifier.model",
        "required",
    ),
    (
        "data.sources.xsafety",
        {
            "kind": "files",
            "files": ["x.csv"],
            "language": "en",
            "objective": "safety",
            "use": "eval",
            "columns": {"prompt": "prompt"},
        },
        "evaluation.judge",
        "the rule judge knows only the embedded world",
    ),
]


@pytest.mark.parametrize(("key", "value", "path", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_reported_at_its_key(raw, key, value, path, fragment):
    _set(raw, key, value)
    problems = problems_of(raw)
    assert path in problems, problems
    assert fragment in problems[path]


def test_a_problem_shows_the_bad_value(raw):
    _set(raw, "mixtures.mix15.safety", 1.5)
    _set(raw, "languages", ["en", "enn"])
    problems = problems_of(raw)
    assert problems["mixtures.mix15.safety"].endswith("(got 1.5)")
    assert problems["languages[1]"].endswith("(got 'enn')")


def test_every_problem_is_reported_at_once(raw):
    _set(raw, "data.sources.world.seed", "zero")
    _set(raw, "mixtures.mix15.safety", 2)
    _set(raw, "mixtures.mix0.saftey", 0.1)
    _set(raw, "languages", ["en", "fr", "es", "hi", "ar", "ru", "xx"])
    problems = problems_of(raw)
    expected = {"data.sources.world.seed", "mixtures.mix15.safety", "mixtures.mix0.saftey"}
    assert expected | {"languages[6]"} <= set(problems)


def test_runs_that_start_from_each_other_are_a_cycle(raw):
    raw["sft"] = {"a": {"mixture": "mix0", "init": "dpo/b"}}
    raw["dpo"] = {"b": {"mixture": "mix0", "init": "merge/m"}}
    raw["merges"] = {"m": {"method": "linear", "models": [{"model": "sft/a"}, {"model": "base"}]}}
    problems = problems_of(raw)
    loop = "depend on each other: sft/a -> dpo/b -> merge/m -> sft/a"
    assert loop in problems["merges.m.models[0].model"]


def test_a_run_can_start_from_a_merge(raw):
    raw["merges"]["obj"] = {
        "method": "linear",
        "stage": "sft",
        "models": [{"model": "sft/mix0"}, {"model": "sft/mix100"}],
    }
    raw["dpo"]["after_merge"] = {"mixture": "mix15", "init": "merge/obj"}
    params = validate_params(raw)
    assert params.dpo["after_merge"].init == "merge/obj"


def test_a_run_needs_its_initial_model_and_a_mixture_with_its_form(raw):
    broken = copy.deepcopy(raw)
    del broken["sft"]["mix0"]["init"]
    assert problems_of(broken)["sft.mix0.init"].endswith("required key is missing")
    raw["mixtures"]["mix100"]["forms"] = ["sft"]
    problems = problems_of(raw)
    assert any(
        "dpo.mix100 trains on mixture mix100, which has no preference set" in p
        for p in problems.values()
    )


def test_table_source_must_say_where_languages_come_from(raw):
    raw["data"]["sources"]["extra"] = {
        "kind": "files",
        "files": "x.jsonl",
        "objective": "safety",
        "columns": {"prompt": "p", "response": "r"},
    }
    problems = problems_of(raw)
    assert "exactly one of `language`" in problems["data.sources.extra"]


def test_a_fixed_language_excludes_a_language_list_and_value_map(raw):
    raw["data"]["sources"]["extra"] = {
        "kind": "files",
        "files": "x.jsonl",
        "objective": "safety",
        "use": "eval",
        "language": "en",
        "languages": ["fr"],
        "columns": {"prompt": "p"},
    }
    assert "no use when `language` is fixed" in problems_of(raw)["data.sources.extra"]
    del raw["data"]["sources"]["extra"]["languages"]
    raw["data"]["sources"]["extra"]["language_values"] = {"English": "en"}
    assert "`columns.language`, which is not set" in problems_of(raw)["data.sources.extra"]


def test_a_training_source_needs_something_to_train_on(raw):
    raw["data"]["sources"]["extra"] = {
        "kind": "hf",
        "dataset": "org/set",
        "objective": "general",
        "language": "en",
        "use": "train",
        "columns": {"prompt": "p"},
    }
    assert "columns.response" in problems_of(raw)["data.sources.extra"]


def test_a_missing_source_kind_or_key_names_what_is_missing(raw):
    del raw["data"]["sources"]["world"]["kind"]
    del raw["mixtures"]["mix15"]["safety"]
    problems = problems_of(raw)
    assert problems["data.sources.world.kind"].endswith(
        "required key is missing (one of builtin, hf, files, generated)"
    )
    assert problems["mixtures.mix15.safety"].endswith("required key is missing")


def test_unreadable_files_are_reported(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ParamsError, match="no such file"):
        load_params(missing)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("languages: [fr]  # français".encode("latin-1"))
    with pytest.raises(ParamsError, match="cannot read"):
        load_params(latin1)
    twice = tmp_path / "twice.yaml"
    twice.write_text("languages: [en]\nlanguages: [fr]\n")
    with pytest.raises(ParamsError, match="'languages' appears twice"):
        load_params(twice)
    broken = tmp_path / "broken.yaml"
    broken.write_text("languages: [en\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text(yaml.safe_dump(["en"]))
    with pytest.raises(ParamsError, match="mapping"):
        load_params(listed)


def test_a_renamed_key_is_refused_with_its_new_name(raw):
    raw["base"]["source"] = raw["base"].pop("kind")
    assert "renamed: write `kind: builtin`" in problems_of(raw)["base.source"]


def _merge(**spec) -> dict:
    pair = [{"model": "sft/mix0"}, {"model": "sft/mix100"}]
    return {"method": "ties", "stage": "sft", "base": "base", "models": pair} | spec


THREE = [{"model": m} for m in ("sft/mix0", "sft/mix15", "sft/mix100")]
RULED = [{"filter": "mlp", "value": [0.5, 0.0]}]  # a gradient ending at density 0
BAD_MERGES = [
    (_merge(method="tiez"), "merges.m.method", "did you mean 'ties'"),
    (_merge(base=None), "merges.m", "ties needs a `base`"),
    (_merge(method="linear"), "merges.m", "linear takes no `base`"),
    (_merge(method="slerp", base="sft/mix15", parameters={"t": 0.5}), "merges.m", "must be one"),
    (_merge(method="slerp", base="sft/mix0"), "merges.m", "slerp needs `parameters.t`"),
    (
        _merge(method="slerp", base="sft/mix0", parameters={"t": 0.5}, models=THREE),
        "merges.m",
        "slerp merges exactly 2 models, not 3",
    ),
    (_merge(parameters={"density": 1.5}), "merges.m", "every density must be in (0, 1]"),
    (_merge(parameters={"density": RULED}), "merges.m", "(0, 1]"),
    (_merge(method="linear", base=None, parameters={"weight": 0.0}), "merges.m", "sum to zero"),
    (_merge(parameters={"t": 0.3}), "merges.m", "ties takes no parameter `t`"),
    (_merge(stage="dpo"), "merges.m", "dpo-stage merge takes dpo/ models, not sft/mix0"),
    (_merge(base="sft/mix0", models=[{"model": "sft/mix0"}]), "merges.m", "list the base only"),
    (_merge(parameters={"densty": 0.5}), "merges.m", "`densty`; did you mean 'density'"),
    (_merge(parameters={"normalize": 1.0}), "merges.m", "`normalize` is true or false"),
    (_merge(parameters={"lambda": True}), "merges.m", "`lambda` is a number"),
    (_merge(models=[{"model": "sft/mix0", "lambda": 0.5}, {"model": "sft/mix100"}]), "merges.m",
     "ties takes `lambda` for the merge as a whole (in `parameters`), not for sft/mix0"),
    (_merge(method="sce", parameters={"select_topk": 0.0}), "merges.m",
     "every select_topk must be in (0, 1]"),
    (_merge(method="sce", parameters={"weight": 0.5}), "merges.m", "sce takes no parameter"),
    (_merge(method="breadcrumbs", parameters={"gamma": -0.1}), "merges.m",
     "every gamma must be in [0, 1]"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "path", "fragment"), BAD_MERGES, ids=[b[2][:30] for b in BAD_MERGES]
)
def test_a_merge_that_its_method_cannot_do_is_refused(raw, spec, path, fragment):
    raw["merges"] = {"m": spec}
    raw["dpo"].pop("sft_slerp")
    problems = problems_of(raw)
    assert path in problems, problems
    assert fragment in problems[path]


def test_every_default_merge_is_one_its_method_can_do(raw):
    merges = validate_params(raw).merges
    assert {m.method for m in merges.values()} >= {"linear", "slerp", "ties", "dare_ties"}


def test_a_generated_source_names_a_translation_or_synthesis_that_exists(raw):
    raw["translations"] = {
        "ultrafeedback": {
            "source": "world",
            "translator": {"kind": "mt", "model": "facebook/nllb-200-3.3B"},
        }
    }
    raw["data"]["sources"]["general"] = {"kind": "generated", "from": "translate/ultrafedback",
                                         "objective": "general"}  # fmt: skip
    problems = problems_of(raw)
    assert "did you mean 'ultrafeedback'" in problems["data.sources.general.from"]
    raw["data"]["sources"]["general"]["from"] = "translation/ultrafeedback"
    assert "did you mean 'translate'" in problems_of(raw)["data.sources.general.from"]
    # A translation reads hub and file sources, not the builtin world.
    raw["data"]["sources"]["general"]["from"] = "translate/ultrafeedback"
    assert "only hub and file sources" in problems_of(raw)["translations.ultrafeedback.source"]


def test_a_generated_source_says_what_its_stage_made(raw):
    raw["data"]["sources"]["english"] = {
        "kind": "files", "files": "en.jsonl", "language": "en", "objective": "general",
        "use": "both", "columns": {"prompt": "q", "response": "a"},
    }  # fmt: skip
    translator = {"kind": "mt", "model": "facebook/nllb-200-3.3B"}
    raw["translations"] = {
        "prompts": {"source": "english", "fields": ["prompt"], "translator": translator},
        "held_out": {"source": "english", "split": "eval", "translator": translator},
    }
    raw["data"]["sources"] |= {
        "a": {"kind": "generated", "from": "translate/prompts", "objective": "general"},
        "b": {"kind": "generated", "from": "translate/held_out", "objective": "general"},
        "c": {"kind": "generated", "from": "translate/held_out", "objective": "safety",
              "use": "eval"},
    }  # fmt: skip
    raw["evaluation"]["judge"] = {"kind": "llm", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    problems = problems_of(raw)
    assert "translates no answer to train on" in problems["data.sources.a.use"]
    assert "translates eval records, which no model may train on" in problems["data.sources.b.use"]
    assert "makes general records" in problems["data.sources.c.objective"]
    raw["data"]["sources"]["english"]["use"] = "train"
    assert "has no eval split" in problems_of(raw)["translations.held_out.source"]
    raw["translations"]["prompts"]["fields"] = ["response"]
    assert "list `prompt` among the fields" in problems_of(raw)["translations.prompts.fields"]


def test_a_dev_split_must_fit_in_what_the_world_has_left(raw):
    world = raw["data"]["sources"]["world"]
    # The default study leaves the world's last 14 harmful requests per language for dev.
    world["dev"] = {"general": 40, "safety": 15}
    message = problems_of(raw)["data.sources.world"]
    assert (
        "safety: dev 15 > 14 that can be scored and are left once eval, warm-up and train"
        in message
    )
    assert "general: dev" not in message
    world["dev"] = {"general": 40, "safety": 14}
    assert validate_params(raw).data.sources["world"].dev.general == 40


def test_a_stage_takes_its_own_cluster_resources_over_the_defaults(raw):
    raw["cluster"] = {
        "defaults": {"partition": "cpu", "memory": "8G", "setup": ["source .venv/bin/activate"]},
        "stages": {
            "sft": {"partition": "gpu", "gpus_per_node": 8, "nodes": 2, "sbatch": ["--qos=high"]},
        },
    }
    raw["train"]["runtime"].update(
        launcher="accelerate", accelerate_config="configs/accelerate/fsdp.yaml"
    )
    cluster = validate_params(raw).cluster
    sft = cluster.resources("sft@mix0")
    assert (sft.partition, sft.nodes, sft.gpus_per_node, sft.memory) == ("gpu", 2, 8, "8G")
    assert sft.setup == ("source .venv/bin/activate",) and sft.sbatch == ("--qos=high",)
    merge = cluster.resources("merge@sft_ties")
    assert (merge.partition, merge.nodes, merge.gpus_per_node, merge.cpus_per_task) == (
        "cpu", 1, 0, 1
    )  # fmt: skip


def test_one_job_running_several_stages_asks_for_the_most_of_each_for_their_time_together(raw):
    raw["cluster"] = {
        "defaults": {"partition": "cpu", "time": "30", "setup": ["module load python"]},
        "stages": {
            "merge": {"memory": "64G", "time": "1:30:00", "sbatch": ["--qos=high"]},
            "evaluate-merge": {"partition": "gpu", "gpus_per_node": 1, "memory": "32000"},
        },
    }
    job = validate_params(raw).cluster.covering(["merge@a", "evaluate-merge@a", "report"])
    assert (job.partition, job.gpus_per_node, job.cpus_per_task, job.memory) == (
        "gpu", 1, 1, "64G"
    )  # fmt: skip
    assert job.time == "0-02:30:00"  # 1:30:00 + 30 + 30 minutes
    assert job.sbatch == ("--qos=high",) and job.setup == ("module load python",)


def test_cluster_problems_are_reported_at_their_keys(raw):
    raw["cluster"] = {
        "defaults": {"memory": "8 GB", "time": "four hours", "sbatch": ["--output=x.log"]},
        "stages": {"evalute-merge": {}, "merge": {"nodes": 2}, "sft": {"gpus_per_node": 8}},
    }
    with pytest.raises(ParamsError) as error:
        validate_params(raw)
    report = str(error.value)
    assert "cluster.defaults.memory: memory is a whole number" in report
    assert "cluster.defaults.time: a SLURM time limit" in report
    assert "cluster.defaults.sbatch[0]: --output is set by `mixmerge run`" in report
    assert (
        "cluster.stages.evalute-merge: not a stage of dvc.yaml; did you mean 'evaluate-merge'"
        in report
    )
    raw["cluster"] = {"stages": {"merge": {"nodes": 2}, "sft": {"gpus_per_node": 8}}}
    with pytest.raises(ParamsError) as error:
        validate_params(raw)
    report = str(error.value)
    assert "cluster.stages.merge.nodes: merge runs on one node" in report
    assert "cluster.stages.sft: sft would use one GPU of the 8" in report
    raw["cluster"] = {"defaults": {"nodes": 2}}
    with pytest.raises(ParamsError, match=r"cluster.defaults.nodes: a stage it applies to runs"):
        validate_params(raw)


def test_a_cluster_stage_is_one_the_projects_dvc_yaml_declares(raw, tmp_path, monkeypatch):
    """The names come from dvc.yaml itself: a new stage needs no change to the library."""
    raw["cluster"] = {"stages": {"distil": {"memory": "8G"}}}
    monkeypatch.chdir(tmp_path)  # outside a project nothing says which stages there are
    assert "distil" in validate_params(raw).cluster.stages
    (tmp_path / "dvc.yaml").write_text("stages:\n  distil:\n    cmd: true\n")
    assert "distil" in validate_params(raw).cluster.stages
    (tmp_path / "dvc.yaml").write_text("stages:\n  distill:\n    cmd: true\n")
    with pytest.raises(ParamsError, match=r"cluster.stages.distil: not a stage of dvc.yaml; did"):
        validate_params(raw)


# --- profiles: overlays on another params file --------------------------------------------------


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_profile_is_the_file_it_extends_with_its_own_keys_laid_over(tmp_path):
    """Mappings merge key by key; lists and scalars replace; `_replace_` replaces a mapping
    whole, `_delete_` removes keys; a profile may extend a profile."""
    write_yaml(tmp_path / "params.yaml", {
        "seeds": [0, 1],
        "train": {"sft": {"learning_rate": 3e-4, "epochs": 2}, "runtime": {"device": "cpu"}},
        "merges": {"a": {"method": "linear"}, "b": {"method": "ties"}},
        "base": {"kind": "builtin", "vocab_size": 2048},
    })  # fmt: skip
    (tmp_path / "configs").mkdir()
    write_yaml(tmp_path / "configs" / "one.yaml", {
        "extends": "../params.yaml",
        "seeds": [0],
        "train": {"sft": {"epochs": 1}},
        "merges": {"_delete_": ["b"], "c": {"method": "slerp"}},
        "base": {"_replace_": True, "kind": "hf", "path": "some/model"},
    })  # fmt: skip
    write_yaml(tmp_path / "configs" / "two.yaml", {"extends": "one.yaml", "seeds": [7]})
    assert read_params(tmp_path / "configs" / "two.yaml") == {
        "seeds": [7],
        "train": {"sft": {"learning_rate": 3e-4, "epochs": 1}, "runtime": {"device": "cpu"}},
        "merges": {"a": {"method": "linear"}, "c": {"method": "slerp"}},
        "base": {"kind": "hf", "path": "some/model"},
    }  # fmt: skip


def test_what_a_profile_cannot_overlay_is_reported_with_its_key_path(tmp_path):
    write_yaml(tmp_path / "params.yaml", {"merges": {"sft_linear": {}}, "seeds": [0]})

    def problem(overlay: dict) -> str:
        with pytest.raises(ParamsError) as error:
            read_params(write_yaml(tmp_path / "profile.yaml", {"extends": "params.yaml"} | overlay))
        [found] = error.value.problems
        return str(found)

    assert problem({"merges": {"_delete_": ["sft_linaer"]}}).startswith(
        "merges._delete_: no key 'sft_linaer' to remove; did you mean 'sft_linear'?"
    )
    assert problem({"merges": {"_replace_": True, "_delete_": ["sft_linear"]}}).startswith(
        "merges._delete_: nothing to remove keys from"
    )
    assert problem({"seeds": {"_replace_": "yes"}}).startswith("seeds._replace_: true or false")
    assert problem({"extends": ["params.yaml"]}).startswith("extends: the params file")
    write_yaml(tmp_path / "loop.yaml", {"extends": "profile.yaml"})
    assert problem({"extends": "loop.yaml"}).startswith("extends: files extend each other")


def test_every_profile_extends_a_params_file_rather_than_copying_one():
    for profile in sorted((REPO / "configs").glob("*.yaml")):
        raw = yaml.safe_load(profile.read_text())
        assert "extends" in raw, profile.name
