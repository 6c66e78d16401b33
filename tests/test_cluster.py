"""`mixmerge run`: the study's stages at once, side by side here or as jobs of a real
single-node SLURM cluster (`make test` starts one with tests/cluster/start-slurm.sh)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mixmerge.training import checkpoints
from tests.conftest import run_in, smoke_copy, training_project
from tests.test_pipeline import stages_run

pytestmark = pytest.mark.slow


def _slurm_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "no SLURM here: tests/cluster/start-slurm.sh starts one (as root, on Debian)"
    answer = subprocess.run(["sinfo", "--noheader"], capture_output=True, text=True)
    if answer.returncode != 0:
        return f"SLURM does not answer: {answer.stderr.strip()}"
    return None


needs_slurm = pytest.mark.skipif(_slurm_problem() is not None, reason=str(_slurm_problem()))


def mixmerge(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [str(bin_dir / "mixmerge"), *args], cwd=root, env=env, capture_output=True, text=True
    )
    if check:
        assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


def outputs(lock: dict) -> dict[tuple[str, str], str]:
    """Every output's hash in a dvc.lock, but the training reports' (they hold runtimes)."""
    return {
        (stage, out["path"]): out.get("md5")
        for stage, entry in lock["stages"].items()
        for out in entry.get("outs", [])
        if not out["path"].startswith("reports/train/")
    }


# Two SFT runs and their evaluations with everything they need: every kind of stage before the
# merges, side by side where the DAG allows. The whole smoke study through SLURM takes 330 s
# here, more than this module's share of the test budget (its runs and merges add nothing to
# what SLURM orders).
SLICE = ["evaluate-sft@mix0", "evaluate-sft@mix15"]


def test_the_smoke_study_on_slurm_leaves_the_lock_a_serial_repro_leaves(smoke_study, tmp_path):
    if _slurm_problem():
        pytest.skip(_slurm_problem())
    root = smoke_copy(tmp_path)
    start = time.perf_counter()
    run = mixmerge(root, "run", "--executor", "slurm", *SLICE)
    seconds = time.perf_counter() - start
    assert "9 stages to run, as SLURM jobs" in run.stdout, run.stdout
    assert re.search(r"^\[[ 0-9:]+\] pending +sft@mix0 +job \d+ +Dependency", run.stdout, re.M)
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    serial = {
        key: md5 for key, md5 in outputs(smoke_study.lock).items() if key[0] in lock["stages"]
    }
    assert len(lock["stages"]) == 9 and outputs(lock) == serial
    assert "up to date" in run_in(["dvc", "status", *SLICE], root)
    print(f"SLURM: {seconds:.0f} s for {len(lock['stages'])} stages")


# --- faults, on a DVC project of small shell stages ------------------------------------------

STAGES = {
    "first": {"cmd": "echo first > first.txt", "outs": ["first.txt"]},
    "broken": {"cmd": "false", "deps": ["first.txt"], "outs": ["broken.txt"]},
    "after": {"cmd": "cp broken.txt after.txt", "deps": ["broken.txt"], "outs": ["after.txt"]},
    "aside": {
        "cmd": "sleep 2 && echo aside > aside.txt",
        "deps": ["first.txt"],
        "outs": ["aside.txt"],
    },
}


def project(folder: Path, stages: dict, small_raw: dict) -> Path:
    """A git and DVC repository of shell stages, with a valid params file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (folder / "params.yaml").write_text(yaml.safe_dump(small_raw, sort_keys=False))
    (folder / ".gitignore").write_text("logs/\n")
    run_in(["git", "init", "-q"], folder)
    run_in(["dvc", "init", "-q"], folder)
    run_in(["git", "add", "-A"], folder)
    run_in(["git", "commit", "-qm", "project"], folder)
    return folder


def our_jobs(root: Path) -> list[str]:
    listed = subprocess.run(
        ["squeue", "--me", "--noheader", "--format=%i|%Z"], capture_output=True, text=True
    ).stdout.split()
    return [line.split("|")[0] for line in listed if Path(line.split("|")[1]) == root]


