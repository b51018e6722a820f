"""Which storage `cli upload` drops into: the one the running stack reads."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.uploads import local_storage
from devhost import azurite


@pytest.fixture()
def listening() -> Iterator[int]:
    """A port that answers, as a running emulator's would."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    yield server.getsockname()[1]
    server.close()


def emulator_at(port: int) -> str:
    return azurite.connection_string("127.0.0.1", port, port + 1, port + 2)


def test_the_setting_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listening: int):
    monkeypatch.setenv("AzureWebJobsStorage", emulator_at(listening))
    assert local_storage(tmp_path) == emulator_at(listening)


def test_else_the_emulator_the_host_started_on_other_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           listening: int):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setattr("devhost.config.load_local_settings", lambda path: None)
    (tmp_path / "storage.json").write_text(json.dumps({"connection": emulator_at(listening)}))
    assert local_storage(tmp_path) == emulator_at(listening)


def test_a_recorded_emulator_that_is_gone_is_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setattr("devhost.config.load_local_settings", lambda path: None)
    gone = azurite.free_port()
    (tmp_path / "storage.json").write_text(json.dumps({"connection": emulator_at(gone)}))
    if azurite.port_open("127.0.0.1", azurite.DEFAULT_PORTS[0]):
        assert local_storage(tmp_path) == azurite.expand("UseDevelopmentStorage=true")
    else:
        with pytest.raises(SystemExit, match="no storage answers"):
            local_storage(tmp_path)
