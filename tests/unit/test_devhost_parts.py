from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from devhost.config import HostConfig, load_local_settings
from devhost.discovery import blob_path_parts, discover, load_app, route_variants
from devhost.host import SWITCH_INTERVAL_SETTING, parse_args
from devhost.keys import load_or_create


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("score", ["score"]),
        ("models/{name}/score", ["models/{name}/score"]),
        ("runs/{id:int}", ["runs/{id:int}"]),
        ("models/{name}/versions/{version?}", ["models/{name}/versions/{version}", "models/{name}/versions"]),
        ("files/{*rest}", ["files/{rest:path}"]),
        ("items/{id:guid}", ["items/{id:uuid}"]),
        ("x/{name:alpha}", ["x/{name}"]),
    ],
)
def test_route_templates_become_starlette_paths(template, expected):
    assert route_variants(template) == expected


def test_blob_path_patterns_match_nested_names():
    container, prefix, matcher = blob_path_parts("datasets/{name}")
    assert (container, prefix) == ("datasets", "")
    match = matcher.match("bank/jan.csv")
    assert match is not None
    assert match.group("name") == "bank/jan.csv"
    container, prefix, matcher = blob_path_parts("scoring-input/batch/{name}.csv")
    assert (container, prefix) == ("scoring-input", "batch/")
    assert matcher.match("batch/a.csv")
    assert not matcher.match("other/a.csv")
    assert not matcher.match("batch/a.txt")
    assert not matcher.match("batch/a.csv\n")  # matched whole: '$' would take a name ending in a newline


def test_a_duration_is_read_whole():
    from devhost.telemetry_store import duration_ms

    assert duration_ms("1.02:03:04.5") == ((26 * 60 + 3) * 60 + 4.5) * 1000
    assert duration_ms("00:00:01\n") is None


def test_keys_file_is_created_private_and_reused(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("FUNCTIONS_KEY", raising=False)
    path = tmp_path / "keys.json"
    first = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create(path) == first
    assert first.allows_function(first.function)
    assert first.allows_function(first.master)
    assert not first.allows_function(first.eventgrid)
    assert not first.allows_function(None)
    assert not first.allows_admin(first.function)
    assert first.allows_eventgrid(first.eventgrid)
    monkeypatch.setenv("FUNCTIONS_KEY", "from-env")
    assert load_or_create(path).function == "from-env"
    # One source of truth: the file holds the key the host accepts, for tools in a shell without the variable.
    assert json.loads(path.read_text())["functionKeys"]["default"] == "from-env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (load_or_create(path).master, load_or_create(path).eventgrid) == (first.master, first.eventgrid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]
    # Without the variable the generated key is back, and the fixed one (often weak, like this) opens nothing.
    monkeypatch.delenv("FUNCTIONS_KEY")
    again = load_or_create(path)
    assert again.function == first.function and not again.allows_function("from-env")
    assert json.loads(path.read_text())["functionKeys"] == {"default": first.function}


def test_the_gil_switch_interval_is_short_by_default_and_can_be_set(monkeypatch, capsys):
    monkeypatch.delenv(SWITCH_INTERVAL_SETTING, raising=False)
    assert parse_args([]).switch_interval_ms == 0.5  # a tenth of Python's 5 ms: bounds a request's wait
    monkeypatch.setenv(SWITCH_INTERVAL_SETTING, "5")
    assert parse_args([]).switch_interval_ms == 5.0
    assert parse_args(["--switch-interval-ms", "0.25"]).switch_interval_ms == 0.25
    for wrong in ("0", "-1"):
        with pytest.raises(SystemExit):
            parse_args(["--switch-interval-ms", wrong])
    assert "--switch-interval-ms must be a positive number" in capsys.readouterr().err


def test_host_json_settings_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AzureFunctionsJobHost__extensions__queues__visibilityTimeout", raising=False)
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"extensions": {"http": {"routePrefix": "v1"},
                                               "queues": {"maxDequeueCount": 3, "visibilityTimeout": "00:00:07"}}}))
    config = HostConfig.read(path)
    assert (config.route_prefix, config.max_dequeue_count, config.retry_delay_s) == ("v1", 3, 7)
    assert HostConfig.read(tmp_path / "missing.json") == HostConfig()
    path.write_text(json.dumps({"extensions": {"queues": {"visibilityTimeout": "soon"}}}))
    with pytest.raises(ValueError, match="time span"):
        HostConfig.read(path)


