"""The status and drift routes on the Azure backend, called as the Functions host calls them."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from functions import status as module
from tests.azure.conftest import AzureStack, declared_functions, sample_csv


def call(function: str, url: str, params: dict[str, str] | None = None, **route: str) -> func.HttpResponse:
    request = func.HttpRequest("GET", url, params=params or {}, route_params=route, body=b"")
    response: func.HttpResponse = declared_functions()[function].get_user_function()(request)
    return response


@pytest.fixture()
def api(stack: AzureStack, monkeypatch: pytest.MonkeyPatch) -> AzureStack:
    monkeypatch.setattr(module, "get_backend", lambda: stack.backend)
    stack.upload(sample_csv(), path="bank/jan.csv")
    stack.upload(sample_csv(seed=8), path="other/jan.csv")
    return stack


@pytest.mark.parametrize("limit", ["abc", "0", "-1", "1001", "2.5", "1e3"])
def test_a_bad_limit_is_a_400_naming_the_field_not_a_silent_default(api: AzureStack, limit: str):
    response = call("status", "/api/status", {"limit": limit})
    body = json.loads(response.get_body())
    assert response.status_code == 400 and "limit must be a whole number from 1 to 1000" in body["error"]
    assert body["details"][0]["field"] == "limit"


def test_the_limit_bounds_the_uploads_listed(api: AzureStack):
    one = json.loads(call("status", "/api/status", {"limit": "1"}).get_body())
    both = json.loads(call("status", "/api/status").get_body())
    assert len(one["uploads"]) == 1 and len(both["uploads"]) == 2


def test_drift_before_any_deployment_is_a_404_that_says_why(api: AzureStack):
    response = call("drift", "/api/models/bank/drift", name="bank")
    assert response.status_code == 404 and "no drift window" in json.loads(response.get_body())["error"]
