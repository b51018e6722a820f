"""Calls to a managed online endpoint: one pooled session, timeouts, bounded retries with backoff.

Retried: 429 and 503 (the endpoint is throttling or scaling) and refused
connections; scoring has no side effects, so a retry cannot do work twice.
Not retried: a read timeout (a slow endpoint is not helped by more load).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import requests
from requests.adapters import HTTPAdapter

from shared.errors import BadGateway, BadRequest, GatewayTimeout, ServiceUnavailable
from shared.model_contract import Outputs

log = logging.getLogger(__name__)
RETRIED_STATUSES = (429, 503)
MAX_RETRY_AFTER_S = 10.0


def predictions_in(answer: object) -> list[object] | None:
    """The per-row outputs in an endpoint's answer: a JSON list (AutoML's scoring script), or MLflow's
    ``{"predictions": [...]}``; None for anything else. Scoring and the smoke test read answers alike."""
    if isinstance(answer, dict):
        answer = answer.get("predictions")
    return answer if isinstance(answer, list) else None


def endpoint_outputs(answer: object, rows: int, regression: bool) -> tuple[Outputs, tuple[str, ...], bool]:
    """The outputs of the ``ServedModel`` contract from a deployment's answer, the classes they are in, and
    whether they are labels read as certainties rather than probabilities.

    The app's scoring script answers ``predictions`` and, for a classifier, ``classes`` and ``probabilities``
    (shared/azure/endpoint_code/score.py). A deployment that gives labels only (Azure ML's MLflow server) is read
    as certain of its label. A number may be null where the model has none (one that is not finite, a row a
    forecasting model cannot forecast): read as not a number, as a local model's would be.
    """
    predictions = predictions_in(answer)
    if predictions is None or len(predictions) != rows:
        raise BadGateway(f"the model endpoint answered {rows} row(s) with {str(answer)[:100]!r}")
    if regression:
        if any(isinstance(v, bool) or not (v is None or isinstance(v, (int, float))) for v in predictions):
            raise BadGateway(f"the regression endpoint answered with a non-number: {str(answer)[:100]!r}")
        numbers = [np.nan if v is None else v for v in predictions]
        return np.asarray(numbers, dtype=np.float64).reshape(-1, 1), (), False
    named = answer.get("classes") if isinstance(answer, dict) else None
    table = answer.get("probabilities") if isinstance(answer, dict) else None
    if isinstance(named, list) and isinstance(table, list):
        classes = tuple(str(c) for c in named)
        try:
            outputs = np.asarray(table, dtype=np.float64)
        except (TypeError, ValueError):
            outputs = np.empty((0, 0))
        if outputs.shape != (rows, len(classes)) or len(set(classes)) != len(classes) or len(classes) < 2:
            raise BadGateway(f"the model endpoint answered probabilities that do not match {rows} row(s) and "
                             f"its classes: {str(answer)[:100]!r}")
        return outputs, classes, False
    labels = [str(p) for p in predictions]
    known = tuple(sorted(set(labels)))
    outputs = np.zeros((rows, len(known)), dtype=np.float64)
    outputs[np.arange(rows), [known.index(label) for label in labels]] = 1.0
    return outputs, known, True


def pooled_session(pool_size: int = 16) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class EndpointClient:
    def __init__(self, session: requests.Session, *, timeout_s: float, retries: int, backoff_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self.timeout = (min(5.0, timeout_s), timeout_s)  # (connect, read)
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep

    def post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        """The endpoint's JSON answer, or a typed error saying what went wrong."""
        data = json.dumps(body)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.post(url, data=data, timeout=self.timeout,
                                             headers={"Content-Type": "application/json", **headers})
            except requests.ConnectionError as error:
                if last:
                    raise ServiceUnavailable(f"the model endpoint cannot be reached: {type(error).__name__}") from None
                self.sleep(self._delay(attempt, None))
                continue
            except requests.Timeout:
                raise GatewayTimeout(f"the model endpoint did not answer within {self.timeout[1]:g} s") from None
            if response.status_code in RETRIED_STATUSES and not last:
                log.warning("Endpoint answered %s; retry %d of %d", response.status_code, attempt + 1, self.retries)
                self.sleep(self._delay(attempt, response.headers.get("Retry-After")))
                continue
            return self._answer(response)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(MAX_RETRY_AFTER_S, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return float(self.backoff_s * (2 ** attempt) * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not security

    @staticmethod
    def _answer(response: requests.Response) -> Any:
        status = response.status_code
        if status in RETRIED_STATUSES:
            raise ServiceUnavailable(f"the model endpoint is busy (HTTP {status}) after retries; try again later")
        if status in (400, 422):
            raise BadRequest(f"the model endpoint rejected the rows: {response.text[:300]}")
        if status in (401, 403):
            raise BadGateway(f"the model endpoint refused this app's identity (HTTP {status}): check its role "
                             "assignment on the workspace")
        if status >= 300:
            raise BadGateway(f"the model endpoint failed with HTTP {status}")
        try:
            return response.json()
        except ValueError:
            raise BadGateway(f"the model endpoint answered with invalid JSON: {response.text[:100]!r}") from None
