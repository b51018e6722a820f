"""The development host against real Azurite, as a real child process."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.process import HostProcess, processes, wait_for

pytestmark = pytest.mark.integration
SAMPLE = "tests.fixtures.sample_app:app"


def _calls(log: Path, function: str = "on_upload") -> list[dict]:
    if not log.exists():
        return []
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return [e for e in entries if e["function"] == function]


@pytest.fixture()
def calls_log(tmp_path: Path) -> Path:
    return tmp_path / "calls.jsonl"


@pytest.fixture()
def host(state_dir: Path, azurite_conn: str, calls_log: Path):
    process = HostProcess(state_dir, azurite_conn, app=SAMPLE, env={"SAMPLE_APP_LOG": str(calls_log)})
    yield process
    process.stop()


def _upload(blobs: BlobServiceClient, name: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
    blobs.get_blob_client("uploads", name).upload_blob(data, overwrite=True, metadata=metadata)


def test_blob_upload_invokes_function_once_with_a_real_input_stream(host, blob_service, calls_log):
    _upload(blob_service, "a.csv", b"x,y\n1,2\n", {"target": "y"})
    assert host.scan() == {"queued": 1, "handled": 1, "messages": 0}
    assert host.scan() == {"queued": 0, "handled": 0, "messages": 0}
    [call] = _calls(calls_log)
    assert call["name"] == "uploads/a.csv"
    assert call["length"] == 8
    assert call["content"] == "x,y\n1,2\n"
    assert call["seekable"] is True and call["read_again"] is True  # from the host's copy on disk, not memory
    assert call["metadata"] == {"target": "y"}
    assert call["uri"].endswith("/uploads/a.csv")
    assert "Executed 'Functions.on_upload' (Succeeded" in host.log_text()


def test_a_blob_of_several_download_ranges_reaches_the_function_whole(host, blob_service, calls_log):
    import hashlib
    import random

    data = random.Random(5).randbytes(9 * 2**20 + 123)  # three 4 MiB ranges, the last one short
    _upload(blob_service, "big.bin", data)
    host.scan()
    [call] = _calls(calls_log)
    assert (call["length"], call["sha256"], call["read_again"]) == (len(data), hashlib.sha256(data).hexdigest(), True)


def test_restart_does_not_reinvoke_but_overwrite_does(state_dir, azurite_conn, blob_service, calls_log):
    env = {"SAMPLE_APP_LOG": str(calls_log)}
    first = HostProcess(state_dir, azurite_conn, app=SAMPLE, env=env)
    _upload(blob_service, "keep.csv", b"one")
    first.scan()
    first.stop()
    second = HostProcess(state_dir, azurite_conn, app=SAMPLE, env=env)
    try:
        assert second.scan()["handled"] == 0
        assert len(_calls(calls_log)) == 1
        _upload(blob_service, "keep.csv", b"two")  # new ETag
        assert second.scan()["handled"] == 1
        assert [c["content"] for c in _calls(calls_log)] == ["one", "two"]
    finally:
        second.stop()


def test_failing_function_is_tried_five_times_then_poisoned(host, blob_service, queue_service: QueueServiceClient,
                                                            calls_log):
    _upload(blob_service, "fail-me.csv", b"boom")
    host.scan()
    attempts = _calls(calls_log)
    assert len(attempts) == 5
    assert [a["retry"] for a in attempts] == [0, 1, 2, 3, 4]
    poison = list(queue_service.get_queue_client("webjobs-blobtrigger-poison").receive_messages())
    assert len(poison) == 1
    message = json.loads(poison[0].content)
    assert (message["ContainerName"], message["BlobName"]) == ("uploads", "fail-me.csv")
    assert host.scan()["handled"] == 0  # nothing left to retry
    assert blob_service.get_blob_client("uploads", "fail-me.csv").exists()  # the upload stays


def test_http_keys_routes_and_unknown_paths(host):
    url = f"{host.url}/api/echo/hello?q=7"
    assert requests.post(url, data=b"hi", timeout=5).status_code == 401
    assert requests.post(url, data=b"hi", headers={"x-functions-key": "wrong"}, timeout=5).status_code == 401
    ok = requests.post(url, data=b"hi", headers={"x-functions-key": host.function_key}, timeout=5)
    assert ok.status_code == 200
    assert ok.json() == {"word": "hello", "body": "hi", "q": "7"}
    assert requests.post(f"{url}&code={host.function_key}", data=b"", timeout=5).status_code == 200
    # The header wins over the query string, as in the real host.
    both = requests.post(f"{url}&code={host.function_key}", headers={"x-functions-key": "wrong"}, timeout=5)
    assert both.status_code == 401
    assert requests.get(f"{host.url}/api/ping", timeout=5).text == "pong"
    assert requests.get(f"{host.url}/api/items/3", timeout=5).json() == {"id": "3"}
    assert requests.get(f"{host.url}/api/items/3/v2", timeout=5).json() == {"id": "3", "version": "v2"}
    assert requests.get(f"{host.url}/api/items/notanint", timeout=5).status_code == 404
    assert requests.get(f"{host.url}/api/nothing-here", timeout=5).status_code == 404


def test_a_fixed_path_answers_as_the_worker_would(host):
    """Functions on fixed paths (``/api/score``) skip the router: same keys, request and response as the others."""
    url = f"{host.url}/api/cookies"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, params={"code": host.function_key}, headers={"x-functions-key": "wrong"},
                        timeout=5).status_code == 401  # the header wins
    answer = requests.get(url, params={"code": host.function_key, "q": "a b"}, headers={"X-Custom": "1"}, timeout=5)
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.raw.headers.getlist("set-cookie") == ["a=1", "b=2"]
    seen = json.loads(answer.text.removeprefix("<p>").removesuffix("</p>"))
    assert seen == {"url": f"{url}?code={host.function_key}&q=a+b", "params": {"code": host.function_key,
                                                                                "q": "a b"}, "custom": "1"}
    head = requests.head(url, headers={"x-functions-key": host.function_key}, timeout=5)
    assert head.status_code == 201 and head.content == b""
    assert requests.post(url, headers={"x-functions-key": host.function_key}, timeout=5).status_code == 404


def test_functions_key_from_environment(state_dir, azurite_conn, calls_log):
    process = HostProcess(state_dir, azurite_conn, app=SAMPLE, env={"FUNCTIONS_KEY": "fixed-test-key"})
    try:
        response = requests.post(f"{process.url}/api/echo/x", headers={"x-functions-key": "fixed-test-key"}, timeout=5)
        assert response.status_code == 200
    finally:
        process.stop()


def _grid(host: HostProcess, body: object, event_type: str | None, function: str = "on_event",
          key: str | None = "default", content_type: str = "application/json") -> requests.Response:
    headers = {"content-type": content_type}
    if event_type:
        headers["aeg-event-type"] = event_type
    code = host.eventgrid_key if key == "default" else key
    query = f"functionName={function}" + (f"&code={code}" if code else "")
    return requests.post(f"{host.url}/runtime/webhooks/eventgrid?{query}", data=json.dumps(body), headers=headers,
                         timeout=10)


def test_event_grid_webhook_behaves_like_the_real_host(host, calls_log):
    validation = [{"id": "v1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "subject": "",
                   "data": {"validationCode": "ABC-123"}, "dataVersion": "1", "eventTime": "2026-01-01T00:00:00Z"}]
    answer = _grid(host, validation, "SubscriptionValidation")
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "ABC-123"}

    events = [{"id": f"e{i}", "eventType": "Microsoft.MachineLearningServices.RunCompleted", "subject": "runs/r1",
               "topic": "/subscriptions/x", "data": {"runId": f"r{i}"}, "dataVersion": "2",
               "eventTime": "2026-01-01T00:00:00Z"} for i in range(2)]
    assert _grid(host, events, "Notification").status_code == 202
    delivered = _calls(calls_log, "on_event")
    assert [(d["id"], d["type"], d["data"]) for d in delivered] == [
        ("e0", "Microsoft.MachineLearningServices.RunCompleted", {"runId": "r0"}),
        ("e1", "Microsoft.MachineLearningServices.RunCompleted", {"runId": "r1"}),
    ]

    cloud = {"specversion": "1.0", "id": "c1", "source": "/x", "type": "Custom.Thing", "data": {"k": 1}}
    assert _grid(host, cloud, None, content_type="application/cloudevents+json").status_code == 202
    assert _calls(calls_log, "on_event")[-1]["id"] == "c1"

    failing = [{**events[0], "id": "f1", "data": {"fail": True}}]
    assert _grid(host, failing, "Notification").status_code == 500
    assert _grid(host, events, "Unsubscribe").status_code == 202
    assert _grid(host, events, "SomethingElse").status_code == 400
    assert _grid(host, events, "Notification", function="nope").status_code == 404
    assert _grid(host, events, "Notification", key=None).status_code == 401
    assert _grid(host, events, "Notification", key=host.function_key).status_code == 401


def test_background_scanning_picks_up_uploads(state_dir, azurite_conn, blob_service, calls_log):
    process = HostProcess(state_dir, azurite_conn, app=SAMPLE, env={"SAMPLE_APP_LOG": str(calls_log)},
                          background=True)
    try:
        _upload(blob_service, "bg.csv", b"data")
        wait_for(lambda: _calls(calls_log), timeout=60, what="background invocation")
    finally:
        process.stop()
    assert len(_calls(calls_log)) == 1


def test_two_hosts_on_one_storage_never_both_process_a_blob(tmp_path, azurite_conn, blob_service, calls_log):
    env = {"SAMPLE_APP_LOG": str(calls_log)}
    hosts = [HostProcess(tmp_path / "shared-state", azurite_conn, app=SAMPLE, env=env, background=True,
                         scan_interval=0.05) for _ in range(2)]
    try:
        names = [f"race-{i:02d}.csv" for i in range(20)]
        for name in names:
            _upload(blob_service, name, name.encode())
        wait_for(lambda: len(_calls(calls_log)) >= len(names), timeout=120, what="all blobs processed")
        for process in hosts:  # a few more scans on both hosts find nothing left to do
            assert process.scan() == {"queued": 0, "handled": 0, "messages": 0}
    finally:
        for process in hosts:
            process.stop()
    processed = sorted(c["name"] for c in _calls(calls_log))
    assert processed == sorted(f"uploads/{n}" for n in names)


def test_sigterm_stops_the_azurite_the_host_started(tmp_path):
    from devhost import azurite as az

    ports = (az.free_port(), az.free_port(), az.free_port())
    conn = az.connection_string("127.0.0.1", *ports)
    process = HostProcess(tmp_path / "own", conn, app=SAMPLE)
    assert az.port_open("127.0.0.1", ports[0])
    assert process.stop() == 0
    assert not az.port_open("127.0.0.1", ports[0])
    assert "Azurite stopped" in process.log_text()


def test_nothing_is_exported_when_telemetry_is_off(state_dir, azurite_conn):
    process = HostProcess(state_dir, azurite_conn, app=SAMPLE, env={"TELEMETRY_ENABLED": "false"})
    assert requests.get(f"{process.url}/api/ping", timeout=5).status_code == 200
    assert requests.post(f"{process.url}/v2.1/track", json=[], timeout=5).status_code == 404  # no local endpoint
    process.stop()
    assert not (state_dir / "telemetry.db").exists()


def _send(queue_service: QueueServiceClient, queue: str, text: str) -> None:
    from azure.storage.queue import TextBase64EncodePolicy

    client = queue_service.get_queue_client(queue, message_encode_policy=TextBase64EncodePolicy())
    client.send_message(text)


def test_queue_message_invokes_its_function_once_then_is_deleted(host, queue_service, calls_log):
    _send(queue_service, "work-items", "hello")
    assert host.scan()["messages"] == 1
    assert host.scan()["messages"] == 0
    [call] = _calls(calls_log, "on_message")
    assert call["body"] == "hello" and call["dequeue_count"] == 1
    assert queue_service.get_queue_client("work-items").get_queue_properties().approximate_message_count == 0


def test_failing_queue_message_is_tried_five_times_then_poisoned(host, queue_service, calls_log):
    _send(queue_service, "work-items", "fail please")
    wait_for(lambda: host.scan()["messages"] == 0 and len(_calls(calls_log, "on_message")) >= 5,
             timeout=60, what="five tries")
    attempts = _calls(calls_log, "on_message")
    assert [a["dequeue_count"] for a in attempts] == [1, 2, 3, 4, 5]
    from azure.storage.queue import TextBase64DecodePolicy

    poison = queue_service.get_queue_client("work-items-poison", message_decode_policy=TextBase64DecodePolicy())
    assert [m.content for m in poison.receive_messages()] == ["fail please"]
    assert "moved to work-items-poison" in host.log_text()


def _children_serving_http(parent: int) -> list[int]:
    """Processes started by ``parent`` as extra HTTP servers (their command line says --http-only)."""
    return processes(lambda command, parent_id: "--http-only" in command and parent_id == parent)


def test_several_http_processes_share_one_port_and_stop_with_the_host(state_dir, azurite_conn, calls_log):
    host = HostProcess(state_dir, azurite_conn, app=SAMPLE, env={"SAMPLE_APP_LOG": str(calls_log),
                                                                 "DEVHOST_HTTP_PROCESSES": "3"})
    try:
        children = wait_for(lambda: (found := _children_serving_http(host.process.pid)) and len(found) == 2
                            and found, timeout=60, what="two extra HTTP processes")
        # Every process answers on the one port: fresh connections are spread over them by the kernel.
        words = [f"w{i}" for i in range(60)]
        answers = [requests.post(f"{host.url}/api/echo/{word}", data=b"x", timeout=30,
                                 headers={"x-functions-key": host.function_key}) for word in words]
        assert [a.status_code for a in answers] == [200] * 60
        assert [a.json()["word"] for a in answers] == words
        served_by: set[int] = set()

        def spread() -> bool:  # the extra processes listen once they have loaded the app
            served_by.update(int(requests.get(f"{host.url}/api/whoami", timeout=30).text) for _ in range(30))
            return len(served_by) == 3

        assert wait_for(spread, timeout=60, interval=0.2, what="all three processes to answer")
        assert served_by == {host.process.pid, *children}
        # Triggers still run once, in the first process only.
        blobs = BlobServiceClient.from_connection_string(azurite_conn)
        _upload(blobs, "multi.csv", b"a,b\n1,2\n")
        assert host.scan()["handled"] == 1
        assert len(_calls(calls_log)) == 1
    finally:
        host.stop()
    assert wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), timeout=30,
                    what="the extra HTTP processes to stop")


def test_a_flood_is_traced_within_budget_and_every_invocation_is_counted(state_dir, azurite_conn):
    """Traces are sampled per function before any span exists; each traced request's sample rate stands for
    the requests left out before it, so the stored items still count every request, and the duration metric
    counts each one exactly. Children follow their request's decision: none is stored without its parent."""
    import sqlite3

    process = HostProcess(state_dir, azurite_conn, app=SAMPLE, env={"TELEMETRY_TRACES_PER_SECOND": "2"})
    url = f"{process.url}/api/traced"
    with requests.Session() as session:
        parents = [session.get(url, timeout=10).text for _ in range(300)]
        time.sleep(0.6)  # the budget refills: the next request is traced and stands for all left out before it
        parents.append(session.get(url, timeout=10).text)
        caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"  # a caller that did not sample
        continued = session.get(url, headers={"traceparent": caller}, timeout=10).text
    process.stop()  # flushes what is buffered
    assert continued.startswith("00-0af7651916cd43dd8448eb211c80319c-") and continued.endswith("-00")  # not traced
    db = sqlite3.connect(state_dir / "telemetry.db")
    db.row_factory = sqlite3.Row
    traced = db.execute("SELECT operation_id, item_id, json_extract(body, '$.sampleRate') AS rate FROM envelopes "
                        "WHERE type='Request' AND name='GET traced'").fetchall()
    assert 2 <= len(traced) < 30  # 301 requests in a few seconds, 2 traces a second (and a burst of 2)
    assert sum(round(100 / (row["rate"] or 100)) for row in traced) == 301
    sampled = [p for p in parents if int(p.rsplit("-", 1)[1], 16) & 1]  # the W3C sampled flag
    assert len(sampled) == len(traced) and len(parents) - len(sampled) == 301 - len(traced)
    assert {p.split("-")[1] for p in sampled} == {row["operation_id"] for row in traced}
    assert len({p.split("-")[1] for p in parents}) == 301  # each request its own trace, traced or not
    children = db.execute("SELECT operation_id, parent_id, json_extract(body, '$.sampleRate') FROM envelopes "
                          "WHERE name='child work'").fetchall()
    # Each traced request's child, with the request's sample rate; no child of a request left out.
    assert sorted(tuple(c) for c in children) == sorted((r["operation_id"], r["item_id"], r["rate"]) for r in traced)
    windows = db.execute("SELECT json_extract(body, '$.data.baseData.metrics[0].value') FROM envelopes "
                         "WHERE name='invocation_duration_ms' AND json_extract(body, "
                         "'$.data.baseData.properties.function')='traced' AND json_extract(body, "
                         "'$.data.baseData.properties.statistic')='count'").fetchall()
    assert sum(w[0] for w in windows) == 302  # every invocation, whether traced or not