def test_app_settings_override_host_json_as_in_azure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"extensions": {"http": {"routePrefix": ""},
                                               "queues": {"maxDequeueCount": 3, "visibilityTimeout": "00:00:30"}}}))
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__queues__visibilityTimeout", "00:00:02")
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__queues__maxDequeueCount", "7")
    config = HostConfig.read(path)
    assert (config.route_prefix, config.max_dequeue_count, config.retry_delay_s) == ("", 7, 2)


def test_project_host_json_keeps_the_documented_defaults():
    config = HostConfig.read(Path(__file__).resolve().parents[2] / "host.json")
    assert (config.route_prefix, config.max_dequeue_count) == ("api", 5)


def test_local_settings_do_not_override_the_environment(tmp_path: Path, monkeypatch):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"A_SETTING": "file", "B_SETTING": "file"}}))
    monkeypatch.setenv("A_SETTING", "env")
    monkeypatch.delenv("B_SETTING", raising=False)
    load_local_settings(path)
    import os

    assert (os.environ["A_SETTING"], os.environ["B_SETTING"]) == ("env", "file")


def test_the_app_declares_each_trigger_kind():
    specs = {s.name: s for s in discover(load_app("function_app:app"))}
    kinds = {s.trigger_type for s in specs.values()}
    assert {"httpTrigger", "blobTrigger", "eventGridTrigger"} <= kinds
    assert specs["ingest"].trigger["path"] == "datasets/{name}"
    assert specs["health"].trigger["authLevel"].lower() == "anonymous"


def test_the_blob_listener_forgets_the_oldest_versions_beyond_its_bound(monkeypatch):
    from unittest.mock import MagicMock

    from devhost import blob_listener

    monkeypatch.setattr(blob_listener, "MAX_KNOWN_BLOBS", 3)
    listener = blob_listener.BlobTriggerListener(MagicMock(), MagicMock(), [], "host")
    for index in range(5):
        listener._remember(("ingest", f"b{index}.csv", "etag"))
    assert list(listener._known) == [("ingest", f"b{index}.csv", "etag") for index in (2, 3, 4)]


def test_invocation_ids_are_random_version_4_uuids():
    import uuid

    from devhost.invoker import _new_invocation_id

    ids = [_new_invocation_id() for _ in range(5000)]
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == i for u, i in zip(parsed, ids, strict=True))
    assert len(set(ids)) == 5000
    assert {i[0] for i in ids} == set("0123456789abcdef")  # every position varies, the first digit too


def test_sampled_requests_count_as_the_requests_they_stand_for(tmp_path: Path, capsys):
    """The local store's readers weigh each stored request by 100 / sampleRate, as Application Insights does."""
    import sqlite3

    from cli.telemetry import requests_summary
    from devhost.telemetry_page import latency_series
    from devhost.telemetry_store import TelemetryStore

    def request(ms: int, rate: float | None, ok: bool = True) -> dict:
        envelope: dict[str, object] = {
            "name": "Microsoft.ApplicationInsights.Request", "time": "2026-01-01T00:00:01.000000Z",
            "tags": {"ai.operation.id": f"op{ms}"},
            "data": {"baseData": {"name": "POST /api/score", "id": f"r{ms}", "success": ok,
                                  "duration": f"00:00:00.{ms:03d}000"}}}
        if rate is not None:
            envelope["sampleRate"] = rate
        return envelope

    store = TelemetryStore(tmp_path / "telemetry.db")
    # 1 fast request standing for 99 others (rate 1%), 9 slow ones each traced (rate 100% or none), 1 failed.
    store.add([request(1, 1.0)] + [request(100 + i, 100.0 if i % 2 else None) for i in range(9)]
              + [request(500, 50.0, ok=False)])
    db = sqlite3.connect(tmp_path / "telemetry.db")
    db.row_factory = sqlite3.Row
    [(_, p50, count)] = latency_series(db)
    assert count == 100 + 9 + 2 and p50 == 1.0  # the one fast item stands for most of the requests
    requests_summary(db)
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("POST /api/score"))
    assert line.split()[2:4] == ["111", "1.0"] and line.endswith("1.8%")  # count, p50, 2 failed of 111


