"""The architecture the tree promises: a `mixmerge` library that never reaches into `stages`, no
import cycles, stages that do not import each other, `dvc.yaml` agreeing with
`mixmerge.paths`, and a schema split by params section that DVC re-runs by section."""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from mixmerge import paths
from mixmerge.config.profiles import read_params
from tests.conftest import REPO, copy_repository, run_in, smoke_copy

PACKAGES = ("mixmerge", "stages")
# Not stages: the command around them (`cli`, `__main__`), what their commands share
# (`commands`) and the commands that are not stages (`tools`).
COMMAND = {f"mixmerge.stages{m}" for m in ("", ".cli", ".__main__", ".commands", ".tools")}


STAGES = "mixmerge.stages"  # the package the folder stages/ installs as


def module_name(file: Path) -> str:
    parts = file.relative_to(REPO).with_suffix("").parts
    if parts[0] == "stages":
        parts = (*STAGES.split("."), *parts[1:])
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_stage(module: str) -> bool:
    return module == STAGES or module.startswith(STAGES + ".")


def imports_of(file: Path) -> set[str]:
    """The project modules `file` imports, at its top or inside functions."""
    name = module_name(file)
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            found.add(base)
            # `from mixmerge import paths` imports the module mixmerge.paths
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def project_graph() -> dict[str, set[str]]:
    files = [f for package in PACKAGES for f in (REPO / package).rglob("*.py")]
    modules = {module_name(f): f for f in files}
    return {name: imports_of(file) & set(modules) - {name} for name, file in modules.items()}


def test_the_library_never_imports_the_stages():
    offenders = {
        module: sorted(m for m in imported if is_stage(m) or m.split(".")[0] == "stages")
        for module, imported in project_graph().items()
        if not is_stage(module)
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_importing_every_library_module_loads_no_stage():
    names = [
        info.name
        for info in pkgutil.walk_packages([str(REPO / "mixmerge")], prefix="mixmerge.")
        if info.name != "mixmerge.generation.vllm" or _has("vllm")
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('stages', 'mixmerge.stages'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert len(names) > 50
    assert result.stdout.strip() == "[]"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_no_module_imports_itself_through_others():
    graph = project_graph()
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target) :] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # a package's __init__ importing its own submodules is not a cycle of two modules
    cycles = [c for c in cycles if not all(m.startswith(c[0] + ".") for m in c[1:-1])]
    assert cycles == []


def test_no_stage_imports_another():
    graph = project_graph()
    stage_modules = {m for m in graph if is_stage(m)} - COMMAND
    assert {f"{STAGES}.{m}" for m in ("prepare", "mix", "merge", "report")} <= stage_modules
    crossing = {m: sorted(graph[m] & stage_modules) for m in stage_modules}
    assert {m: others for m, others in crossing.items() if others} == {}


def test_the_config_package_only_re_exports_so_stages_need_not_depend_on_it():
    # dvc.yaml lists mixmerge/config/common.py and study.py, not the package's __init__.py
    tree = ast.parse((REPO / "mixmerge" / "config" / "__init__.py").read_text())
    kinds = {type(node).__name__ for node in tree.body[1:]}  # after the docstring
    assert kinds <= {"ImportFrom", "Assign"}
    assert all(
        node.module in ("mixmerge.config.common", "mixmerge.config.study")
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
    )


# --- dvc.yaml against mixmerge.paths -----------------------------------------------------------


@pytest.fixture(scope="module")
def dvc_stages():
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        return {
            stage.addressing: (
                [out.def_path for out in stage.outs],
                [dep.def_path for dep in stage.deps],
            )
            for stage in repo.index.stages
        }


def command_module(body: dict) -> str:
    """The module whose command a stage of dvc.yaml runs (`body`: the stage, or its `do`)."""
    from mixmerge.stages import cli

    cmd = body["cmd"] if isinstance(body["cmd"], str) else body["cmd"][0]
    return cli.COMMANDS[cmd.split()[1]].__module__


def stage_module(stage: str):
    """The module of a stage by its address (`evaluate-sft@x`: mixmerge.stages.evaluate)."""
    import importlib

    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage.partition("@")[0]]
    return importlib.import_module(command_module(spec.get("do", spec)))


