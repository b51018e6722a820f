"""Scoring requests: parse, check every row against the model's signature, predict.

Inputs go straight from JSON into one array per column (no DataFrame per
request): that costs more than the model itself.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NotRequired, TypedDict, TypeVar, cast

import numpy as np

from shared import telemetry
from shared.errors import BadRequest, NotSupported, PayloadTooLarge, UnsupportedMediaType
from shared.model_contract import Columns, ModelSignature, Results, ServedModel, date_inputs
from shared.schema import BOOLEAN_WORDS, DATETIME, NO_DATE, date_parts

FLOAT32_MAX = float(np.finfo(np.float32).max)
# What a flag in the query string may say (any case), and the spaces a boolean word may carry (a CSV cell's):
# the OpenAPI document states both with the same characters.
FLAG_WORDS = {"true": True, "false": False, "1": True, "0": False}
WORD_SPACE = " \t\r\n"
# A date value: ISO 8601 as training reads it (shared.schema.ISO_DATE), a real day of the calendar (29 February of
# leap years alone) at a real time: what Python reads, spelled as a pattern the OpenAPI document states as is.
_YEAR = r"(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = (r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              r"|02-(?:0[1-9]|1[0-9]|2[0-8]))")
DATE_SHAPE = (rf"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
              r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
              r"(?:Z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?)?")
_DATE = re.compile(DATE_SHAPE)
Row = dict[str, object]
T = TypeVar("T")


class ModelRef(TypedDict):
    name: str
    version: str


class ScoreResult(TypedDict):
    result: Results | list[float | None]  # labels, or numbers for a regression model (null: not finite)
    model: ModelRef
    probabilities: NotRequired[list[dict[str, float | None]]]
    explanations: NotRequired[list[dict[str, object]]]
    unseen_categories: NotRequired[int]


# Where a request's rows may be: Azure AutoML's own forms first, then those of MLflow's scoring server, so that
# clients written for either work unchanged. "records": a list of {column: value}; "split": {columns, data}.
ROW_FORMS = {"data": "records", "input_data": "split", "dataframe_records": "records",
             "dataframe_split": "split", "instances": "records", "inputs": "records"}


@dataclass(frozen=True)
class ScoreRequest:
    rows: list[Row]
    probabilities: bool
    explain: bool = False


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object of the body, refused when a key repeats: json would keep the last value silently."""
    built = dict(pairs)
    if len(built) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return built


# Built once: json.loads with a hook would build a decoder per call. Decoding the UTF-8 text first also skips
# json's guess at the bytes' encoding; with the hook, a one-row body costs what it did without.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 3, 60, 60, 6, 6


def shown(value: object) -> str:
    """A value as an error message quotes it: short, and whatever its nesting."""
    return _SHOWN.repr(value)


def _flag(payload: dict[str, object], name: str, query: str | None = None) -> bool:
    """One rule for every flag: a JSON boolean in the body (true/false or 1/0 in the query string), else a 400
    naming it. Either place may turn it on."""
    value = payload.get(name, False)
    if type(value) is not bool:
        raise BadRequest(f"{name!r} must be true or false, got {shown(value)}",
                         [{"row": None, "field": name, "error": "expected true or false"}])
    if query is None:
        return value
    word = FLAG_WORDS.get(query.lower())
    if word is None:
        raise BadRequest(f"the query's {name!r} must be true or false, got {shown(query)}",
                         [{"row": None, "field": name, "error": "expected true or false"}])
    return value or word


def _payload(body: bytes) -> dict[str, object]:
    try:
        payload = _DECODER.decode(body.decode("utf-8-sig"))  # a leading BOM is allowed, as json.loads allows it
    except _DuplicateKey as duplicate:
        raise BadRequest(f"the key {shown(duplicate.key)} appears more than once in one object: send each key "
                         "once", [{"row": None, "field": duplicate.key, "error": "duplicate key"}]) from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply: send {\"data\": [{column: value, ...}]}") from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON; send {\"data\": [{column: value, ...}]}") from None
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object: {\"data\": [{column: value, ...}]}")
    return payload


