"""Azure Monitor is set up once per process, and never by us when the Functions worker already does it."""

from __future__ import annotations

import pytest

from shared import telemetry


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    import azure.monitor.opentelemetry as distro

    made: list[dict] = []
    monkeypatch.setattr(distro, "configure_azure_monitor", lambda **kwargs: made.append(kwargs))
    monkeypatch.setattr(telemetry, "_configured", False)
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING",
                       "InstrumentationKey=00000000-0000-0000-0000-000000000000")
    monkeypatch.delenv("TELEMETRY_ENABLED", raising=False)
    return made


def test_the_worker_owned_set_up_is_never_repeated(calls: list[dict], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "true")
    assert telemetry.configure("function-app") and telemetry.configure("function-app")
    assert calls == []


def test_otherwise_it_is_set_up_exactly_once(calls: list[dict], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", raising=False)
    assert telemetry.configure("function-app") and telemetry.configure("function-app")
    assert len(calls) == 1 and calls[0]["connection_string"].startswith("InstrumentationKey=")


def test_switched_off_it_exports_nothing(calls: list[dict], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TELEMETRY_ENABLED", "false")
    assert not telemetry.configure("function-app")
    assert calls == []


def test_event_properties_named_like_log_record_fields_are_kept_under_another_name(caplog: pytest.LogCaptureFixture):
    """A data guardrail's ``message`` once made logging raise, failing the first ingest of every such file."""
    import logging

    from shared import telemetry

    with caplog.at_level(logging.INFO, logger="pipeline.events"):
        telemetry.event("DataGuardrail", message="imbalanced", module="m", levelname="x", check="class_balance")
    [record] = [r for r in caplog.records if getattr(r, "microsoft.custom_event.name", None) == "DataGuardrail"]
    assert record.event_message == "imbalanced" and record.event_module == "m"  # type: ignore[attr-defined]
    assert record.check == "class_balance"  # type: ignore[attr-defined]
    assert record.levelname == "INFO"


def test_counts_added_from_many_threads_are_all_kept():
    import sys
    import threading

    from shared.telemetry import _Tally

    tally = _Tally("test.concurrent.counter", "counts from many threads")
    key = (("model", "bank"),)

    def add_many() -> None:
        for _ in range(20_000):
            tally.add(1, key)

    threads = [threading.Thread(target=add_many) for _ in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, as a busy thread pool does: unguarded adds lose counts
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert tally.totals() == {key: 160_000}


def test_an_endpoint_that_does_not_answer_never_makes_a_flush_endless():
    """The exporter warns on every failed export; were its warnings exported too, each failure would queue one
    more record, and the flush at shutdown would go on for ever (the local host once hung so at Ctrl-C when its
    telemetry server had died). In a fresh process, as the host runs it; the timeout only catches a hang."""
    import subprocess
    import sys

    from devhost.azurite import free_port

    script = (
        "import logging\n"
        "from shared import telemetry\n"
        "assert telemetry.configure('test')\n"
        "logging.getLogger('app').warning('something to export')\n"
        "telemetry.flush()\n"
        "handler = next(h for h in logging.getLogger().handlers if type(h).__module__.startswith('opentelemetry'))\n"
        "exporter = logging.makeLogRecord({'name': 'azure.monitor.opentelemetry.exporter.export._base'})\n"
        "assert not handler.filter(exporter) and handler.filter(logging.makeLogRecord({'name': 'app'}))\n"
        "print('flushed')\n"
    )
    dead = f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:{free_port()}"
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": dead, "PYTHONPATH": ".", "PATH": "/usr/bin:/bin",
           "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", "HOME": "/tmp"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "flushed" in done.stdout, done.stderr[-2000:]
