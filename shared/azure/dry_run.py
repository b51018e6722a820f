"""An in-memory stand-in for ``MLClient`` and the app's blob writes, recording every call.

``cli plan`` runs the Azure backend's own code against it to show what would be
created for an upload, and the contract tests check the recorded calls. It
keeps just enough state (assets, jobs, endpoints) for the backend's reads to
see its own writes.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.azure.blobstore import BlobStore, Sink
from shared.azure.run_metrics import RunMetrics
from shared.azure.state import JsonBlobs
from shared.batch import BatchOutputs
from shared.ports import DeploymentQueue


@dataclass
class Call:
    operation: str  # e.g. "models.create_or_update"
    args: dict[str, Any]


class _Done:
    """What ``begin_*`` returns: a poller that has already finished."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


def _missing(what: str) -> ResourceNotFoundError:
    return ResourceNotFoundError(f"{what} not found")


def _uploaded(deployment: Any) -> dict[str, bytes]:
    """The files of a deployment's code folder, read when it is created, as the SDK uploads them then."""
    from pathlib import Path

    code = str(getattr(getattr(deployment, "code_configuration", None), "code", "") or "")
    folder = Path(code)
    if not code or not folder.is_dir():
        return {}
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()}


class _Operations:
    def __init__(self, workspace: InMemoryWorkspace, group: str) -> None:
        self.workspace = workspace
        self.group = group

    def _record(self, operation: str, **args: Any) -> None:
        self.workspace.calls.append(Call(f"{self.group}.{operation}", args))


class _Data(_Operations):
    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        found = self.workspace.assets.get((name, str(version)))
        if found is None:
            raise _missing(f"data {name}:{version}")
        return found

    def create_or_update(self, data: Any) -> Any:
        self._record("create_or_update", data=data)
        self.workspace.assets[(data.name, str(data.version))] = data
        return data

    def list(self, name: str | None = None, **_: Any) -> list[Any]:
        return [d for (n, _v), d in self.workspace.assets.items() if name is None or n == name]


class _Jobs(_Operations):
    def get(self, name: str) -> Any:
        found = self.workspace.job_views.get(name)
        if found is None:
            raise _missing(f"job {name}")
        return found

    def create_or_update(self, job: Any, **kwargs: Any) -> Any:
        self._record("create_or_update", job=job, **kwargs)
        view = SimpleNamespace(name=job.name, type="pipeline", status="NotStarted", tags=dict(job.tags or {}),
                               properties={}, studio_url=f"https://ml.azure.com/runs/{job.name}",
                               creation_context=None, parent=None)
        self.workspace.job_views[job.name] = view
        return view

    def list(self, parent_job_name: str | None = None, **_: Any) -> list[Any]:
        return [j for j in self.workspace.job_views.values() if getattr(j, "parent", None) == parent_job_name]

    def begin_cancel(self, name: str) -> _Done:
        self._record("begin_cancel", name=name)
        self.get(name).status = "CancelRequested"
        return _Done(None)


class _BatchEndpoints(_Operations):
    def get(self, name: str) -> Any:
        found = self.workspace.batch_endpoint_views.get(name)
        if found is None:
            raise _missing(f"batch endpoint {name}")
        return found

    def begin_create_or_update(self, endpoint: Any, **_: Any) -> _Done:
        self._record("begin_create_or_update", endpoint=endpoint)
        view = SimpleNamespace(name=endpoint.name, tags=dict(endpoint.tags or {}), provisioning_state="Succeeded")
        self.workspace.batch_endpoint_views[endpoint.name] = view
        return _Done(view)

    def invoke(self, endpoint_name: str, **kwargs: Any) -> Any:
        self._record("invoke", endpoint_name=endpoint_name, **kwargs)
        name = kwargs.get("job_name") or f"batch-{len(self.workspace.job_views)}"
        view = SimpleNamespace(name=name, type="pipeline", status="NotStarted", tags={}, properties={},
                               studio_url="", creation_context=None, parent=None)
        self.workspace.job_views[name] = view
        return view