def require_json(content_type: str | None) -> None:
    """A body sent as anything but JSON is refused (415), and so is one sent with no Content-Type at all: every
    route that reads a body documents application/json, and a client that names no type is told so at once
    rather than guessed at."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"content type {shown(media)} is not supported; send application/json" if media
                                   else "the request has no Content-Type: send application/json")


def parse_request(body: bytes, *, max_rows: int, max_bytes: int, content_type: str | None = None,
                  probabilities_param: str | None = None) -> ScoreRequest:
    """Checks run cheapest first: media type and size before any parsing."""
    require_json(content_type)
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"the body has {len(body):,} bytes, the limit is {max_bytes:,}")
    payload = _payload(body)
    rows: list[Row]
    forms = [k for k in ROW_FORMS if k in payload]
    if not forms:
        raise BadRequest("missing 'data' (a list of rows) or 'input_data' ({columns, data}); MLflow's "
                         "'dataframe_records', 'dataframe_split', 'instances' and 'inputs' are read too")
    if len(forms) > 1:
        raise BadRequest(f"send the rows in one form, not {len(forms)}: {', '.join(map(repr, forms))}",
                         [{"row": None, "field": key, "error": "one row form per request"} for key in forms])
    key = forms[0]
    if ROW_FORMS[key] == "records":
        data = payload[key]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BadRequest(f"'{key}' must be a list of objects, one per row")
        rows = data
    else:
        rows = _split_form(payload[key], key)
    if not rows:
        raise BadRequest(f"'{key}' is empty: send at least one row")
    if len(rows) > max_rows:
        raise PayloadTooLarge(f"too many rows: {len(rows):,}, the limit is {max_rows:,}")
    return ScoreRequest(rows, _flag(payload, "probabilities", probabilities_param), _flag(payload, "explain"))


def _split_form(block: object, key: str) -> list[Row]:
    if not isinstance(block, dict) or not isinstance(block.get("columns"), list) \
            or not isinstance(block.get("data"), list):
        raise BadRequest(f"'{key}' must be {{\"columns\": [...], \"data\": [[...], ...]}}")
    columns: list[object] = block["columns"]
    if not all(type(name) is str for name in columns):
        raise BadRequest(f"'{key}.columns' must be a list of column names (strings)")
    if len(set(columns)) != len(columns):  # a second value for a column would silently win
        twice = next(name for index, name in enumerate(columns) if name in columns[:index])
        raise BadRequest(f"'{key}.columns' names {shown(twice)} more than once",
                         [{"row": None, "field": str(twice), "error": "duplicate column"}])
    rows: list[Row] = []
    for index, values in enumerate(block["data"]):
        if not isinstance(values, list) or len(values) != len(columns):
            raise BadRequest(f"{key}.data[{index}] must be a list of {len(columns)} values",
                             [{"row": index, "field": None, "error": "wrong number of values"}])
        rows.append(dict(zip(cast(list[str], columns), values, strict=True)))
    return rows


def _one_good_row(row: Row, signature: ModelSignature) -> tuple[Columns, int] | None:
    """The inputs of a one-row request in one pass, or None at the first doubt (the general path then names
    every problem). Most scoring requests are one row: this halves the cost of reading them."""
    keys = row.keys()
    if not (keys >= signature.required and keys <= signature.accepted):
        return None
    columns: Columns = {}
    unseen = 0
    for name, kind, known, inputs in signature.plan:
        value = row[name]
        if kind == "number":
            number = _number(value)
            if number is None:
                return None
            columns[name] = np.array([[number]], dtype=np.float32)
        elif kind == "boolean":
            flag = _boolean(value)
            if flag is None:
                return None
            columns[name] = np.array([[flag]], dtype=np.float32)
        elif kind == DATETIME:
            parts = _date(value)
            if parts is None:
                return None
            for input_name, part in zip(inputs, parts, strict=True):
                columns[input_name] = np.array([[part]], dtype=np.float32)
        elif value is None:
            columns[name] = np.array([[""]], dtype=object)
        elif type(value) is str:
            unseen += value not in known
            columns[name] = np.array([[value]], dtype=object)
        else:
            return None
    return columns, unseen


def columns_for(rows: list[Row], signature: ModelSignature) -> tuple[Columns, int]:
    """Model inputs from JSON rows, or BadRequest naming every bad row and field; also counts unseen categories.

    The signature's ``ignored`` columns (excluded from training) may be sent and are dropped.
    """
    if len(rows) == 1:
        read = _one_good_row(rows[0], signature)
        if read is not None:
            return read
    problems: list[dict[str, object]] = []
    expected = signature.required
    ignored = signature.ignored
    for index, row in enumerate(rows):
        for name in row.keys() - expected - ignored:
            problems.append({"row": index, "field": name, "error": "unknown column"})
        for name in expected - row.keys():
            problems.append({"row": index, "field": name, "error": "missing column"})
    columns: Columns = {}
    unseen = 0
    for feature in signature.features:
        name = feature.name
        values = [row.get(name) for row in rows]
        if feature.kind == "boolean":
            flags = _read_column(name, values, rows, _boolean, "true or false", problems)
            if flags is not None:
                columns[name] = np.array(flags, dtype=np.float32).reshape(-1, 1)
        elif feature.kind == DATETIME:
            dates = _read_column(name, values, rows, _date, "an ISO 8601 date or date and time", problems)
            if dates is not None:
                columns.update(date_inputs(feature, dates))
        elif feature.is_numeric:
            numbers = _read_column(name, values, rows, _number, "a number within float32 range", problems)
            if numbers is not None:
                columns[name] = np.array(numbers, dtype=np.float32).reshape(-1, 1)
        else:
            known = feature.known
            texts: list[str] = []
            for index, value in enumerate(values):
                if value is None:
                    texts.append("")
                elif isinstance(value, str):
                    texts.append(value)
                    unseen += value not in known
                elif name in rows[index]:
                    problems.append({"row": index, "field": name, "error": f"expected a string, got {shown(value)}"})
            if len(texts) == len(values):
                columns[name] = np.array(texts, dtype=object).reshape(-1, 1)
    if problems:
        raise BadRequest(f"{len(problems)} problem(s) in the request rows", problems[:100])
    return columns, unseen


def _read_column(name: str, values: list[object], rows: list[Row], read: Callable[[object], T | None],
                 expected: str, problems: list[dict[str, object]]) -> list[T] | None:
    """Each row's value as ``read`` makes it, or None when it refuses any: each refusal is named in ``problems``
    (a value the row lacks is named as a missing column instead)."""
    read_values: list[T] = []
    for index, value in enumerate(values):
        result = read(value)
        if result is not None:
            read_values.append(result)
        elif name in rows[index]:
            problems.append({"row": index, "field": name, "error": f"expected {expected}, got {shown(value)}"})
    return read_values if len(read_values) == len(values) else None


def _number(value: object) -> float | None:
    """The value as a model input (float32 range; NaN for null), else None. A JSON boolean is no number here,
    and NaN and infinity fail the range check."""
    if value is None:
        return math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= FLOAT32_MAX:
        return float(value)
    return None


def _date(value: object) -> tuple[float, ...] | None:
    """A date's parts (``shared.schema.DATE_PARTS``), all NaN for null, else None."""
    if value is None:
        return NO_DATE
    return date_parts(value) if type(value) is str and _DATE.fullmatch(value) else None


