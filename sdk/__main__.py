"""``python -m jobwire``: the same command line as the ``jobwire`` script."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the jobwire command line and return its exit status."""
    from jobwire.cli import run

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
