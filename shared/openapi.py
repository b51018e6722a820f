"""OpenAPI 3.1 description of the HTTP API, with row schemas generated from the deployed models.

The document is the server's exact contract: what it describes, the server accepts, and what the server refuses,
the document rules out (each deployed model's routes take that model's rows). Text that comes from the data
(categories, column names) never goes into a description, which Swagger UI renders as Markdown: it stays in
enum, examples and property names, which it shows as text.
"""

from __future__ import annotations

from typing import Any

from shared import metrics
from shared.model_contract import ModelSignature
from shared.naming import MODEL_NAME_PATTERN
from shared.pipelines import MAX_BUDGET_S, MAX_DATASET_VERSION, PUBLISHED
from shared.schema import DATETIME, Column
from shared.scoring import DATE_SHAPE, FLAG_WORDS, FLOAT32_MAX, ROW_FORMS, WORD_SPACE
from shared.status import DEFAULT_LIMIT, MAX_LIMIT

KEY: list[dict[str, list[str]]] = [{"functionKey": []}, {"functionCode": []}]
JSON_OBJECT: dict[str, Any] = {"type": "object"}
CATEGORY_EXAMPLES = 50


def _any_case(*words: str) -> str:
    """A pattern for ``words`` in any case (JSON Schema patterns have no case-insensitive flag)."""
    return "|".join("".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word) for word in words)


SPACE = "".join({" ": " ", "\t": "\\t", "\r": "\\r", "\n": "\\n"}[c] for c in WORD_SPACE)
NUMBER = {"type": ["number", "null"], "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX,
          "description": "A number within float32 range, or null when missing"}
BOOLEAN = {"anyOf": [{"type": ["boolean", "null"]}, {"enum": [0, 1]},
                     {"type": "string", "pattern": f"^[{SPACE}]*(?:{_any_case('true', 'false')})[{SPACE}]*$"}],
           "description": "true or false (also 1 or 0, or the words in any case), or null when missing"}
DATE = {"type": ["string", "null"], "pattern": f"^{DATE_SHAPE}$", "examples": ["2024-05-31", "2024-05-31T14:30:00"],
        "description": "An ISO 8601 date, or date and time (read as written: an offset is not applied), of a real "
                       "day; or null when missing"}


def _column_schema(feature: Column) -> dict[str, Any]:
    if feature.kind == "boolean":
        return BOOLEAN
    if feature.is_numeric:
        return NUMBER
    if feature.kind == DATETIME:
        return DATE
    return {"type": ["string", "null"], "examples": list(feature.categories[:CATEGORY_EXAMPLES]),
            "description": f"A category: examples lists the first of the {len(feature.categories)} seen in "
                           "training; any other is accepted, and counted as unseen. Null when missing."}


def _row_schema(signature: ModelSignature) -> dict[str, Any]:
    properties = {feature.name: _column_schema(feature) for feature in signature.features}
    required = list(properties)
    for name in sorted(signature.ignored):
        properties[name] = {"description": "Excluded from training: accepted and ignored"}
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _values_schema(signature: ModelSignature) -> dict[str, Any]:
    """One row of the split forms, its values in the order of ``columns`` (the model's own)."""
    count = len(signature.features)
    return {"type": "array", "prefixItems": [_column_schema(feature) for feature in signature.features],
            "minItems": count, "maxItems": count}


