"""A stage stops when what runs it stops, even by SIGKILL.

DVC runs a stage's command as a child (through a shell) and, when DVC itself is killed, nothing
tells that child: it goes on and writes its outputs after DVC, or a scheduler that cancelled or
requeued the job, called the stage failed. A stage therefore watches the DVC process that runs
it and ends itself when that process ends. DVC marks the environment of every stage command
with `DVC_STAGE`, so the runner is the nearest ancestor whose environment lacks it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable

STAGE_ENV = "DVC_STAGE"
# Set by `mixmerge run --executor local` for the stages it starts: they end with it too.
DRIVER_ENV = "MIXMERGE_RUN_DRIVER"


def stage_runner() -> int | None:
    """The pid of the DVC process running this stage, or None outside a DVC stage (or where
    processes' environments cannot be read)."""
    if not os.environ.get(STAGE_ENV):
        return None
    import psutil  # DVC's own dependency

    try:
        for ancestor in psutil.Process().parents():
            if STAGE_ENV not in ancestor.environ():
                return ancestor.pid
    except (psutil.Error, OSError):
        return None
    return None


def when_ended(pid: int, action: Callable[[], None]) -> None:
    """Call `action` in a daemon thread once process `pid` has ended."""

    def wait() -> None:
        try:
            handle = os.pidfd_open(pid)
        except ProcessLookupError:
            action()
            return
        except (AttributeError, OSError):  # no pidfd (old kernel, not Linux): look each second
            while _alive(pid):
                time.sleep(1)
            action()
            return
        select.select([handle], [], [])  # readable once the process has ended
        action()

    threading.Thread(target=wait, daemon=True, name=f"lifeline-{pid}").start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to signal
        pass
    return True


def end_with_runner() -> None:
    """In a stage's process: SIGKILL this process when the DVC process running it ends, or
    the `mixmerge run` that started that DVC process."""
    runner = stage_runner()
    if runner is None:
        return
    driver = os.environ.get(DRIVER_ENV, "")
    for pid in (runner, *([int(driver)] if driver.isdigit() else [])):
        when_ended(pid, lambda: os.kill(os.getpid(), signal.SIGKILL))


def end_group_when_closed(connection) -> None:
    """In a process leading its own group: SIGKILL the group (this process and whatever it
    started) once the peer of `connection` (a socket) has closed it, as the kernel does when
    the peer is killed."""

    def wait() -> None:
        with contextlib.suppress(OSError):
            while connection.recv(1 << 10):
                pass
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=wait, daemon=True, name="lifeline-peer").start()