class _BatchDeployments(_Operations):
    def get(self, name: str, endpoint_name: str) -> Any:
        found = self.workspace.batch_deployment_views.get((endpoint_name, name))
        if found is None:
            raise _missing(f"batch deployment {endpoint_name}/{name}")
        return found

    def begin_create_or_update(self, deployment: Any, **_: Any) -> _Done:
        self._record("begin_create_or_update", deployment=deployment)
        view = SimpleNamespace(name=deployment.name, endpoint_name=deployment.endpoint_name,
                               provisioning_state="Succeeded", model=deployment.model,
                               code_files=_uploaded(deployment))
        self.workspace.batch_deployment_views[(deployment.endpoint_name, deployment.name)] = view
        return _Done(view)


class _Models(_Operations):
    def create_or_update(self, model: Any) -> Any:
        self._record("create_or_update", model=model)
        stored = copy.deepcopy(model)
        if not stored.version:
            stored.version = str(1 + sum(1 for (n, _v) in self.workspace.model_versions if n == model.name))
        self.workspace.model_versions[(stored.name, str(stored.version))] = stored
        return stored

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        found = self.workspace.model_versions.get((name, str(version)))
        if found is None:
            raise _missing(f"model {name}:{version}")
        return copy.deepcopy(found)

    def list(self, name: str | None = None, **_: Any) -> list[Any]:
        return [m for (n, _v), m in self.workspace.model_versions.items() if name is None or n == name]


class _OnlineEndpoints(_Operations):
    def get(self, name: str) -> Any:
        found = self.workspace.endpoint_views.get(name)
        if found is None:
            raise _missing(f"endpoint {name}")
        return found

    def begin_create_or_update(self, endpoint: Any, **_: Any) -> _Done:
        self._record("begin_create_or_update", endpoint=endpoint)
        view = SimpleNamespace(name=endpoint.name, traffic=dict(endpoint.traffic or {}), tags=dict(endpoint.tags),
                               provisioning_state="Succeeded",
                               auth_mode=endpoint.auth_mode,
                               scoring_uri=f"{self.workspace.scoring_base}/{endpoint.name}/score")
        self.workspace.endpoint_views[endpoint.name] = view
        return _Done(view)

    def list(self, **_: Any) -> list[Any]:
        return list(self.workspace.endpoint_views.values())

    def invoke(self, endpoint_name: str, **kwargs: Any) -> str:
        request_file = kwargs.get("request_file")
        if request_file:
            with open(request_file) as handle:
                kwargs["request"] = json.load(handle)
        self._record("invoke", endpoint_name=endpoint_name, **kwargs)
        graded = self.workspace.graded(endpoint_name, kwargs.get("deployment_name"), kwargs.get("request") or {})
        return graded or self.workspace.invoke_answer

    def get_keys(self, name: str) -> Any:
        self._record("get_keys", name=name)
        return SimpleNamespace(primary_key="primary-key-of-" + name, secondary_key="")


class _OnlineDeployments(_Operations):
    def begin_create_or_update(self, deployment: Any, **_: Any) -> _Done:
        self._record("begin_create_or_update", deployment=deployment)
        view = SimpleNamespace(name=deployment.name, endpoint_name=deployment.endpoint_name,
                               provisioning_state="Succeeded",
                               model=deployment.model, tags=dict(deployment.tags or {}),
                               code_files=_uploaded(deployment))
        self.workspace.deployment_views[(deployment.endpoint_name, deployment.name)] = view
        return _Done(view)

    def get(self, name: str, endpoint_name: str) -> Any:
        found = self.workspace.deployment_views.get((endpoint_name, name))
        if found is None:
            raise _missing(f"deployment {endpoint_name}/{name}")
        return found

    def list(self, endpoint_name: str, **_: Any) -> list[Any]:
        return [d for (e, _n), d in self.workspace.deployment_views.items() if e == endpoint_name]

    def begin_delete(self, name: str, endpoint_name: str, **_: Any) -> _Done:
        self._record("begin_delete", name=name, endpoint_name=endpoint_name)
        self.workspace.deployment_views.pop((endpoint_name, name), None)
        return _Done(None)


