from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml
from mixmerge.stages import cli
from mixmerge.stages.cli import app
from typer.testing import CliRunner

from mixmerge.config.profiles import resolved_text
from tests.conftest import REPO, copy_repository, run_in

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands)
# The commands that read params: every stage's, `validate` and `run`.
READ_PARAMS = [n for n, f in cli.COMMANDS.items() if "params" in inspect.signature(f).parameters]


def test_every_stage_of_the_pipeline_runs_a_command_its_module_declares():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name, stage in stages.items():
        cmd = stage.get("do", stage)["cmd"]
        for line in [cmd] if isinstance(cmd, str) else cmd:
            program, command, *_ = line.split()
            assert program == "mixmerge" and command in cli.COMMANDS, name
            assert cli.COMMANDS[command].__module__ != "mixmerge.stages.tools", name


def test_a_new_stage_module_is_a_command_without_touching_the_cli(tmp_path):
    (tmp_path / "extra.py").write_text(
        "def command() -> None:\n"
        '    """An extra stage."""\n'
        "    print('ran')\n\n\n"
        'COMMANDS = {"extra": command}\n'
    )
    script = (
        "import sys\n"
        "from mixmerge import stages\n"
        f"stages.__path__.append({str(tmp_path)!r})\n"
        "from mixmerge.stages import cli\n"
        "print(list(cli.COMMANDS)[-1])\n"
        "cli.app(['extra'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.split() == ["extra", "ran"], result.stderr


@pytest.mark.parametrize("command", READ_PARAMS)
def test_help_works_and_documents_the_params_option(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--params" in result.output
    assert len(result.output.strip().splitlines()) > 5


def test_warm_explains_itself_and_needs_a_command():
    result = runner.invoke(app, ["warm", "--help"])
    assert result.exit_code == 0 and "warm worker" in result.output
    result = runner.invoke(app, ["warm"])
    assert result.exit_code == 2 and "mixmerge warm -- dvc repro" in result.output


def test_top_level_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_validate_names_every_bad_key_exits_2_and_writes_nothing(
    tmp_path, monkeypatch, small_raw, write_params
):
    small_raw["mixtures"]["mix15"]["safety"] = 1.5
    small_raw["mixtures"]["mix100"]["sise_per_language"] = 3
    small_raw["languages"].append("zz")
    path = write_params(small_raw, "bad.yaml")
    monkeypatch.chdir(tmp_path)
    for command in (["validate"], ["prepare"], ["mix", "mix15"]):
        result = runner.invoke(app, [*command, "--params", str(path)])
        assert result.exit_code == 2, result.output
        for key in ("mixtures.mix15.safety", "mixtures.mix100.sise_per_language", "languages[3]"):
            assert key in result.output
        assert "did you mean 'size_per_language'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_stages_run_from_a_profile_and_an_unknown_mixture_gets_a_suggestion(
    tmp_path, monkeypatch, small_raw, write_params
):
    path = write_params(small_raw, "profile.yaml")
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["validate", "-p", str(path)]).exit_code == 0
    result = runner.invoke(app, ["prepare", "--params", str(path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "prepared" / "train" / "hi" / "safety.jsonl").exists()
    result = runner.invoke(app, ["mix", "mix15", "--params", str(path)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "reports/mixtures/mix15.json").read_text())
    assert manifest["realised"]["safety_share"] == 0.15
    result = runner.invoke(app, ["mix", "mix51", "--params", str(path)])
    assert result.exit_code == 2
    assert "did you mean 'mix15'" in result.output


def test_a_data_problem_is_a_message_not_a_traceback(
    tmp_path, monkeypatch, small_raw, write_params
):
    small_raw["mixtures"]["mix100"]["size_per_language"] = 500
    path = write_params(small_raw)
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["prepare", "-p", str(path)]).exit_code == 0
    result = runner.invoke(app, ["mix", "mix100", "-p", str(path)])
    assert result.exit_code == 1
    assert "500 safety in en (there are 60)" in result.output
    assert "Traceback" not in result.output


def test_the_installed_console_script_exits_2_on_bad_params(tmp_path, small_raw, write_params):
    small_raw["mixtures"]["mix15"]["safety"] = "lots"
    path = write_params(small_raw)
    script = Path(sys.executable).with_name("mixmerge")
    result = subprocess.run(
        [str(script), "validate", "--params", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "mixtures.mix15.safety" in result.stderr and result.stdout == ""


def test_evaluate_names_models_as_params_do(tmp_path, monkeypatch, small_raw, write_params):
    small_raw["evaluation"] = {}
    path = write_params(small_raw)
    monkeypatch.chdir(tmp_path)
    for model, message in (
        ("sft/mix51", "no sft run 'mix51'"),
        ("merge/x", "no merge 'x'"),
        ("lora/mix15", "is not base, sft/RUN, dpo/RUN or merge/MERGE"),
    ):
        result = runner.invoke(app, ["evaluate", model, "-p", str(path)])
        assert result.exit_code == 2 and message in result.output, result.output
    # Nothing close: every candidate, however many.
    small_raw["mixtures"] = {
        f"m{i:02d}": {"safety": 0.5, "size_per_language": 4} for i in range(16)
    }
    path = write_params(small_raw, "many.yaml")
    result = runner.invoke(app, ["mix", "zzz", "-p", str(path)])
    assert result.exit_code == 2 and "m00, m01" in result.output and "m15" in result.output


def test_validate_opens_the_data_files_and_reports_every_problem_with_them(
    tmp_path, small_raw, write_params
):
    wide = tmp_path / "jailbreaks.csv"
    wide.write_text("\ufeffprompt_en,prompt_fr\nHow do I pick a lock?,Comment ?\n", "utf-8")
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"question": "Why is the sky blue?"}) + "\n", "utf-8")
    entries = {
        "jailbreaks": {"files": str(wide), "columns": {"prompt": "prompt_{lang}"}},
        "questions": {"files": str(questions), "language": "en", "columns": {"prompt": "q"}},
        "missing": {"files": str(tmp_path / "absent.jsonl"), "language": "en"},
    }
    for name, entry in entries.items():
        small_raw["data"]["sources"][name] = {
            "kind": "files", "objective": "safety", "use": "eval", "columns": {"prompt": "p"},
        } | entry  # fmt: skip
    result = runner.invoke(app, ["validate", "-p", str(write_params(small_raw))])
    assert result.exit_code == 2
    assert "3 problems in its data files" in result.output
    assert "data.sources.jailbreaks.columns.prompt: no column for hi in" in result.output
    assert "data.sources.questions.columns.prompt: no column 'q'" in result.output
    assert "data.sources.missing: no file matches" in result.output
    small_raw["data"]["sources"]["jailbreaks"]["languages"] = ["en", "fr"]
    small_raw["data"]["sources"]["questions"]["columns"] = {"prompt": "question"}
    del small_raw["data"]["sources"]["missing"]
    result = runner.invoke(app, ["validate", "-p", str(write_params(small_raw))])
    assert result.exit_code == 0, result.output