@pytest.mark.parametrize(
    "executor", ["local", pytest.param("slurm", marks=needs_slurm)]
)  # fmt: skip
def test_a_failed_stage_cancels_what_needs_it_and_a_rerun_runs_only_what_is_missing(
    tmp_path, small_raw, executor
):
    root = project(tmp_path / "project", STAGES, small_raw)
    run = mixmerge(root, "run", "--executor", executor, check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "failed: broken (log: logs/broken.log)" in run.stdout
    last = {
        stage: state for state, stage in re.findall(r"^\[[ 0-9:]+\] (\w+) +(\S+)", run.stdout, re.M)
    }
    assert last == {"first": "done", "broken": "failed", "after": "cancelled", "aside": "done"}
    assert (root / "aside.txt").exists() and not (root / "after.txt").exists()
    if executor == "slurm":  # cancelled by SLURM, not left pending on a dependency forever
        assert our_jobs(root.resolve()) == []

    stages = {**STAGES, "broken": {**STAGES["broken"], "cmd": "echo fixed > broken.txt"}}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    rerun = mixmerge(root, "run", "--executor", executor)
    assert "2 stages to run" in rerun.stdout, rerun.stdout
    assert "2 stages in" in rerun.stdout and "2 done" in rerun.stdout
    assert (root / "after.txt").read_text() == "fixed\n"
    assert "up to date" in run_in(["dvc", "status"], root)


SLOW = {
    "slow": {
        "cmd": "echo ran >> slow.count && sleep 6 && echo slow > slow.txt",
        "outs": ["slow.txt"],
    },
    "next": {
        "cmd": "echo ran >> next.count && cp slow.txt next.txt",
        "deps": ["slow.txt"],
        "outs": ["next.txt"],
    },
}


def _start(root: Path, *args: str) -> subprocess.Popen:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen(
        [str(bin_dir / "mixmerge"), "run", *args], cwd=root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _wait_running(root: Path, stage: str) -> None:
    deadline = time.monotonic() + 60
    while not (root / "logs" / f"{stage}.state.json").exists():
        assert time.monotonic() < deadline, f"{stage} never started"
        time.sleep(0.1)


@needs_slurm
def test_a_killed_driver_leaves_its_jobs_running_and_a_rerun_attaches_to_them(tmp_path, small_raw):
    root = project(tmp_path / "project", SLOW, small_raw).resolve()
    driver = _start(root, "--executor", "slurm")
    _wait_running(root, "slow")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    submitted = json.loads((root / "logs" / "jobs.json").read_text())
    assert sorted(our_jobs(root)) == sorted(submitted.values())  # the jobs go on
    status = mixmerge(root, "run", "--status", check=False)
    assert status.returncode == 1 and "2 jobs: " in status.stdout  # not done yet
    assert re.search(r"^running +slow +job \d+", status.stdout, re.M), status.stdout

    rerun = mixmerge(root, "run", "--executor", "slurm")
    assert json.loads((root / "logs" / "jobs.json").read_text()) == submitted  # none twice
    assert "2 stages in" in rerun.stdout and "2 done" in rerun.stdout, rerun.stdout
    assert (root / "slow.count").read_text() == "ran\n"
    assert (root / "next.count").read_text() == "ran\n"
    assert "up to date" in run_in(["dvc", "status"], root)


@needs_slurm
def test_a_detached_run_is_cancelled_by_name_and_its_status_says_so(tmp_path, small_raw):
    root = project(tmp_path / "project", SLOW, small_raw).resolve()
    detached = mixmerge(root, "run", "--executor", "slurm", "--detach")
    assert "submitted; `mixmerge run --status` reports on the jobs" in detached.stdout
    assert len(our_jobs(root)) == 2
    cancelled = mixmerge(root, "run", "--cancel")
    assert "cancelled 2 jobs: next, slow" in cancelled.stdout
    deadline = time.monotonic() + 30
    while our_jobs(root):  # the running one is signalled, then gone
        assert time.monotonic() < deadline
        time.sleep(0.2)
    status = mixmerge(root, "run", "--status", check=False)
    assert status.returncode == 1 and "2 jobs: 2 cancelled" in status.stdout, status.stdout


def test_a_second_run_in_the_same_workspace_refuses_while_the_first_runs(tmp_path, small_raw):
    root = project(tmp_path / "project", SLOW, small_raw)
    first = _start(root)
    _wait_running(root, "slow")
    second = mixmerge(root, "run", check=False)
    assert second.returncode == 1
    assert "another `mixmerge run` is running in this workspace" in second.stderr
    assert first.wait(120) == 0, first.stdout.read()
    assert (root / "slow.count").read_text() == "ran\n"
    assert "up to date" in run_in(["dvc", "status"], root)


def test_a_lock_record_torn_by_a_killed_job_is_mended_before_the_next_job(tmp_path, small_raw):
    root = project(tmp_path / "project", SLOW, small_raw)
    torn = root / ".dvc" / "tmp" / "rwlock"
    torn.parent.mkdir(parents=True, exist_ok=True)
    torn.write_text('{"write": {"/study/slow.txt": {"pid": 4')  # DVC killed mid-rewrite
    dvc = str(Path(sys.executable).parent / "dvc")
    refused = subprocess.run([dvc, "status"], cwd=root, capture_output=True, text=True)
    assert "JSON structure is corrupted" in refused.stderr  # what DVC alone leaves
    run = mixmerge(root, "run")
    assert "2 stages in" in run.stdout and "2 done" in run.stdout, run.stdout
    assert "was torn" in (root / "logs" / "slow.log").read_text()
    assert "up to date" in run_in(["dvc", "status"], root)


def _running_in(root: Path) -> list:
    import psutil

    found = []
    for process in psutil.process_iter(["cwd"]):
        if process.info["cwd"] and Path(process.info["cwd"]) == root:
            found.append(process)
    return found


def _holding_stage_files(root: Path) -> list[int]:
    """The processes DVC's record says read or write stage files that still exist, zombies
    too: DVC takes a zombie for a live holder, and a job starting then would be refused."""
    import psutil

    record = json.loads((root / ".dvc" / "tmp" / "rwlock").read_text() or "{}")
    holders = [
        holder
        for by_path in record.values()
        for infos in by_path.values()
        for holder in (infos if isinstance(infos, list) else [infos])
    ]
    return [pid for pid in {int(h["pid"]) for h in holders} if psutil.pid_exists(pid)]


def _job_state(job: str) -> str:
    return subprocess.run(
        ["squeue", "--noheader", "--jobs", job, "--format=%T"], capture_output=True, text=True
    ).stdout.strip()


@needs_slurm
def test_a_training_job_requeued_mid_run_resumes_from_its_checkpoint(study):
    root = training_project(study, epochs=20).resolve()
    mixmerge(root, "run", "--executor", "slurm", "--detach")
    [job] = json.loads((root / "logs" / "jobs.json").read_text()).values()
    # A complete checkpoint, as the trainer will look for one: a folder that exists may still be
    # being written, and a requeue then would leave nothing to resume from.
    deadline = time.monotonic() + 180
    while checkpoints.newest(root / "checkpoints" / "sft" / "mix15" / "seed-0") is None:
        assert time.monotonic() < deadline, (root / "logs" / "sft.log").read_text()
        time.sleep(0.2)
    subprocess.run(["scontrol", "requeue", job], check=True)
    # SLURM holds a requeued job for two minutes (its BeginTime); a preempted job waits for its
    # turn likewise. Neither is what this test is about: let it start again now.
    # Once it is queued again and its first attempt's processes are gone, reaped too (SLURM's
    # hold gives them the time; a DVC still alive would hold the stage's outputs).
    deadline = time.monotonic() + 60
    while _job_state(job) != "PENDING" or _running_in(root) or _holding_stage_files(root):
        assert time.monotonic() < deadline, _job_state(job)
        time.sleep(0.2)
    # (Where SLURM has already let it start, the update is refused, and nothing is lost.)
    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], capture_output=True)

    attached = mixmerge(root, "run", "--executor", "slurm", check=False)  # waits for the job
    log = (root / "logs" / "sft.log").read_text()
    said = "\n".join(line for line in log.splitlines() if "{'loss'" not in line)
    assert attached.returncode == 0 and "1 done" in attached.stdout, attached.stdout + said[-3000:]
    assert "1 stage to run" in attached.stdout
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
    assert "Restarts=1" in shown.stdout  # the job ran again, after the requeue...
    assert "resuming from" in log  # ...from its checkpoint
    assert (root / "models" / "sft" / "mix15" / "seed-0" / "model.safetensors").exists()
    assert "up to date" in run_in(["dvc", "status"], root)