REGRESSION_DISTINCT = 20  # held-out targets with more distinct numbers than this are a regression's


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def graded_answer(request: dict[str, Any], quality: float, blobs: dict[str, bytes],
                  numbers: bool | None = None) -> str | None:
    """A deployed model of known quality answering rows the app held out (the ``holdout.csv`` files in
    ``blobs``), in its scoring script's form: right, with 0.9 on the true class, for the share ``quality`` of the
    rows (those whose hash falls below it), wrong otherwise. None when a row is not a held-out one. ``numbers``:
    whether the model answers numbers (when known; else a target of many distinct numbers says so)."""
    split = request.get("input_data") or {}
    columns, data = list(split.get("columns") or []), list(split.get("data") or [])
    truth: dict[str, str] = {}
    for path, content in blobs.items():
        if path.endswith("/holdout.csv"):
            reader = csv.DictReader(io.StringIO(content.decode("utf-8")))
            target = next(n for n in reader.fieldnames or [] if n not in columns)
            for row in reader:
                truth["\x1f".join(row.get(c) or "" for c in columns)] = row[target]
    keys = ["\x1f".join("" if v is None else str(v) for v in row) for row in data]
    if not keys or any(k not in truth for k in keys):
        return None

    def share(key: str) -> float:
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2 ** 64

    if numbers is None:
        numbers = len(set(truth.values())) > REGRESSION_DISTINCT and all(_is_number(v) for v in truth.values())
    if numbers:
        # a regression model: the true number, or one a quarter off
        return json.dumps({"predictions": [float(truth[k]) * (1.0 if share(k) < quality else 1.25) for k in keys]})
    classes = sorted(set(truth.values()))
    answer: dict[str, Any] = {"predictions": [], "classes": classes, "probabilities": []}
    for key in keys:
        said = truth[key] if share(key) < quality else next(c for c in classes if c != truth[key])
        answer["predictions"].append(said)
        answer["probabilities"].append([0.9 if c == said else 0.1 / (len(classes) - 1) for c in classes])
    return json.dumps(answer)


def forecast_reach(request: dict[str, Any], data: Any, blobs: dict[str, bytes],
                   code: dict[str, bytes] | None = None) -> tuple[list[bool], list[float | None]] | None:
    """For a model trained on Data asset ``data`` as a forecast and deployed with the files ``code``: whether it
    can forecast each requested row, as AutoML's ``forecast()`` can (the scoring script answers null otherwise),
    and the last actual value it knows of the row's series (a naive forecast). Its forecast origin is the end of
    the series' training history (``train.csv``), or, where the deployment's context (``context.csv``, as the
    scoring script uses it) has rows of the series earlier than the earliest time asked of it, the last of those;
    it reaches a series it trained on, at most its horizon beyond that origin. None for a model of another task,
    or when its training rows are not in ``blobs``."""
    import pandas as pd

    from shared.azure import entities, forecast_context, holdout
    from shared.schema import Schema

    schema = Schema.from_dict(json.loads((getattr(data, "properties", None) or {}).get("schema", "{}") or "{}")) \
        if (getattr(data, "properties", None) or {}).get("schema") else None
    settings = schema.time_series if schema is not None else None
    tags = dict(getattr(data, "tags", None) or {})
    trained = blobs.get(f"{entities.dataset_folder(tags.get('model', ''), tags.get('content_hash', ''))}/"
                        f"{holdout.TRAIN_FILE}")
    if settings is None or schema is None or trained is None:
        return None
    history = pd.read_csv(io.BytesIO(trained), dtype=str, keep_default_na=False)
    split = request.get("input_data") or {}
    rows = pd.DataFrame(list(split.get("data") or []), columns=list(split.get("columns") or []), dtype=object)
    if settings.time_column not in rows.columns or any(c not in rows.columns for c in settings.series):
        return [False] * len(rows), [None] * len(rows)

    def keys(frame: pd.DataFrame) -> pd.Series:
        return frame[list(settings.series)].astype(str).agg("\x1f".join, axis=1) if settings.series else \
            pd.Series("", index=frame.index)

    times = holdout.wall_clock(rows[settings.time_column].astype("string"))
    asked = keys(rows)
    earliest = pd.Series(times.to_numpy()).groupby(asked.to_numpy()).min()
    known = pd.DataFrame({"key": keys(history).to_numpy(),
                          "time": holdout.wall_clock(history[settings.time_column]).to_numpy(),
                          "value": pd.to_numeric(history[schema.target], errors="coerce").to_numpy()})
    trained_series = set(known["key"])
    context = (code or {}).get(forecast_context.CONTEXT_FILE)
    if context is not None:
        shipped = pd.read_csv(io.BytesIO(context), dtype=str, keep_default_na=False)
        given = pd.DataFrame({"key": keys(shipped).to_numpy(),
                              "time": holdout.wall_clock(shipped[settings.time_column]).to_numpy(),
                              "value": pd.to_numeric(shipped[schema.target], errors="coerce").to_numpy()})
        given = given[given["time"] < given["key"].map(earliest)]  # never the periods asked, nor later ones
        known = pd.concat([known, given], ignore_index=True)
    latest = known.dropna(subset=["time"]).sort_values("time").groupby("key").last()
    reach: list[bool] = []
    naive: list[float | None] = []
    for key, time in zip(asked, times, strict=True):
        end = latest["time"].get(key) if key in trained_series else None
        limit = holdout.periods_back(end, settings, -settings.horizon) if end is not None else None
        reach.append(end is not None and pd.notna(time) and time > end and (limit is None or time <= limit))
        value = latest["value"].get(key) if end is not None else None
        naive.append(float(value) if value is not None and pd.notna(value) else None)
    return reach, naive


