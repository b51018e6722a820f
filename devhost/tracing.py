"""Request telemetry for each invocation, as the Functions host records it (OpenTelemetry spans)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("devhost")
_propagator = TraceContextTextMapPropagator()

KIND_BY_TRIGGER = {"http": SpanKind.SERVER}  # other triggers are messages consumed: CONSUMER


def parent_context(trace_parent: str) -> otel_context.Context | None:
    return _propagator.extract({"traceparent": trace_parent}) if trace_parent else None


def traceparent_of(event: Mapping[str, Any]) -> str:
    """An Event Grid event's trace context: the CloudEvents extension, or an Azure ML run's tags."""
    if isinstance(event.get("traceparent"), str):
        return str(event["traceparent"])
    data = event.get("data")
    tags = data.get("runTags") if isinstance(data, dict) else None
    return str(tags.get("traceparent", "")) if isinstance(tags, dict) else ""


@contextlib.contextmanager
def instrumentation(enabled: bool) -> Iterator[None]:
    """Switch automatic dependency telemetry off for the host's own polling, and back on for user code."""
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, not enabled))
    try:
        yield
    finally:
        otel_context.detach(token)
