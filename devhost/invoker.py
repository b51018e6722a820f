"""Call a user function the way the Python worker does, and log each invocation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import azure.functions as func
from azure.functions import _abc as abc_types
from azure.functions.meta import Datum, get_binding_registry
from azurefunctions.extensions.base import Datum as ExtensionDatum
from azurefunctions.extensions.base import get_binding_registry as extension_registry
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from devhost.discovery import FunctionSpec
from devhost.tracing import KIND_BY_TRIGGER, SAMPLE_RATE_ATTRIBUTE, parent_context, samplers, tracer
from shared import telemetry
from shared.printable import printable

log = logging.getLogger("devhost.invocations")


class _TraceContext(abc_types.TraceContext):
    """The invocation's W3C trace context: its span's, or the caller's when there is no span (telemetry off)."""

    def __init__(self, span: Any, caller: str = "") -> None:
        self._span = span
        self._caller = caller

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        # Formatted when asked for: most functions never ask.
        return format_traceparent(self._span) or self._caller

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

    def __init__(self, spec: FunctionSpec, invocation_id: str, trace: _TraceContext, retry: int,
                 max_retry: int) -> None:
        self._spec = spec
        self._id = invocation_id
        self._trace = trace
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


@dataclass(frozen=True)
class ModelBindingData:
    """What the Functions host sends a worker for an SDK-type binding (the gRPC ``ModelBindingData`` message): where
    the resource is, not its content."""

    content: str
    version: str = "1.0"
    source: str = "AzureStorageBlobs"
    content_type: str = "application/json"


def sdk_type_of(spec: FunctionSpec) -> type | None:
    """The trigger parameter's type when an SDK-type extension takes it (a BlobClient, say), else None."""
    try:
        annotation = typing.get_type_hints(spec.user_function).get(spec.trigger_arg)
    except (NameError, TypeError):
        return None
    registry = extension_registry()
    return annotation if registry.check_supported_type(annotation) else None


def decode_sdk_trigger(spec: FunctionSpec, pytype: type, container: str, blob_name: str) -> Any:
    """The trigger object, built by the installed extension's own converter from the binding data the host sends,
    as the worker builds it (the connection setting names the storage the function process sees)."""
    converter = extension_registry().get(spec.trigger_type)
    if converter is None:
        raise ValueError(f"no SDK-type converter for binding type {spec.trigger_type}")
    content = json.dumps({"Connection": spec.trigger.get("connection") or "AzureWebJobsStorage",
                          "ContainerName": container, "BlobName": blob_name})
    return converter.decode(ExtensionDatum(ModelBindingData(content), "model_binding_data"), trigger_metadata={},
                            pytype=pytype)


class BlobStream(func.blob.InputStream):
    """A blob trigger's input read from a local copy of the blob instead of from memory: the function can read
    it a chunk at a time, and seek back to read it again, whatever its size."""

    def __init__(self, source: BinaryIO, decoded: func.InputStream) -> None:
        super().__init__(data=b"", name=decoded.name, uri=decoded.uri, length=decoded.length,
                         blob_properties=getattr(decoded, "blob_properties", None),
                         metadata=getattr(decoded, "metadata", None))
        self._io = source  # type: ignore[assignment]
        source.seek(0)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._io.seek(offset, whence)

    def tell(self) -> int:
        return self._io.tell()


def decode_blob_trigger(spec: FunctionSpec, source: BinaryIO, metadata: dict[str, Datum]) -> Any:
    """The blob trigger's object as the library's converter builds it (name, length, properties, metadata), its
    content streamed from ``source``."""
    decoded = decode_trigger(spec, Datum(b"", "bytes"), metadata)
    if not isinstance(decoded, func.blob.InputStream):  # another converter: give it the bytes, as before
        source.seek(0)
        return decode_trigger(spec, Datum(source.read(), "bytes"), metadata)
    return BlobStream(source, decoded)


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
                  spec.name, trigger, invocation_id, duration_ms, type(error).__name__, printable(error))


def _record_outcome(span: Any, result: Any) -> None:
    status = getattr(result, "status_code", None)
    if status is not None:
        span.set_attribute("http.response.status_code", int(status))
        if int(status) >= 500:
            span.set_status(Status(StatusCode.ERROR))


def format_traceparent(span: Any) -> str:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


Attributes = Callable[[], dict[str, Any]]  # built only for a traced invocation