def within_reach(answer: str | None, found: tuple[list[bool], list[float | None]] | None) -> str | None:
    """A graded answer with null for each row its forecaster cannot forecast (``forecast_reach``); for rows that
    were not held out (no actual value to grade against), the series' last known value where within reach."""
    if found is None:
        return answer
    reach, naive = found
    predictions = json.loads(answer)["predictions"] if answer else naive
    return json.dumps({"predictions": [p if ok else None for p, ok in zip(predictions, reach, strict=True)]})


# What the app's scoring script answers for one row (shared/azure/endpoint_code/score.py).
SCRIPT_ANSWER = '{"predictions": ["no"], "classes": ["no", "yes"], "probabilities": [[0.9, 0.1]]}'


class InMemoryWorkspace:
    """Quacks like ``MLClient`` for what the Azure backend uses."""

    def __init__(self, scoring_base: str = "https://example.inference.ml.azure.com",
                 invoke_answer: str = SCRIPT_ANSWER) -> None:
        self.scoring_base = scoring_base
        self.invoke_answer = invoke_answer
        self.calls: list[Call] = []
        self.assets: dict[tuple[str, str], Any] = {}
        self.job_views: dict[str, Any] = {}
        self.model_versions: dict[tuple[str, str], Any] = {}
        self.endpoint_views: dict[str, Any] = {}
        self.deployment_views: dict[tuple[str, str], Any] = {}
        self.batch_endpoint_views: dict[str, Any] = {}
        self.batch_deployment_views: dict[tuple[str, str], Any] = {}
        self.node_events: dict[str, dict[str, Any]] = {}  # the AutoML node's RunCompleted data, per pipeline job
        self.logged: dict[str, dict[str, float]] = {}  # what each run logged to the tracking server
        self.store: RecordingStore | None = None  # the app's storage, where deployments find held-out rows
        self.data = _Data(self, "data")
        self.jobs = _Jobs(self, "jobs")
        self.batch_endpoints = _BatchEndpoints(self, "batch_endpoints")
        self.batch_deployments = _BatchDeployments(self, "batch_deployments")
        self.models = _Models(self, "models")
        self.online_endpoints = _OnlineEndpoints(self, "online_endpoints")
        self.online_deployments = _OnlineDeployments(self, "online_deployments")

    def operations(self, prefix: str = "") -> list[str]:
        """The recorded operation names, in order (reads are not recorded)."""
        return [c.operation for c in self.calls if c.operation.startswith(prefix)]

    def complete_run(self, run_id: str, score: float = 0.91, algorithm: str = "LightGBM",
                     status: str = "Completed") -> dict[str, Any]:
        """Play Azure ML finishing pipeline job ``run_id``; returns the pipeline job's own RunCompleted data.

        Children look as run history gives them to the SDK: generic ``base`` jobs, told apart by tags,
        properties and display name only.
        """
        node = f"{run_id}_automl"
        best = f"{node}_3"
        pipeline = self.job_views[run_id]
        pipeline.status = status
        node_tags = {**pipeline.tags, "node": "automl"}
        if status == "Completed":
            node_tags["automl_best_child_run_id"] = best
        failure = {} if status == "Completed" else {"azureml.failure_reason": "UserError: no trial finished"}
        self.job_views[node] = SimpleNamespace(name=node, type="base", display_name="automl", status=status,
                                               tags=node_tags, properties={
                                                   "runTemplate": "AutoML", **failure,
                                                   # as AutoML marks its parent run: the curated environment
                                                   "environment_cpu_name": "AzureML-ai-ml-automl",
                                                   "environment_cpu_label": "7"},
                                               studio_url="", creation_context=None, parent=run_id)
        self.job_views[best] = SimpleNamespace(name=best, type="base", display_name="trial 3", status=status,
                                               tags={}, properties={"run_algorithm": algorithm,
                                                                    "runTemplate": "automl_child"},
                                               studio_url="", creation_context=None, parent=node)
        self.logged[best] = {str(pipeline.tags.get("metric", "accuracy")): score}
        self.node_events[run_id] = {
            "experimentId": "6a2a8e3f-0000-0000-0000-000000000000", "experimentName": pipeline.tags["model"],
            "runId": node, "runType": None, "runTags": node_tags,
            "runProperties": {"azureml.pipelinerunid": run_id, **failure}}
        return {"experimentId": "6a2a8e3f-0000-0000-0000-000000000000", "experimentName": pipeline.tags["model"],
                "runId": run_id, "runType": "azureml.PipelineRun", "runTags": dict(pipeline.tags),
                "runProperties": {"azureml.runsource": "azureml.PipelineRun", **failure}}

    def graded(self, endpoint: str, deployment: str | None, request: dict[str, Any]) -> str | None:
        """The answer of the model on ``deployment`` to held-out rows, as good as its best trial logged."""
        view = self.deployment_views.get((endpoint, deployment or ""))
        if view is None or self.store is None:
            return None
        name, version = str(view.model).split(":")[-2:]
        model = self.model_versions.get((name, version))
        logged = self.logged.get(str((model.tags or {}).get("best_child_run_id", ""))) if model else None
        if not logged or model is None:
            return None
        tags = dict(model.tags or {})
        data = next((d for d in self.assets.values() if (d.tags or {}).get("model") == tags.get("dataset_name")
                     and (d.tags or {}).get("sequence") == tags.get("dataset_version")), None)
        code = getattr(view, "code_files", None)
        reach = forecast_reach(request, data, self.store.blobs, code) if data is not None else None
        answer = graded_answer(request, max(logged.values()), self.store.blobs, True if reach is not None else None)
        return within_reach(answer, reach)

    def last(self, operation: str) -> dict[str, Any]:
        return next(c.args for c in reversed(self.calls) if c.operation == operation)