def test_every_stage_writes_what_its_module_says(dvc_stages):
    assert len(dvc_stages) > 20
    for name, (outs, _) in dvc_stages.items():
        assert sorted(outs) == sorted(map(str, stage_module(name).outputs(name))), name


def test_every_data_dependency_is_what_some_stage_writes(dvc_stages):
    written = [Path(out) for outs, _ in dvc_stages.values() for out in outs]
    code = ("stages/", "mixmerge/", "configs/", "params.yaml")
    for name, (_, deps) in dvc_stages.items():
        for dep in map(Path, (d for d in deps if not d.startswith(code))):
            # The folder translate@ and synthesize@ write in: empty but for its README when the
            # params have neither (as the default study has), and read by prepare alone.
            if dep == paths.GENERATED and name == "prepare":
                continue
            # The links to the files params name, which the stage of that name reads.
            if dep == paths.INPUTS / name:
                continue
            # inside an output (data/prepared/train), or a folder of outputs (models/sft)
            assert any(dep == out or out in dep.parents or dep in out.parents for out in written), (
                f"{name} depends on {dep}, which no stage writes"
            )


def test_every_profile_has_every_table_dvc_fans_out_over():
    """DVC cannot parse dvc.yaml against a params file that lacks a `foreach` table."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    tables = {s["foreach"].strip("${}") for s in spec.values() if "foreach" in s}
    assert {"translations", "syntheses", "mixtures", "sft", "dpo", "merges"} <= tables
    for profile in [REPO / "params.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        raw = read_params(profile)
        assert all(isinstance(raw.get(table), dict) for table in tables), profile.name


def test_runs_depend_on_the_folders_the_paths_module_gives_their_inputs(dvc_stages):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for kind in ("sft", "dpo"):
        for name, run in params[kind].items():
            deps = dvc_stages[f"{kind}@{name}"][1]
            init = paths.parse(run["init"])
            assert str(paths.MODELS / str(init)) in deps
            assert str(paths.mixture(run["mixture"])) in deps
    for name, merge in params["merges"].items():
        deps = dvc_stages[f"merge@{name}"][1]
        assert str(paths.MODELS / merge["stage"]) in deps


# --- each stage's code deps are the code it runs ---------------------------------------------
# A stage runs its command's module and what that imports, at the top or inside functions, and
# the schema of each params section it reads (its `params` in dvc.yaml: `merges.${key}` reads
# `merges`), which the loader applies. The rest of the params loader (stages/commands.py,
# mixmerge/validation.py with the checks it gathers, the config package past the files it
# reads params with) is no stage's: it only accepts or refuses params.
PARAMS_LOADER = {
    "mixmerge.stages.commands",
    "mixmerge.validation",
    "mixmerge.config",
    "mixmerge.config.study",
}
PARAMS_FILES = {"mixmerge/config/common.py", "mixmerge/config/study.py"}


def schema_of(section: str) -> set[str]:
    """The config modules that define params section `section` (its types, all the way down)."""
    from pydantic import BaseModel

    from mixmerge.config import StudyConfig

    found, todo = set(), [StudyConfig.model_fields[section].annotation]
    while todo:
        kind = todo.pop()
        todo += typing.get_args(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            module = kind.__module__
            if module.startswith("mixmerge.config") and module not in found:
                found.add(module)
                todo += [field.annotation for field in kind.model_fields.values()]
    return found


def code_of(stage_module: str, sections: set[str]) -> set[str]:
    """The files of the project code `stage_module` runs, reading params `sections`."""
    graph = project_graph()
    seen = set()
    todo = [stage_module, *(m for section in sections for m in schema_of(section))]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += [] if module in PARAMS_LOADER else graph[module]
    files = {
        str(path.relative_to(REPO)): module_name(path)
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
    }
    code = {f for f, m in files.items() if m in seen - PARAMS_LOADER} | PARAMS_FILES
    return {f for f in code if not trivial(f)}


def stage_code() -> dict[str, set[str]]:
    """Per stage of dvc.yaml (a foreach's group), the code it runs."""
    found = {}
    for group, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        sections = {key.split(".")[0] for key in body.get("params", []) if isinstance(key, str)}
        found[group] = code_of(command_module(body), sections)
    return found


def trivial(file: str) -> bool:
    """A package's `__init__.py` with nothing but a docstring: no code to change outputs."""
    body = ast.parse((REPO / file).read_text(encoding="utf-8")).body
    kept = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in kept)


