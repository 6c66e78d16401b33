"""Running a training stage under `accelerate launch` (DDP, FSDP, DeepSpeed) when params say so.

The stage command re-executes itself under the launcher with the same arguments; the launched
processes see `MIXMERGE_LAUNCHED` and train instead of launching again. Inside a SLURM job of
several nodes, `srun` starts one launcher per node, each told its machine rank (the node's) and
the first node as the rendezvous, so that one `dvc repro` of the stage trains across all of them.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping

from mixmerge.config.training import RuntimeConfig
from mixmerge.core.errors import StageError

LAUNCHED = "MIXMERGE_LAUNCHED"


def relaunch(runtime: RuntimeConfig, arguments: list[str]) -> bool:
    """Run `mixmerge <arguments>` under accelerate if params ask for it and this process was
    not launched by it; return whether it did."""
    if runtime.launcher != "accelerate" or os.environ.get(LAUNCHED):
        return False
    command = launch_command(str(runtime.accelerate_config), arguments, os.environ)
    finished = subprocess.run(command, env={**os.environ, LAUNCHED: "1"})
    if finished.returncode:
        raise StageError(f"the launched training failed (exit code {finished.returncode})")
    return True


def launch_command(config: str, arguments: list[str], environ: Mapping[str, str]) -> list[str]:
    """The command that trains `mixmerge <arguments>` under accelerate with `config`: on this
    machine, or across every node of the SLURM job this runs in."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", config]
    stage = ["-m", "mixmerge.stages", *arguments]
    nodes = int(environ.get("SLURM_JOB_NUM_NODES") or environ.get("SLURM_NNODES") or 1)
    if nodes <= 1:
        return [*launch, *stage]
    gpus = _gpus_per_node(environ)
    # Jobs sharing a node must not share a rendezvous port.
    port = 29500 + int(environ.get("SLURM_JOB_ID", "0")) % 10000
    across = [
        "--num_machines", str(nodes),
        "--num_processes", str(nodes * gpus),
        "--main_process_ip", _first_node(environ["SLURM_JOB_NODELIST"]),
        "--main_process_port", str(port),
        "--same_network",
    ]  # fmt: skip
    # srun's tasks share this command; each reads its node's rank from its own environment.
    per_node = f'{shlex.join([*launch, *across])} --machine_rank "$SLURM_NODEID" '
    per_node += shlex.join(stage)
    return [
        "srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
        "bash", "-c", per_node,
    ]  # fmt: skip


def _gpus_per_node(environ: Mapping[str, str]) -> int:
    # SLURM writes "8" or "h100:8" for --gpus-per-node.
    given = environ.get("SLURM_GPUS_PER_NODE") or environ.get("SLURM_GPUS_ON_NODE") or ""
    count = given.rsplit(":", 1)[-1]
    if count.isdigit() and int(count) > 0:
        return int(count)
    import torch

    return max(1, torch.cuda.device_count())


def _first_node(nodelist: str) -> str:
    """The first host of a SLURM node list (`gpu[03-05,09]` is gpu03), by SLURM's reading."""
    listed = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
    )
    return listed.stdout.split()[0]