class InMemoryQueue(DeploymentQueue):
    """The deployments queue as a list: ``drain`` runs its messages the way the queue trigger would."""

    def __init__(self, max_tries: int = 5) -> None:
        self.messages: list[tuple[str, float, int]] = []  # text, delay, tries so far
        self.poison: list[str] = []
        self.max_tries = max_tries

    def send(self, message: str, delay_s: float) -> None:
        self.messages.append((message, delay_s, 0))

    def drain(self, backend: Any, limit: int = 100) -> list[str]:
        """Run every queued message, delays ignored, until none is left; returns each outcome.

        A message whose step raises is tried again, as the queue would, and after
        ``max_tries`` goes to the poison list, whose handler records the failure.
        """
        from shared.deployment_flow import DeployMessage, advance, fail_poisoned

        outcomes: list[str] = []
        while self.messages and len(outcomes) < limit:
            text, delay, tries = self.messages.pop(0)
            try:
                outcomes.append(advance(backend, DeployMessage.decode(text)))
            except Exception as error:
                outcomes.append(f"error: {type(error).__name__}")
                if tries + 1 < self.max_tries:
                    self.messages.insert(0, (text, delay, tries + 1))
                else:
                    self.poison.append(text)
                    fail_poisoned(backend, DeployMessage.decode(text), self.max_tries)
        return outcomes


class RecordingBatchOutputs(BatchOutputs):
    """The scoring-output container as a dict: each CSV is visible once committed, as with staged blocks."""

    def __init__(self) -> None:
        self.json: dict[str, dict[str, object]] = {}
        self.committed: dict[str, bytes] = {}
        self.pieces: dict[str, int] = {}  # how many pieces each committed CSV was written in

    def write_json(self, name: str, body: dict[str, object]) -> None:
        self.json[name] = json.loads(json.dumps(body))

    def csv_writer(self, name: str) -> tuple[Any, Any]:
        pieces: list[bytes] = []

        def commit() -> None:
            self.committed[name] = b"".join(pieces)
            self.pieces[name] = len(pieces)

        return pieces.append, commit


