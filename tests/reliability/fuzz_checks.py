"""Checks of our own beside schemathesis's (loaded through SCHEMATHESIS_HOOKS by test_fuzz_scoring_api): a
refusal says why, no answer echoes the function key, and each status seen is tallied for the test to read."""

from __future__ import annotations

import os
from typing import Any

import schemathesis


@schemathesis.check
def refusals_say_why(ctx: Any, response: Any, case: Any) -> bool | None:
    if 400 <= response.status_code < 500:
        body = response.json()
        if not (isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]):
            raise AssertionError(f"a {response.status_code} without an error message: {response.text[:200]}")
    return None


@schemathesis.check
def the_key_is_never_echoed(ctx: Any, response: Any, case: Any) -> bool | None:
    if os.environ["FUZZ_FUNCTION_KEY"] in response.text:
        raise AssertionError("the answer holds the function key")
    with open(os.environ["FUZZ_STATUS_LOG"], "a") as log:
        log.write(f"{response.status_code}\n")
    return None
