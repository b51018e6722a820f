"""OpenAPI 3 description of the HTTP API, with row schemas generated from the deployed models."""

from __future__ import annotations

from typing import Any

from shared.model_contract import ModelSignature
from shared.schema import DATETIME
from shared.scoring import ROW_FORMS

KEY: list[dict[str, list[str]]] = [{"functionKey": []}]
SCORE_RESULT: dict[str, Any] = {"type": "object", "required": ["result", "model"], "properties": {
    "result": {"type": "array", "items": {"type": ["string", "number"]},
               "description": "a label per row, or a number per row for a regression model"},
    "model": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
    "probabilities": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "number"}}},
    "unseen_categories": {"type": "integer"},
    "explanations": {"type": "array", "description": "with explain: each row's contributions per column toward "
                     "its class (or predicted number); base + contributions = the model's output (log odds, "
                     "probability, or the predicted value)", "items": {"type": "object", "properties": {
                         "class": {"type": "string"}, "output": {"type": "string"}, "base": {"type": "number"},
                         "contributions": {"type": "object", "additionalProperties": {"type": "number"}}}}}}}


def _row_schema(signature: ModelSignature) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for feature in signature.features:
        if feature.is_numeric:
            properties[feature.name] = {"type": [feature.kind, "null"]}
        elif feature.kind == DATETIME:
            properties[feature.name] = {"type": ["string", "null"], "description": "An ISO 8601 date, or date and "
                                        "time (read as written: an offset is not applied)",
                                        "examples": ["2024-05-31", "2024-05-31T14:30:00"]}
        else:
            seen = list(feature.categories[:50])
            properties[feature.name] = {
                "type": ["string", "null"],
                "description": "Categories seen in training: " + ", ".join(seen)
                + (" ..." if len(feature.categories) > 50 else "") + " (others are accepted and counted)",
                "examples": seen[:3],
            }
    required = list(properties)
    for name in sorted(signature.ignored):
        properties[name] = {"description": "excluded from training: accepted and ignored"}
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _result_schema(signature: ModelSignature) -> dict[str, Any]:
    """The score response of one model: its classes as labels, or numbers for regression."""
    generic: dict[str, Any] = SCORE_RESULT
    properties = dict(generic["properties"])
    if signature.regression:
        properties["result"] = {"type": "array", "items": {"type": "number"},
                                "description": f"the predicted {signature.target} per row"}
        properties.pop("probabilities")
    else:
        label: dict[str, Any] = {"type": "string"}
        if signature.classes:
            label["enum"] = list(signature.classes)
        properties["result"] = {"type": "array", "items": label, "description": f"the predicted {signature.target}"
                                " per row"}
    return {**generic, "properties": properties}


def _json_body(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"required": True, "content": {"application/json": content}}


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _score_operation(model: str, signature: ModelSignature | None, summary: str) -> dict[str, Any]:
    row = {"$ref": f"#/components/schemas/{_row_name(model)}"} if signature else {"type": "object"}
    result = _result_name(model) if signature else "ScoreResult"
    example_row = dict(signature.example) if signature else {}
    records = {"type": "array", "minItems": 1, "items": row}
    split = {"type": "object", "required": ["columns", "data"], "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "array"}}}}
    options = {"probabilities": {"type": "boolean", "default": False}, "explain": {"type": "boolean", "default": False}}
    # Azure AutoML's forms, then MLflow's scoring server's: one of them per request.
    body = {"oneOf": [{"type": "object", "required": [key], "properties": {
        key: records if form == "records" else split, **options}} for key, form in ROW_FORMS.items()]}
    return {
        "summary": summary, "security": KEY,
        "parameters": [{"name": "probabilities", "in": "query", "schema": {"type": "boolean"},
                        "description": "also return the probability of each class (classification only: a "
                                       "regression model answers 400)"}],
        "requestBody": _json_body(body, {"data": [example_row]} if example_row else None),
        "responses": {
            "200": {"description": "one label (or, for a regression model, one number) per row", "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{result}"}}}},
            "400": _error("bad rows: every bad row and field is named in details"),
            "401": _error("missing or wrong function key"),
            "413": _error("too many rows or bytes"),
            "415": _error("not JSON"),
            "503": _error("no model deployed yet"),
        },
    }


