"""Running a training stage under `accelerate launch` (DDP, FSDP, DeepSpeed) when params say so.

The stage command re-executes itself under the launcher with the same arguments; the launched
processes see `MIXMERGE_LAUNCHED` and train instead of launching again.
"""

from __future__ import annotations

import os
import subprocess
import sys

from mixmerge.config.training import RuntimeConfig
from mixmerge.core.errors import StageError

LAUNCHED = "MIXMERGE_LAUNCHED"


def relaunch(runtime: RuntimeConfig, arguments: list[str]) -> bool:
    """Run `mixmerge <arguments>` under accelerate if params ask for it and this process was
    not launched by it; return whether it did."""
    if runtime.launcher != "accelerate" or os.environ.get(LAUNCHED):
        return False
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(runtime.accelerate_config),
        "-m", "stages", *arguments,
    ]  # fmt: skip
    finished = subprocess.run(command, env={**os.environ, LAUNCHED: "1"})
    if finished.returncode:
        raise StageError(f"the launched training failed (exit code {finished.returncode})")
    return True
