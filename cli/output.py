"""Everything the CLI writes to a terminal goes through here, with control characters escaped.

Column names, blob names, reasons and telemetry properties come from uploads: an escape sequence in one would
retitle or recolour the terminal, a carriage return would overwrite what was printed. Each line the CLI means
to print is one argument; whatever it carries is shown, never acted on.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from shared.printable import printable


def echo(*lines: object) -> None:
    """Print each of ``lines`` as one line."""
    for line in lines:
        print(printable(line), flush=True)


def echo_text(text: str) -> None:
    """Print a document (a JSON dump, a file's text) line by line."""
    echo(*text.splitlines())


def redraw(line: str, width: int = 100) -> None:
    """Write over the current line (a progress bar)."""
    sys.stdout.write("\r" + printable(line).ljust(width))
    sys.stdout.flush()


def fail(message: str) -> NoReturn:
    """End the command with ``message`` on stderr and exit status 1."""
    raise SystemExit(printable(message))