class RecordingStore(BlobStore):
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put_once(self, path: str, data: bytes) -> bool:
        if path in self.blobs:
            return False
        self.blobs[path] = data
        return True

    def replace(self, path: str, data: bytes) -> None:
        self.blobs[path] = data

    def read(self, path: str, limit: int | None = None) -> bytes | None:
        found = self.blobs.get(path)
        return found[:limit] if found is not None and limit else found

    @contextmanager
    def writer(self, path: str) -> Iterator[Sink]:
        parts: list[bytes] = []

        class _Parts:
            def write(self, data: bytes) -> None:
                parts.append(data)

        yield _Parts()
        self.put_once(path, b"".join(parts))


def drain_batch(queue: InMemoryQueue, backend: Any, outputs: BatchOutputs, limit: int = 100) -> list[str]:
    """Run the batch job messages of ``queue`` as the batch queue trigger would (a failing step is tried again,
    then poisoned); returns each outcome."""
    from shared.batch_flow import BatchMessage, advance, fail_poisoned

    outcomes: list[str] = []
    while queue.messages and len(outcomes) < limit:
        text, delay, tries = queue.messages.pop(0)
        try:
            outcomes.append(advance(backend, BatchMessage.decode(text), outputs))
        except Exception as error:
            outcomes.append(f"error: {type(error).__name__}")
            if tries + 1 < queue.max_tries:
                queue.messages.insert(0, (text, delay, tries + 1))
            else:
                queue.poison.append(text)
                fail_poisoned(backend, BatchMessage.decode(text), queue.max_tries, outputs)
    return outcomes


class InMemoryRecords(JsonBlobs):
    """The state container's records in a dict, with the same create-once and ETag semantics."""

    def __init__(self) -> None:
        super().__init__(None)
        self.records: dict[str, tuple[dict[str, Any], str]] = {}
        self._writes = 0

    def _stamp(self) -> str:
        self._writes += 1
        return f'"{self._writes}"'

    def get(self, path: str) -> tuple[dict[str, Any], str] | None:
        found = self.records.get(path)
        return (copy.deepcopy(found[0]), found[1]) if found else None

    def create(self, path: str, body: dict[str, Any]) -> bool:
        if path in self.records:
            return False
        self.records[path] = (copy.deepcopy(body), self._stamp())
        return True

    def replace(self, path: str, body: dict[str, Any], etag: str) -> str | None:
        if path not in self.records or self.records[path][1] != etag:
            return None
        self.records[path] = (copy.deepcopy(body), self._stamp())
        return self.records[path][1]

    def delete(self, path: str) -> None:
        self.records.pop(path, None)

    def names(self, prefix: str) -> list[str]:
        return sorted(path for path in self.records if path.startswith(prefix))

    def list(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        chosen = [(stamp, body) for path, (body, stamp) in self.records.items() if path.startswith(prefix)]
        return [copy.deepcopy(body) for _stamp, body in sorted(chosen, key=lambda c: -int(c[0].strip('"')))][:limit]


def rest_form(entity: Any, location: str = "<region>") -> Any:
    """The body the SDK sends to Azure ML for ``entity`` (what the contract tests check field by field)."""
    for method, args in (("_to_rest_online_endpoint", (location,)), ("_to_rest_batch_endpoint", (location,)),
                         ("_to_rest_object", ())):
        build = getattr(entity, method, None)
        if build is None:
            continue
        try:
            rest = build(*args)
        except TypeError:
            rest = build(location)  # deployments take the region too
        return rest.as_dict() if hasattr(rest, "as_dict") else rest.serialize()
    return entity


class InMemoryRunMetrics(RunMetrics):
    """The tracking server of an ``InMemoryWorkspace``: what its runs logged."""

    def __init__(self, workspace: InMemoryWorkspace) -> None:
        self.workspace = workspace

    def of(self, run_id: str) -> dict[str, float]:
        return dict(self.workspace.logged.get(run_id, {}))
