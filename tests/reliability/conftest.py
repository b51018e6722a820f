from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import Node


@pytest.fixture()
def node(tmp_path: Path) -> Iterator[Node]:
    """A stack that a test may kill and restart; everything it started is stopped afterwards."""
    running = Node(tmp_path)
    try:
        yield running
    finally:
        running.close()
