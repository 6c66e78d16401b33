"""The `mixmerge` command (and `python -m stages`).

Under `mixmerge warm`, the command goes to the warm worker before the CLI and its libraries are
imported: on a study of many small stages each call then costs milliseconds, not a second.
"""

import sys


def main() -> None:
    from stages.warm import delegate

    code = delegate(sys.argv[1:])  # a warm worker, when one serves this run
    if code is not None:
        raise SystemExit(code)
    from stages.cli import main as run_here

    run_here()


if __name__ == "__main__":
    main()