def test_the_upload_function_gets_the_blob_client_the_extension_builds_from_the_host_binding_data(monkeypatch):
    """The ingest function takes a BlobClient (an SDK-type binding): the host builds it with the installed extension's
    own converter, from the binding data the Functions host sends, over the storage the process is given."""
    from azure.storage.blob import BlobClient

    from devhost.invoker import decode_sdk_trigger, sdk_type_of

    connection = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                  "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;")
    monkeypatch.setenv("AzureWebJobsStorage", connection)
    [spec] = [s for s in discover(load_app("function_app:app")) if s.name == "ingest"]
    pytype = sdk_type_of(spec)
    assert pytype is not None
    client = decode_sdk_trigger(spec, pytype, "datasets", "bank/jan 2026.csv")
    assert isinstance(client, BlobClient)
    assert (client.container_name, client.blob_name) == ("datasets", "bank/jan 2026.csv")
    assert client.url.startswith("http://127.0.0.1:1/devstoreaccount1/datasets/bank/")
    others = [s for s in discover(load_app("function_app:app")) if s.trigger_type == "queueTrigger"]
    assert others and all(sdk_type_of(s) is None for s in others)  # the rest take what the library decodes


def test_a_blob_trigger_reads_the_host_copy_on_disk_in_chunks_and_again(tmp_path: Path):
    """The host hands a blob over from its copy on disk: the library's own InputStream, with the trigger's name,
    length and metadata, that a reader in chunks can size, read and read again from the start."""
    from typing import BinaryIO, cast

    import azure.functions as func
    from azure.functions.meta import Datum

    from devhost.invoker import BlobStream, decode_blob_trigger
    from shared.ingest import Upload

    [spec] = [s for s in discover(load_app("function_app:app")) if s.trigger_type == "blobTrigger"
              and s.name == "ingest"]
    content = b"age,y\n" + b"".join(b"%d,yes\n" % i for i in range(1000))
    with (tmp_path / "copy").open("w+b") as spool:
        spool.write(content)
        stream = decode_blob_trigger(spec, spool, {
            "BlobTrigger": Datum("datasets/bank/jan.csv", "string"), "Uri": Datum("http://x/datasets/bank/jan.csv",
                                                                                 "string"),
            "Properties": Datum(json.dumps({"ContentLength": len(content), "ETag": "e1"}), "json"),
            "Metadata": Datum(json.dumps({"target": "y"}), "json")})
        assert isinstance(stream, BlobStream) and isinstance(stream, func.InputStream) and stream.seekable()
        assert (stream.name, stream.length, stream.metadata) == ("datasets/bank/jan.csv", len(content), {"target": "y"})
        assert stream.blob_properties["ETag"] == "e1"
        upload = Upload("bank/jan.csv", stream.uri or "", cast(BinaryIO, stream), {}, "e1")
        assert upload.size == len(content)
        with upload.open() as source:
            assert source.read(6) == b"age,y\n"
        with upload.open() as source:  # from the first byte again
            assert b"".join(iter(lambda: source.read(100), b"")) == content