@contextlib.contextmanager
def _start_span(spec: FunctionSpec, trigger: str, trace_parent: str, invocation_id: str,
                attributes: Attributes | None) -> Iterator[Any]:
    """The invocation's request span (SERVER for HTTP, CONSUMER for messages), continuing the caller's trace.

    Only a sampled invocation gets a real span; the others run under a span context marked not sampled, which
    costs a few microseconds and keeps their events and child spans in the caller's operation (and drops the
    child spans, as the request was).
    """
    if not telemetry.exporting():
        yield INVALID_SPAN
        return
    parent = parent_context(trace_parent) or otel_context.get_current()
    caller = trace.get_current_span(parent).get_span_context()
    rate = 0.0 if caller.is_valid and not caller.trace_flags.sampled else samplers().decide(spec.name)
    # User code is always instrumented, even when the host polled for its trigger quietly.
    context = otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, False, parent)
    if not rate:
        trace_id = caller.trace_id if caller.is_valid else random.getrandbits(128)
        quiet = NonRecordingSpan(SpanContext(trace_id, random.getrandbits(64), is_remote=False))
        token = otel_context.attach(trace.set_span_in_context(quiet, context))
        try:
            yield quiet
        finally:
            otel_context.detach(token)
        return
    token = otel_context.attach(context)
    try:
        span_attributes = {"faas.trigger": trigger, "faas.invocation_id": invocation_id,
                           **(attributes() if attributes else {})}
        if rate < 100.0:
            span_attributes[SAMPLE_RATE_ATTRIBUTE] = rate
        kind = KIND_BY_TRIGGER.get(trigger, SpanKind.CONSUMER)
        with tracer.start_as_current_span(spec.name, kind=kind, attributes=span_attributes) as span:
            yield span
    finally:
        otel_context.detach(token)


def _measure(spec: FunctionSpec, trigger: str, started: float, result: Any, error: BaseException | None) -> None:
    """Every invocation's duration, in place: exact counts and percentiles whatever the trace sampling."""
    status = getattr(result, "status_code", None)
    outcome = "failed" if error is not None or (status is not None and int(status) >= 500) else "succeeded"
    telemetry.invocation_duration.record((time.perf_counter() - started) * 1000,
                                         (("function", spec.name), ("trigger", trigger), ("outcome", outcome)))


def _new_invocation_id() -> str:
    """A version-4 UUID from the random module, spelled directly: uuid.uuid4() asks the kernel for entropy on
    every call, and the UUID class checks and formats at length."""
    bits = f"{random.getrandbits(128):032x}"
    variant = "89ab"[int(bits[16], 16) & 3]  # the RFC 4122 variant: 10 in the top two bits
    return f"{bits[:8]}-{bits[8:12]}-4{bits[13:16]}-{variant}{bits[17:20]}-{bits[20:]}"


def invoke_sync(spec: FunctionSpec, trigger_value: Any, *, trigger: str, trace_parent: str = "",
                retry: int = 0, max_retry: int = 0, attributes: Attributes | None = None) -> Any:
    """Run the function in the calling thread (async functions get their own loop), inside a request span."""
    invocation_id = _new_invocation_id()
    started = time.perf_counter()
    with _start_span(spec, trigger, trace_parent, invocation_id, attributes) as span:
        context = InvocationContext(spec, invocation_id, _TraceContext(span, trace_parent), retry, max_retry)
        try:
            kwargs = _arguments(spec, trigger_value, context)
            result = asyncio.run(spec.user_function(**kwargs)) if spec.is_async else spec.user_function(**kwargs)
        except BaseException as error:
            _measure(spec, trigger, started, None, error)
            _log(spec, trigger, invocation_id, started, error)
            raise
        _record_outcome(span, result)
    _measure(spec, trigger, started, result, None)
    _log(spec, trigger, invocation_id, started, None)
    return result


async def invoke_async(spec: FunctionSpec, trigger_value: Any, *, trigger: str, trace_parent: str = "",
                       attributes: Attributes | None = None) -> Any:
    """Run the function from the event loop: coroutines inline, sync code on a worker thread."""
    if not spec.is_async:
        return await asyncio.to_thread(invoke_sync, spec, trigger_value, trigger=trigger, trace_parent=trace_parent,
                                       attributes=attributes)
    invocation_id = _new_invocation_id()
    started = time.perf_counter()
    with _start_span(spec, trigger, trace_parent, invocation_id, attributes) as span:
        context = InvocationContext(spec, invocation_id, _TraceContext(span, trace_parent), 0, 0)
        try:
            result = await spec.user_function(**_arguments(spec, trigger_value, context))
        except BaseException as error:
            _measure(spec, trigger, started, None, error)
            _log(spec, trigger, invocation_id, started, error)
            raise
        _record_outcome(span, result)
    _measure(spec, trigger, started, result, None)
    _log(spec, trigger, invocation_id, started, None)
    return result