@pytest.mark.skipif(shutil.which("scontrol") is None, reason="no SLURM commands here")
def test_a_training_job_of_several_nodes_launches_one_accelerate_per_node():
    from mixmerge.training.launch import launch_command

    job = {
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_JOB_NODELIST": "gpu[03-04]",
        "SLURM_GPUS_PER_NODE": "h100:8",
        "SLURM_JOB_ID": "1234",
    }
    command = launch_command("configs/accelerate/fsdp.yaml", ["sft", "mix0"], job)
    assert command[:4] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    per_node = command[-1]
    for expected in ("--num_machines 2", "--num_processes 16", "--main_process_ip gpu03",
                     "--main_process_port 30734", '--machine_rank "$SLURM_NODEID"'):  # fmt: skip
        assert expected in per_node
    assert per_node.endswith("-m mixmerge.stages sft mix0")
    # Each node's task reads its own rank: what the shell of node 1 runs.
    shown = subprocess.run(
        ["bash", "-c", per_node.replace(sys.executable, "echo", 1)],
        env={**os.environ, "SLURM_NODEID": "1"}, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "--machine_rank 1 -m mixmerge.stages sft mix0" in shown
    one_node = launch_command("configs/accelerate/ddp.yaml", ["dpo", "mix0"], {})
    assert one_node[1:4] == ["-m", "accelerate.commands.launch", "--config_file"]


def test_a_sweep_of_a_merge_weight_runs_only_that_merge_its_evaluation_and_the_report(
    smoke_study,
):
    """Queued through DVC, and as `--temp` experiments through `mixmerge run -S`, at once."""
    root = smoke_study.root  # up to date; an experiment starts from its last commit
    run_in(["git", "add", "-A"], root)
    run_in(["git", "commit", "-qm", "the smoke study, run"], root)
    swept = ["merge@sft_linear", "evaluate-merge@sft_linear", "report"]  # in the order they run
    setting = "merges.sft_linear.models.1.weight"
    # Weights no other test sets: the run cache is shared, and would restore the merges.
    for index, weight in enumerate((0.2, 0.8), start=1):
        queue = ["dvc", "exp", "run", "--queue", "--name", f"queued-{index}"]
        run_in([*queue, "-S", f"{setting}={weight}"], root)
    run_in(["dvc", "queue", "start", "-j", "2"], root)
    run = mixmerge(root, "run", "-S", f"{setting}=0.3,0.7", "--jobs", "2")
    assert "2 experiments to run, 2 at once" in run.stdout, run.stdout
    assert f"each runs {', '.join(swept)}" in run.stdout, run.stdout
    assert re.search(r"^2 experiments in .*: 2 done$", run.stdout, re.M), run.stdout
    for name in ("weight-0.3", "weight-0.7"):
        assert stages_run((root / f"logs/exp-{name}.log").read_text()) == set(swept)
    deadline = time.monotonic() + 600
    while re.search(r"\b(Queued|Running)\b", run_in(["dvc", "queue", "status"], root)):
        assert time.monotonic() < deadline, run_in(["dvc", "queue", "status"], root)
        time.sleep(2)
    finished = re.findall(
        r"^(\S+)\s+\S+\s+.*\bSuccess\b", run_in(["dvc", "queue", "status"], root), re.M
    )
    assert len(finished) == 2, run_in(["dvc", "queue", "status"], root)
    for name in finished:
        assert stages_run(run_in(["dvc", "queue", "logs", name], root)) == set(swept)
    dvc = str(Path(sys.executable).parent / "dvc")
    shown = subprocess.run(
        [dvc, "exp", "show", "--json"], cwd=root, capture_output=True, text=True, check=True
    )
    merges = {
        run["name"]: run["data"]["params"]["params.yaml"]["data"]["merges"]
        for baseline in json.loads(shown.stdout)
        for experiment in baseline.get("experiments") or []
        for run in experiment["revs"]
    }
    for name, weight in (("weight-0.3", 0.3), ("weight-0.7", 0.7)):
        assert merges[name]["sft_linear"]["models"][1]["weight"] == weight
    again = mixmerge(root, "run", "-S", f"{setting}=0.3,0.7")  # they exist: nothing runs
    assert "Every experiment of the sweep exists." in again.stdout, again.stdout
    other = mixmerge(root, "run", "-S", f"{setting}=0.8,0.2", "--name", "queued", check=False)
    assert other.returncode == 1, other.stdout  # queued-1 set 0.2, not 0.8: not taken for it
    assert "the experiment queued-1 exists on this commit and does not set" in other.stderr


def test_the_simulated_schedule_runs_steps_at_once_where_gpus_allow_and_never_before_needs():
    from mixmerge.cluster.plan import Step
    from mixmerge.cluster.simulate import Cost, critical_path, simulate

    steps = [
        Step("prepare", ()),
        Step("sft@a", ("prepare",)),
        Step("sft@b", ("prepare",)),
        Step("merge", ("sft@a", "sft@b")),
        Step("evaluate@a", ("sft@a",)),
        Step("evaluate@b", ("sft@b",)),
        Step("report", ("merge", "evaluate@a", "evaluate@b")),
    ]
    costs = {
        "prepare": Cost(1),
        "sft@a": Cost(10, gpus_per_node=8),
        "sft@b": Cost(6, gpus_per_node=8),
        "merge": Cost(2),
        "evaluate@a": Cost(3, gpus_per_node=1),
        "evaluate@b": Cost(3, gpus_per_node=1),
        "report": Cost(1),
    }
    assert critical_path(steps, costs) == (15, ["prepare", "sft@a", "evaluate@a", "report"])
    one = simulate(steps, costs, nodes=1, gpus_per_node=8)
    # The longer run first; the other waits for the node, its evaluation shares it with none.
    assert one.starts["sft@a"] == 1 and one.starts["sft@b"] == 11 and one.seconds == 21
    two = simulate(steps, costs, nodes=2, gpus_per_node=8)
    assert two.starts["sft@b"] == 1 and two.seconds == 15  # the critical path: nothing shorter
    for schedule in (one, two):
        for step in steps:
            for need in step.needs:
                assert schedule.starts[step.name] >= schedule.starts[need] + costs[need].seconds


def test_the_paper_profile_simulates_from_its_dvc_graph():
    done = subprocess.run(
        [sys.executable, "benchmarks/cluster_plan.py", "--nodes", "1", "16"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    stages = int(re.search(r": (\d+) stages", done.stdout).group(1))
    assert stages > 50  # every run, merge, search and evaluation of the paper's study
    assert re.search(r"critical path: .*\(\S+ -> .* -> report\)", done.stdout)
    one, sixteen = map(float, re.findall(r"GPUs: +([\d.]+) h", done.stdout))
    assert sixteen <= one


def test_on_a_network_file_system_dvc_gets_hardlink_locks_and_a_link_cache(
    tmp_path, small_raw, monkeypatch
):
    from mixmerge.cluster import sharedfs

    root = project(tmp_path / "project", STAGES, small_raw)
    assert sharedfs.filesystem_of(root) not in sharedfs.NETWORK  # a local disk: nothing set
    assert sharedfs.check_shared_filesystem(root) == []
    # What /proc/mounts would say of a workspace on NFS; the rest is DVC's own config.
    monkeypatch.setattr(sharedfs, "filesystem_of", lambda path: "nfs4")
    said = sharedfs.check_shared_filesystem(root)
    assert len(said) == 2
    assert run_in(["dvc", "config", "core.hardlink_lock"], root).strip().lower() == "true"
    assert run_in(["dvc", "config", "cache.type"], root).strip() == "hardlink,symlink"
    assert "hardlink_lock" in (root / ".dvc" / "config.local").read_text()
    assert sharedfs.check_shared_filesystem(root) == []  # set once; a user's choice is kept