def listed(deps: list[str]) -> set[str]:
    """The Python files that a stage's deps name, one by one or by their folder."""
    found = set()
    for dep in deps:
        if dep.endswith(".py"):
            found.add(dep)
        elif dep.startswith(PACKAGES):
            found |= {str(p.relative_to(REPO)) for p in (REPO / dep).rglob("*.py")}
    return {f for f in found if not trivial(f)}


def test_every_stage_depends_on_exactly_the_code_it_runs(dvc_stages):
    """A change to code a stage runs re-runs it; a change to any other code does not. Where
    this fails, the message gives the files to add or take out of its deps in dvc.yaml."""
    code_by_group = stage_code()
    wrong = {}
    for name, (_, deps) in dvc_stages.items():
        code = code_by_group[name.split("@")[0]]
        have = listed(deps)
        missing, extra = sorted(code - have), sorted(have - code)
        if missing or extra:
            wrong[name.split("@")[0]] = {"add": missing, "take out": extra}
    assert wrong == {}


def test_a_model_reference_names_its_folder_and_the_stage_that_makes_it():
    assert paths.parse("base") == ("base", "")
    assert paths.parse("sft/mix15").stage == "sft@mix15"
    assert paths.parse("merge/ties").producer == "`dvc repro merge@ties`"
    assert paths.folder("dpo/mix0", 3) == Path("models/dpo/mix0/seed-3")
    assert paths.folder("base", 7) == Path("models/base/seed-7")
    for bad in ("sft", "sft/", "lora/x", "sft/a/b", ""):
        with pytest.raises(ValueError, match="is not base"):
            paths.parse(bad)


# --- a schema change re-runs the stages that read its section, and no others --------------------


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    return copy_repository(tmp_path_factory.mktemp("layout"))


def stages_seeing_a_change(repo: Path, touched: str) -> set[str]:
    """The stages `dvc status` says depend on `touched`, after a comment is appended to it."""
    with (repo / touched).open("a", encoding="utf-8") as file:
        file.write("# touched by a test\n")
    try:
        status = json.loads(run_in(["dvc", "status", "--json"], repo))
    finally:
        run_in(["git", "checkout", "--", touched], repo)
    around = {touched, *(str(folder) for folder in Path(touched).parents)}  # or its folder's
    return {
        stage
        for stage, changes in status.items()
        for change in changes
        if isinstance(change, dict)
        and any(change.get("changed deps", {}).get(dep) == "modified" for dep in around)
    }


@pytest.mark.slow
def test_touching_the_report_schema_reruns_only_the_report(repo_copy):
    assert stages_seeing_a_change(repo_copy, "mixmerge/config/report.py") == {"report"}


@pytest.mark.slow
def test_touching_the_merge_schema_reruns_the_merges_and_what_reads_them(repo_copy):
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    assert params["searches"]  # which merge, and merge their chosen points
    assert stages_seeing_a_change(repo_copy, "mixmerge/config/merges.py") == {
        f"merge@{name}" for name in params["merges"]
    } | {f"search@{name}" for name in params["searches"]} | {"report"}