def _boolean(value: object) -> float | None:
    """1.0 / 0.0 for true / false (JSON booleans, their words in any case, 1 and 0), NaN for null, else None."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return BOOLEAN_WORDS.get(value.strip(WORD_SPACE).lower())
    if isinstance(value, (int, float)) and value in (0, 1):
        return float(value)
    return None


def _finite(value: float) -> float | None:
    """A number as JSON can carry it: a model far outside what it was trained on may answer infinity or NaN,
    which JSON has no words for; those are null."""
    return value if math.isfinite(value) else None


def _finite_numbers(explanation: dict[str, object]) -> dict[str, object]:
    base, contributions = explanation.get("base"), explanation.get("contributions")
    if isinstance(base, float):
        explanation["base"] = _finite(base)
    if isinstance(contributions, dict):
        for name, value in contributions.items():
            if isinstance(value, float):
                contributions[name] = _finite(value)
    return explanation


def record_scored(tally_key: tuple[tuple[str, str], ...], results: Results, unseen: int, elapsed_ms: float,
                  labelled: bool) -> None:
    """What every scoring call leaves in telemetry, whichever backend computed it: the model's latency
    histogram, its rows, its labels tallied, and the categories it never saw in training."""
    telemetry.score_latency.record(elapsed_ms, tally_key)
    telemetry.rows_scored.add(len(results), tally_key)
    if labelled:
        labels = cast(list[str], results)  # a classifier's results are its labels
        for label in set(labels):
            telemetry.predicted_labels.add(labels.count(label), (*tally_key, ("label", label)))
    if unseen:
        telemetry.unseen_categories.add(unseen, tally_key)


def score(request: ScoreRequest, served: ServedModel) -> ScoreResult:
    """Predict for validated rows with a served model."""
    signature = served.signature
    if request.probabilities and not signature.task.predicts_classes:
        raise BadRequest(f"model {served.name} v{served.version} is a regression model: it predicts a number "
                         f"for {signature.target!r}, not class probabilities; leave out 'probabilities'")
    if request.explain and served.unavailable_explanations:
        raise NotSupported(served.unavailable_explanations)
    columns, unseen = columns_for(request.rows, signature)
    tally_key = (("model", served.name), ("version", served.version))
    started = time.perf_counter()
    if telemetry.recording():  # the dependency only matters in a sampled trace
        with telemetry.span("predict", attributes={**dict(tally_key), "rows": len(request.rows)}):
            outputs = served.predict_rows(request.rows, columns, request.probabilities)
    else:
        outputs = served.predict_rows(request.rows, columns, request.probabilities)
    elapsed_ms = (time.perf_counter() - started) * 1000
    signature = served.signature  # a remote model names its classes in its answer
    results = served.results(outputs)
    if served.monitor is not None:
        served.monitor.observe(columns, results)
    record_scored(tally_key, results, unseen, elapsed_ms, signature.task.predicts_classes)
    answered: Results | list[float | None] = results
    if signature.regression and not all(map(math.isfinite, cast(list[float], results))):
        answered = [_finite(value) for value in cast(list[float], results)]
    result: ScoreResult = {"result": answered, "model": {"name": served.name, "version": served.version}}
    if request.probabilities:
        classes = signature.classes
        result["probabilities"] = [{c: _finite(round(float(p), 6)) for c, p in zip(classes, row, strict=True)}
                                   for row in outputs]
    if request.explain:
        with telemetry.span("explain", attributes={**dict(tally_key), "rows": len(request.rows)}):
            result["explanations"] = [_finite_numbers(row) for row in served.explain(columns, results)]
    if unseen:
        result["unseen_categories"] = unseen
    return result