def _result_schema(signature: ModelSignature) -> dict[str, Any]:
    """The score response of one model: its classes as labels, or numbers for regression."""
    number = {"type": ["number", "null"]}  # null: not a finite number (inputs far beyond the training data)
    explanation: dict[str, Any] = {"type": "object", "required": ["output", "base", "contributions"], "properties": {
        "class": {"type": "string"}, "output": {"type": "string"}, "base": number,
        "contributions": {"type": "object", "additionalProperties": number}}}
    properties: dict[str, Any] = {
        "model": {"type": "object", "required": ["name", "version"],
                  "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
        "unseen_categories": {"type": "integer", "minimum": 1},
        "explanations": {"type": "array", "items": explanation, "description": "With explain: each row's "
                         "contributions per column toward its class (or predicted number); base + contributions "
                         "= the model's output (log odds, probability, or the predicted value)"},
    }
    properties.update(signature.task.result_schema(signature.classes))  # the result, and probabilities if any
    return {"type": "object", "required": ["result", "model"], "properties": properties}


def _json_body(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"required": True, "content": {"application/json": content}}


def _json(description: str, schema: dict[str, Any] = JSON_OBJECT) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, {"$ref": "#/components/schemas/Error"})


UNAUTHORISED = _error("missing or wrong function key")


class _Flags:
    """Which flags a model's requests may turn on: ``probabilities`` (a classifier's, where the backend serves
    them) and ``explain`` (where the backend serves explanations)."""

    def __init__(self, signature: ModelSignature | None, extras: bool) -> None:
        self.probabilities = extras and not (signature is not None and not signature.task.predicts_classes)
        self.explain = extras

    @staticmethod
    def body(allowed: bool) -> dict[str, Any]:
        return {"type": "boolean", "default": False} if allowed else {"enum": [False], "default": False}

    def query(self) -> dict[str, Any]:
        words = [word for word, on in FLAG_WORDS.items() if self.probabilities or not on]
        return {"type": "string", "pattern": f"^(?:{_any_case(*words)})$"}


class _Rows:
    """How one model's rows are described: as objects, and as the values of the split forms."""

    def __init__(self, model: str | None, signature: ModelSignature | None) -> None:
        self.signature = signature
        if model and signature is not None:
            self.row: dict[str, Any] = {"$ref": f"#/components/schemas/{_schema_name('Row_', model)}"}
            self.values: dict[str, Any] = {"$ref": f"#/components/schemas/{_schema_name('Values_', model)}"}
            self.columns: dict[str, Any] = {"const": list(signature.names),
                                            "description": "the model's columns, in this order"}
            self.result: dict[str, Any] = {"$ref": f"#/components/schemas/{_schema_name('Result_', model)}"}
        else:  # nothing deployed yet: every request is answered 503 (or 400 when it is no request at all)
            self.row, self.values, self.result = JSON_OBJECT, {"type": "array"}, JSON_OBJECT
            self.columns = {"type": "array", "items": {"type": "string"}}


def _score_body(rows: _Rows, flags: _Flags, max_rows: int | None) -> dict[str, Any]:
    """One of the row forms (Azure AutoML's, then MLflow's scoring server's), exactly one per request."""
    records: dict[str, Any] = {"type": "array", "minItems": 1, "items": rows.row}
    values: dict[str, Any] = {"type": "array", "minItems": 1, "items": rows.values}
    if max_rows is not None:
        records["maxItems"] = values["maxItems"] = max_rows
    split = {"type": "object", "required": ["columns", "data"],
             "properties": {"columns": rows.columns, "data": values}}
    properties: dict[str, Any] = {key: records if form == "records" else split for key, form in ROW_FORMS.items()}
    properties["probabilities"] = _Flags.body(flags.probabilities)
    properties["explain"] = _Flags.body(flags.explain)
    return {"type": "object", "properties": properties, "oneOf": [{"required": [key]} for key in ROW_FORMS]}