@pytest.mark.slow
def test_touching_the_training_schema_spares_data_merges_and_evaluation(repo_copy):
    changed = stages_seeing_a_change(repo_copy, "mixmerge/config/training.py")
    assert changed and all(s == "base" or s.startswith(("sft@", "dpo@")) for s in changed)


@pytest.mark.slow
def test_touching_a_data_reader_reruns_the_data_stages_and_spares_what_reads_prepared_data(
    repo_copy,
):
    # What reads the prepared splits (mixtures, merges' probes, evaluation) runs no source's
    # reader: their new data, when a reader makes other records, re-runs them through prepare.
    changed = stages_seeing_a_change(repo_copy, "mixmerge/data/sources/table.py")
    assert "prepare" in changed
    assert all(s.startswith(("prepare", "translate@", "synthesize@")) for s in changed)
    assert stages_seeing_a_change(repo_copy, "mixmerge/data/prepared.py") >= {"prepare", "report"}


# --- files that params name are deps of the stages that read them ------------------------------

SMOLLM2 = REPO / "downloads" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def stages_whose_inputs_changed(repo: Path) -> set[str]:
    status = json.loads(run_in(["dvc", "status", "--json"], repo))
    return {
        stage
        for stage, changes in status.items()
        for change in changes
        if isinstance(change, dict)
        and any(dep.startswith(f"{paths.INPUTS}/") for dep in change.get("changed deps", {}))
    }


@pytest.mark.slow
@pytest.mark.skipif(not SMOLLM2.is_file(), reason="`make smollm2` fetches the real model")
def test_a_file_params_name_changed_in_place_reruns_the_stage_that_reads_it(tmp_path):
    from mixmerge.core.io import write_jsonl

    repo = smoke_copy(tmp_path / "repo")
    rows = [{"q": f"Question number {i}?", "a": f"Answer {i}."} for i in range(30)]
    write_jsonl(repo / "extra" / "qa-1.jsonl", rows)  # in the repository: a relative link
    gguf = Path(shutil.copy(SMOLLM2, tmp_path / "base.gguf"))  # outside: an absolute one
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["sources"]["qa"] = {
        "kind": "files", "files": "extra/qa-*.jsonl", "objective": "general", "use": "train",
        "language": "en",
        "columns": {"prompt": "q", "response": "a"},
    }  # fmt: skip
    params["base"] = {"kind": "gguf", "path": str(gguf), "dtype": "bfloat16"}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_in(["dvc", "repro", "base"], repo)

    linked = repo / paths.INPUTS / "prepare" / "extra" / "qa-1.jsonl"
    assert os.readlink(linked) == "../../../extra/qa-1.jsonl"
    assert os.readlink(repo / paths.INPUTS / "base" / "outside" / gguf.relative_to("/")) == str(
        gguf
    )
    assert stages_whose_inputs_changed(repo) == set()

    # Edited in place: the stage that reads it, and no other.
    write_jsonl(repo / "extra" / "qa-1.jsonl", rows[:-1])
    assert stages_whose_inputs_changed(repo) == {"prepare"}
    # Replaced in place (another file moved over it).
    changed = tmp_path / "changed.gguf"
    changed.write_bytes(gguf.read_bytes()[:-1] + b"\1")
    os.replace(changed, gguf)
    assert stages_whose_inputs_changed(repo) == {"prepare", "base"}

    # A file that newly matches a source's glob is linked by `mixmerge run`, and read.
    write_jsonl(repo / "extra" / "qa-2.jsonl", [{"q": "A new question?", "a": "Its answer."}])
    run_in(["mixmerge", "run", "prepare"], repo)
    assert (repo / paths.INPUTS / "prepare" / "extra" / "qa-2.jsonl").is_symlink()
    assert stages_whose_inputs_changed(repo) == {"base"}
    report = json.loads((repo / paths.PREPARE_REPORT).read_text())
    assert report["sources"]["qa"]["rows"] == 29 + 1
