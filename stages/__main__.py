"""The `mixmerge` command (and `python -m mixmerge.stages`).

Under `mixmerge warm`, the command goes to the warm worker before the CLI and its libraries are
imported: on a study of many small stages each call then costs milliseconds, not a second.
"""

import sys


def main() -> None:
    from mixmerge.lifeline import end_with_runner
    from mixmerge.warm import delegate

    end_with_runner()  # a stage DVC runs stops with DVC, even when DVC is killed

    # a warm worker, when one serves this run, calls the CLI in a fork of itself
    code = delegate(sys.argv[1:], entry="mixmerge.stages.cli:run_in_worker")
    if code is not None:
        raise SystemExit(code)
    from mixmerge.stages.cli import main as run_here

    run_here()


if __name__ == "__main__":
    main()