def _score_operation(operation_id: str, summary: str, rows: _Rows, *, extras: bool, max_rows: int | None
                     ) -> dict[str, Any]:
    flags = _Flags(rows.signature, extras)
    example_row = dict(rows.signature.example) if rows.signature else {}
    series = rows.signature.time_series if rows.signature else None
    answered = "one label (or, for a regression model, one number) per row"
    if series is not None and rows.signature is not None:  # a forecaster: what it can answer is bounded in time
        summary = f"{summary}: a forecast per row of a future time"
        answered = f"one number per row: the forecast of {rows.signature.target} at its time"
    operation: dict[str, Any] = {
        "operationId": operation_id, "summary": summary, "security": KEY,
        "parameters": [{"name": "probabilities", "in": "query", "schema": flags.query(),
                        "description": "also return the probability of each class (true, false, 1 or 0; a "
                                       "classifier's only)"}],
        "requestBody": _json_body(_score_body(rows, flags, max_rows),
                                  {"data": [example_row]} if example_row else None),
        "responses": {
            "200": _json(answered, rows.result),
            "400": _error("bad rows: every bad row and field is named in details"),
            "401": UNAUTHORISED,
            "413": _error("too many rows or bytes"),
            "415": _error("not sent as application/json"),
            "502": _error("the model endpoint answered something unusable (Azure)"),
            "503": _error("no model deployed yet, or the model endpoint is busy (Azure)"),
            "504": _error("the model endpoint took too long (Azure)"),
        },
    }
    if series is not None:
        ids = f" of each series ({', '.join(series.series)})" if series.series else ""
        operation["description"] = (
            f"Each row names a time in '{series.time_column}'{ids} and the values of the known features then. A "
            f"time must be one of the {series.horizon} {series.frequency} period(s) after the end of its series' "
            "history: an earlier or later one, one off the grid, or a series without history is a 400 that "
            "says why.")
    return operation


def _simple(operation_id: str, summary: str, *params: dict[str, Any],
            responses: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "security": KEY,
                                 "responses": {**(responses or {"200": _json(summary)}), "401": UNAUTHORISED}}
    if params:
        operation["parameters"] = list(params)
    return operation


def _schema_name(prefix: str, model: str) -> str:
    """A component name: model names already have its characters (shared.naming), so no two models share one."""
    return prefix + "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in model)


def _path(name: str, location: str = "path", **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": location, "required": location == "path", "schema": {"type": "string", **schema}}


def _model_paths(name: str, signature: ModelSignature, *, extras: bool, max_rows: int | None
                 ) -> dict[str, Any]:
    """The routes of one deployed model, each taking that model's rows."""
    rows = _Rows(name, signature)
    # ":" is in no model name: no two models' operations share an id.
    named = _score_operation(f"score:{name}", f"Score rows with {name} in production", rows, extras=extras,
                             max_rows=max_rows)
    versioned = _score_operation(f"score:{name}:version", f"Score rows with a registered version of {name}",
                                 rows, extras=extras, max_rows=max_rows)
    version = _path("version", pattern="^[0-9]+$")
    version["description"] = ("a registered version; the rows described are those of the version in production "
                              "(another version takes the columns it was trained on)")
    versioned["parameters"] = [version, *versioned["parameters"]]
    versioned["responses"]["404"] = _error("no such version")
    return {f"/models/{name}/score": {"post": named}, f"/models/{name}/versions/{{version}}/score": {"post": versioned}}


def _run_body() -> dict[str, Any]:
    name = {"type": "string", "pattern": MODEL_NAME_PATTERN}
    names = [*metrics.METRICS, *metrics.ALIASES]
    return {"type": "object", "additionalProperties": False, "properties": {
        "model": {**name, "description": "the dataset (and model) name"},
        "ExperimentName": {**name, "description": "model, as Azure ML names it (send one of the two)"},
        "dataset_version": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_DATASET_VERSION,
                            "description": "default: the latest"},
        "metric": {"type": ["string", "null"], "enum": [*names, None],
                   "description": "the primary metric (any case); it must suit the dataset's task"},
        "time_budget_s": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_BUDGET_S},
        "exclude": {"type": "array", "items": {"type": "string"}, "description": "columns to leave out"}},
        "oneOf": [{"required": ["model"]}, {"required": ["ExperimentName"]}]}


