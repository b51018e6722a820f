"""Counts on the command line are checked before anything runs, naming the option."""

from __future__ import annotations

import pytest

from cli.main import main


@pytest.mark.parametrize(("argv", "option"), [
    (["telemetry", "--limit", "0", "events"], "--limit"),
    (["telemetry", "--limit", "-5", "events"], "--limit"),
    (["run", "--model", "bank", "--budget", "ten"], "--budget"),
])
def test_a_count_below_one_or_not_a_number_is_refused_by_name(argv: list[str], option: str,
                                                             capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert f"argument {option}:" in capsys.readouterr().err
