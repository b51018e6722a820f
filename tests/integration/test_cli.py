"""The CLI as a user runs it beside `make up`: a separate process, its key from --key, FUNCTIONS_KEY or the keys
file, against the real host (and, where a host cannot be made to fail, a port where none answers or a server
that answers 503)."""

from __future__ import annotations

import contextlib
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import sample_data
from devhost import azurite
from devhost.process import ROOT, wait_for
from tests.integration.ml_stack import Stack, running_stack

pytestmark = pytest.mark.integration
HOST_KEY = "the-key-make-up-was-given"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack as `FUNCTIONS_KEY=... make up` starts it."""
    with running_stack(tmp_path_factory.mktemp("cli"), FUNCTIONS_KEY=HOST_KEY) as running:
        yield running


def cli(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m cli ...` from another shell: no FUNCTIONS_KEY unless given, the host's state folder and URL."""
    base = {k: v for k, v in os.environ.items() if k != "FUNCTIONS_KEY"}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**base, "DEVHOST_STATE_DIR": str(stack.host.state_dir),
                                            "DEVHOST_URL": stack.host.url, "AzureWebJobsStorage": stack.host.storage,
                                            **env})


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """What a failed command said: exit status 1, one line on stderr, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr.strip()


def test_a_cli_in_another_shell_reads_the_key_the_host_accepts_from_the_keys_file(stack: Stack):
    shown = cli(stack, "status")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Uploads (newest first):")


@pytest.mark.parametrize(("command", "env", "source"), [
    (["status", "--key", "wrong-key"], {}, "--key"),
    (["status"], {"FUNCTIONS_KEY": "stale-key"}, "FUNCTIONS_KEY"),
    (["follow", "train-1", "--key", "wrong-key"], {}, "--key"),
    (["run", "--model", "bank"], {"FUNCTIONS_KEY": "stale-key"}, "FUNCTIONS_KEY"),
], ids=["status", "status-env", "follow", "run"])
def test_a_refused_key_ends_the_command_in_one_line_naming_the_url_the_status_and_the_key_source(
        stack: Stack, command: list[str], env: dict[str, str], source: str):
    said = one_line(cli(stack, *command, **env))
    method, path = ("POST", "/api/pipelines/automl-training/runs") if command[0] == "run" else \
        ("GET", "/api/runs/train-1" if command[0] == "follow" else "/api/status")
    assert said == f"{method} {stack.host.url}{path} -> 401 Unauthorized: the host refused the function key from " \
                   f"{source}"
    assert "wrong-key" not in said and "stale-key" not in said  # the key itself is never shown


def test_an_upload_with_a_refused_key_leaves_nothing_behind(stack: Stack, tmp_path: Path):
    data = tmp_path / "refused.csv"
    data.write_bytes(sample_data.to_csv(sample_data.rows(60)))
    said = one_line(cli(stack, "upload", str(data), "--model", "refused", FUNCTIONS_KEY="stale-key"))
    assert said.endswith("-> 401 Unauthorized: the host refused the function key from FUNCTIONS_KEY")
    assert not stack.container.get_blob_client("refused/refused.csv").exists()


def test_no_host_a_missing_run_and_a_failing_host_each_end_in_one_line(stack: Stack):
    nowhere = f"http://127.0.0.1:{azurite.free_port()}"
    assert one_line(cli(stack, "status", "--url", nowhere)) == (
        f"GET {nowhere}/api/status: the host does not answer (is it running? `make up`, or pass --url)")
    assert one_line(cli(stack, "follow", "train-0000")) == (
        f"GET {stack.host.url}/api/runs/train-0000 -> 404 Not Found: no run 'train-0000'")
    with answering(503) as busy:
        assert one_line(cli(stack, "status", "--url", busy, "--key", "k")) == (
            f"GET {busy}/api/status -> 503 Service Unavailable: the host is restarting")


@contextlib.contextmanager
def answering(status: int) -> Iterator[str]:
    """A server on a free port whose every answer is ``status``: a host failing as no real one can be made to."""

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"error": "the host is restarting"}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


HOSTILE = "c\x1b]0;owned\x07\x1b[31m"  # sets the terminal's title, then turns its text red


def test_control_characters_from_an_upload_reach_the_terminal_escaped(stack: Stack):
    """A column named with escape sequences, in a reason, a guardrail and a telemetry event."""
    rows = [{**row, HOSTILE: 1} for row in sample_data.rows(120, seed=4)]  # a constant column: a guardrail
    trained = stack.upload("ansi/cols.csv", sample_data.to_csv(rows))
    refused = stack.upload("ansi/excluded.csv", sample_data.to_csv(rows), {"exclude": "%1B%5B2J"})  # an ESC too
    wait_for(lambda: all((stack.upload_record(u) or {}).get("details", {}).get(key)
                         for u, key in ((trained, "guardrails"), (refused, "code"))), what="both ingested")
    shown = cli(stack, "status")
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "WARNING: Column(s) with a single value carry no information: c\\x1b]0;owned\\x07\\x1b[31m." in shown.stdout
    assert "\\x1b[2J" in shown.stdout  # the excluded column named in the reason
    wait_for(lambda: "DataGuardrail" in cli(stack, "telemetry", "events", "--limit", "200",
                                            "--store", str(stack.host.state_dir / "telemetry.db")).stdout,
             timeout=30, interval=0.5, what="the guardrail event in the telemetry store")
    events = cli(stack, "telemetry", "events", "--limit", "200", "--store", str(stack.host.state_dir / "telemetry.db"))
    assert events.returncode == 0 and "\x1b" not in events.stdout and "\x07" not in events.stdout
    assert "c\\x1b]0;owned\\x07" in events.stdout


def test_a_duplicate_upload_follows_the_run_that_trains_its_data(stack: Stack, tmp_path: Path):
    content = sample_data.to_csv(sample_data.rows(600, seed=31))
    original = stack.upload("dup/first.csv", content)
    wait_for(lambda: (stack.upload_record(original) or {}).get("state") in ("training", "promoted"),
             what="the first upload training")
    copy = tmp_path / "copy.csv"
    copy.write_bytes(content)
    followed = cli(stack, "upload", str(copy), "--model", "dup", "--key", HOST_KEY)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert "==> Upload duplicate: same content as dataset dup v1" in followed.stdout
    assert f"==> Following the upload that trains it: {original}" in followed.stdout
    assert "==> Decision: promoted (model dup v1)" in followed.stdout  # reported as for the upload it follows


def test_a_time_series_uploaded_from_the_cli_is_followed_to_its_forecast_of_the_next_periods(stack: Stack,
                                                                                           tmp_path: Path):
    data = tmp_path / "sales.csv"
    data.write_bytes(sample_data.to_csv(sample_data.monthly_sales(72)))
    result = cli(stack, "upload", str(data), "--model", "sales", "--target", "units", "--time-column", "month",
                 "--horizon", "6", "--key", HOST_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "'time_column': 'month', 'horizon': '6'" in out  # the metadata it sent
    assert "Task: forecasting (set by the upload's metadata 'time_column')" in out and "Frequency: monthly" in out
    assert "(kept as a forecaster)" in out
    assert "==> Decision: promoted (model sales v1)" in out
    assert "with the next 6 period(s) -> 200" in out
    forecast = out.split("-> 200\n")[1].splitlines()[:6]
    assert [line.split()[0] for line in forecast] == [f"2021-{m:02d}-01" for m in range(1, 7)]
    assert all(100 < float(line.split()[1]) < 500 for line in forecast)  # units around 200 plus the trend


def test_a_horizon_that_is_not_a_whole_number_is_refused_before_anything_is_sent(stack: Stack, tmp_path: Path):
    data = tmp_path / "sales.csv"
    data.write_bytes(sample_data.to_csv(sample_data.monthly_sales(72)))
    result = cli(stack, "upload", str(data), "--model", "sales", "--time-column", "month", "--horizon", "0")
    assert result.returncode == 2 and "not a whole number of at least 1" in result.stderr