def _pipeline_paths() -> dict[str, Any]:
    run_id = _path("run_id")
    started = _simple("start_run", "Start a run of a published pipeline (202 with its Id)",
                      _path("name", enum=sorted(PUBLISHED)),
                      {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"},
                       "description": "re-posting with the same key starts one run, not two"},
                      responses={"202": _json("the run, with Id and links"),
                                 "400": _error("a bad field, named in details"),
                                 "404": _error("no such pipeline or dataset"),
                                 "415": _error("not sent as application/json")})
    started["requestBody"] = _json_body(_run_body(), {"model": "bank", "metric": "AUC_weighted"})
    return {
        "/pipelines": {"get": _simple("list_pipelines", "The published pipelines and their steps")},
        "/pipelines/{name}/runs": {"post": started},
        "/runs": {"get": _simple("list_runs", "Recent training runs", _path("model", "query"))},
        "/runs/{run_id}": {
            "get": _simple("get_run", "One training run: state, step, progress, metrics and decision", run_id,
                           responses={"200": _json("the run"), "404": _error("no such run")}),
            "delete": _simple("cancel_run", "Cancel a queued or running run", run_id,
                              responses={"202": _json("cancelled"), "404": _error("no such run"),
                                         "409": _error("the run already ended")})},
        "/runs/{run_id}/report": {"get": _simple(
            "run_report", "The run's report: charts, leaderboard, guardrails, decision", run_id,
            responses={"200": {"description": "the report", "content": {"text/html": {"schema": {"type": "string"}}}},
                       "404": _error("no report for this run (yet)"),
                       "501": _error("reports are the local backend's")})},
    }


def document(deployed: dict[str, ModelSignature], default_model: str | None, server_url: str = "/api", *,
             max_rows: int | None = None, extras: bool = True) -> dict[str, Any]:
    """``deployed`` maps each model in production to its signature; ``extras``: whether the backend answers
    probabilities and explanations (the local one does, the Azure endpoint returns labels only)."""
    default_signature = deployed.get(default_model or "")
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object", "properties": {
                "row": {"type": ["integer", "null"]}, "field": {"type": ["string", "null"]},
                "error": {"type": "string"}}}}}},
    }
    paths: dict[str, Any] = {}
    for name, signature in deployed.items():
        schemas[_schema_name("Row_", name)] = _row_schema(signature)
        schemas[_schema_name("Values_", name)] = _values_schema(signature)
        schemas[_schema_name("Result_", name)] = _result_schema(signature)
    paths["/score"] = {"post": _score_operation(
        "score", f"Score rows with the default model ({default_model or 'none yet'})",
        _Rows(default_model, default_signature), extras=extras, max_rows=max_rows)}
    for name, signature in sorted(deployed.items()):
        paths.update(_model_paths(name, signature, extras=extras, max_rows=max_rows))
    paths["/health"] = {"get": {"operationId": "health", "summary": "Liveness", "security": [],
                                "responses": {"200": _json("ok")}}}
    paths["/models"] = {"get": _simple("list_models", "Registered models, their versions and which one serves")}
    paths["/models/{name}/drift"] = {"get": _simple(
        "drift", "The last drift window of the model in production", _path("name"),
        responses={"200": _json("PSI per feature, predicted-positive rate"), "404": _error("no drift window yet")})}
    paths["/status"] = {"get": _simple(
        "status", "Each upload's state, and the models",
        {"name": "limit", "in": "query", "required": False, "description": "the most recent uploads to list",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
        responses={"200": _json("Each upload's state, and the models"), "400": _error("a bad limit")})}
    paths.update(_pipeline_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "CSV to endpoint: scoring API", "version": "1.0.0",
                 "description": "Score rows with the models trained from CSV uploads: each deployed model has its "
                                "own routes, which take its rows. Every route but /health needs the function "
                                "key in the x-functions-key header (or the code query), and every body is sent "
                                "as application/json (a request without a Content-Type is refused, 415)."},
        "servers": [{"url": server_url}],
        "components": {"schemas": schemas, "securitySchemes": {
            "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
            "functionCode": {"type": "apiKey", "in": "query", "name": "code"}}},
        "security": KEY,
        "paths": paths,
    }
