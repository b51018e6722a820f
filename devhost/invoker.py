"""Call a user function the way the Python worker does, and log each invocation."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from typing import Any

import azure.functions as func
from azure.functions import _abc as abc_types
from azure.functions.meta import Datum, get_binding_registry

from devhost.discovery import FunctionSpec

log = logging.getLogger("devhost.invocations")


class _TraceContext(abc_types.TraceContext):
    def __init__(self, trace_parent: str = "", trace_state: str = "") -> None:
        self._parent = trace_parent
        self._state = trace_state

    @property
    def trace_state(self) -> str:
        return self._state

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(abc_types.RetryContext):
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._count = retry_count
        self._max = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._count

    @property
    def max_retry_count(self) -> int:
        return self._max

    @property
    def exception(self) -> abc_types.RpcException | None:  # type: ignore[override]
        return None


class InvocationContext(func.Context):
    _local = threading.local()

    def __init__(self, spec: FunctionSpec, invocation_id: str, trace_parent: str, retry: int, max_retry: int) -> None:
        self._spec = spec
        self._id = invocation_id
        self._trace = _TraceContext(trace_parent)
        self._retry = _RetryContext(retry, max_retry)

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._spec.name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> abc_types.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> abc_types.RetryContext:
        return self._retry


def decode_trigger(spec: FunctionSpec, datum: Datum, metadata: dict[str, Datum] | None = None) -> Any:
    """Build the trigger object with the library's own converter (as the worker does)."""
    converter = get_binding_registry().get(spec.trigger_type)
    if converter is None:
        raise ValueError(f"no converter for binding type {spec.trigger_type}")
    return converter.decode(datum, trigger_metadata=metadata or {})


def encode_http_response(result: Any) -> Datum:
    converter = get_binding_registry().get("http")
    encoded: Datum = converter.encode(result, expected_type=None)
    return encoded


def _arguments(spec: FunctionSpec, trigger_value: Any, context: InvocationContext) -> dict[str, Any]:
    kwargs: dict[str, Any] = {spec.trigger_arg: trigger_value}
    if spec.wants_context:
        kwargs["context"] = context
    return kwargs


def _log(spec: FunctionSpec, trigger: str, invocation_id: str, started: float, error: BaseException | None) -> None:
    duration_ms = (time.perf_counter() - started) * 1000
    if error is None:
        log.info("Executed 'Functions.%s' (Succeeded, trigger=%s, Id=%s, Duration=%.1fms)",
                 spec.name, trigger, invocation_id, duration_ms)
    else:
        log.error("Executed 'Functions.%s' (Failed, trigger=%s, Id=%s, Duration=%.1fms): %s: %s",
                  spec.name, trigger, invocation_id, duration_ms, type(error).__name__, error)


def invoke_sync(spec: FunctionSpec, trigger_value: Any, *, trigger: str, trace_parent: str = "",
                retry: int = 0, max_retry: int = 0) -> Any:
    """Run the function in the calling thread (async functions get their own loop)."""
    invocation_id = str(uuid.uuid4())
    context = InvocationContext(spec, invocation_id, trace_parent, retry, max_retry)
    started = time.perf_counter()
    try:
        kwargs = _arguments(spec, trigger_value, context)
        result = asyncio.run(spec.user_function(**kwargs)) if spec.is_async else spec.user_function(**kwargs)
    except BaseException as error:
        _log(spec, trigger, invocation_id, started, error)
        raise
    _log(spec, trigger, invocation_id, started, None)
    return result


async def invoke_async(spec: FunctionSpec, trigger_value: Any, *, trigger: str, trace_parent: str = "") -> Any:
    """Run the function from the event loop: coroutines inline, sync code on a worker thread."""
    if not spec.is_async:
        return await asyncio.to_thread(invoke_sync, spec, trigger_value, trigger=trigger, trace_parent=trace_parent)
    invocation_id = str(uuid.uuid4())
    context = InvocationContext(spec, invocation_id, trace_parent, 0, 0)
    started = time.perf_counter()
    try:
        result = await spec.user_function(**_arguments(spec, trigger_value, context))
    except BaseException as error:
        _log(spec, trigger, invocation_id, started, error)
        raise
    _log(spec, trigger, invocation_id, started, None)
    return result