def _with_params(operation: dict[str, Any], *params: dict[str, Any]) -> dict[str, Any]:
    return {**operation, "parameters": [*params, *operation.get("parameters", [])]}


def _simple(summary: str) -> dict[str, Any]:
    return {"summary": summary, "security": KEY, "responses": {"200": {"description": summary},
                                                               "401": _error("missing or wrong function key")}}


def _row_name(model: str) -> str:
    return "Row_" + "".join(ch if ch.isalnum() else "_" for ch in model)


def _result_name(model: str) -> str:
    return "Result_" + _row_name(model).removeprefix("Row_")


def document(deployed: dict[str, ModelSignature], default_model: str | None,
             server_url: str = "/api") -> dict[str, Any]:
    """``deployed`` maps each model in production to its signature."""
    default_signature = deployed.get(default_model or "")
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object", "properties": {
                "row": {"type": ["integer", "null"]}, "field": {"type": ["string", "null"]},
                "error": {"type": "string"}}}}}},
        "ScoreResult": SCORE_RESULT,
    }
    for name, signature in deployed.items():
        schemas[_row_name(name)] = _row_schema(signature)
        schemas[_result_name(name)] = _result_schema(signature)
    name_param: dict[str, Any] = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    if deployed:
        name_param["schema"]["enum"] = sorted(deployed)
    run_param = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
    version_param = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    paths: dict[str, Any] = {
        "/score": {"post": _score_operation(default_model or "", default_signature,
                                            f"Score rows with the default model ({default_model or 'none yet'})")},
        "/models/{name}/score": {"post": _with_params(
            _score_operation(default_model or "", default_signature, "Score rows with the named model in production"),
            name_param)},
        "/models/{name}/versions/{version}/score": {"post": _with_params(
            _score_operation("", None, "Score rows with a registered version"), name_param, version_param)},
        "/health": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok"}}}},
        "/models": {"get": _simple("Registered models, their versions and which one serves")},
        "/status": {"get": _simple("Each upload's state, and the models")},
        "/runs": {"get": _with_params(_simple("Recent training runs"),
                                      {"name": "model", "in": "query", "schema": {"type": "string"}})},
        "/runs/{run_id}": {
            "get": _with_params({**_simple("One training run: state, step, progress, metrics and decision"),
                                 "responses": {"200": {"description": "the run"}, "404": _error("no such run")}},
                                run_param),
            "delete": _with_params({**_simple("Cancel a queued or running run"),
                                    "responses": {"202": {"description": "cancelled"}, "404": _error("no such run"),
                                                  "409": _error("the run already ended")}}, run_param)},
        "/pipelines": {"get": _simple("The published pipelines and their steps")},
        "/pipelines/{name}/runs": {"post": _with_params({
            **_simple("Start a run of a published pipeline (202 with its Id)"),
            "requestBody": _json_body({"type": "object", "required": ["model"], "properties": {
                "model": {"type": "string", "description": "dataset / model name (or ExperimentName)"},
                "ExperimentName": {"type": "string"},
                "dataset_version": {"type": "integer", "minimum": 1, "description": "default: the latest"},
                "metric": {"type": "string"}, "time_budget_s": {"type": "integer", "minimum": 1},
                "exclude": {"type": "array", "items": {"type": "string"}}}, "additionalProperties": False},
                {"model": "bank", "metric": "AUC_weighted", "time_budget_s": 60}),
            "responses": {"202": {"description": "the run, with Id and links"},
                          "400": _error("a bad field, named in details"),
                          "404": _error("no such pipeline or dataset")}},
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"},
             "description": "re-posting with the same key starts one run, not two"})},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "CSV to endpoint: scoring API", "version": "1.0.0",
                 "description": "Score rows with the models trained from CSV uploads. Every route but /health "
                                "needs the function key in the x-functions-key header (or the code query)."},
        "servers": [{"url": server_url}],
        "components": {"schemas": schemas, "securitySchemes": {
            "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}}},
        "security": KEY,
        "paths": paths,
    }