def test_run_names_an_unknown_executor_and_refuses_a_detached_local_run(tmp_path):
    unknown = runner.invoke(app, ["run", "--executor", "slurn"])
    assert unknown.exit_code == 2
    assert "no executor 'slurn'; did you mean 'slurm'?" in unknown.output
    detached = runner.invoke(app, ["run", "--detach"])
    assert detached.exit_code == 2 and "--detach needs --executor slurm" in detached.output


@pytest.mark.slow
def test_a_profile_runs_through_dvc_in_its_own_workspace_leaving_params_yaml_alone(tmp_path):
    repo = copy_repository(tmp_path / "study")
    before = {name: (repo / name).read_bytes() for name in ("params.yaml", "dvc.lock")}
    profile = Path("configs/smoke.yaml")
    (repo / "stages" / "mix.py").write_text(  # an uncommitted change: the run takes it
        (repo / "stages" / "mix.py").read_text() + "# changed, not committed\n"
    )
    run_in(["mixmerge", "run", "--profile", str(profile), "mix@mix15"], repo)
    workspace = repo / ".profiles" / "smoke"
    assert {name: (repo / name).read_bytes() for name in before} == before
    assert not (repo / "data" / "prepared").exists()
    assert (workspace / "params.yaml").read_text() == resolved_text(repo / profile)
    assert "# changed, not committed" in (workspace / "stages" / "mix.py").read_text()
    manifest = json.loads((workspace / "reports/mixtures/mix15.json").read_text())
    assert manifest["realised"]["examples"] == 40 * 6  # the profile's size, not params.yaml's
    assert json.loads(run_in(["dvc", "status", "--json", "mix@mix15"], workspace)) == {}
    assert run_in(["git", "status", "--porcelain"], repo).strip() == "M stages/mix.py"
    # Run again: the workspace follows the code, and nothing is left to run.
    again = run_in(["mixmerge", "run", "--profile", str(profile), "mix@mix15"], repo)
    assert "nothing to run" in again
