"""Request telemetry for each invocation, as the Functions host records it (OpenTelemetry spans)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from devhost.request_sampling import Samplers

tracer = trace.get_tracer("devhost")
_propagator = TraceContextTextMapPropagator()

KIND_BY_TRIGGER = {"http": SpanKind.SERVER}  # other triggers are messages consumed: CONSUMER
# The span attribute the Azure Monitor exporter turns into the envelope's sampleRate (a percentage).
SAMPLE_RATE_ATTRIBUTE = "_MS.sampleRate"


_samplers: Samplers | None = None


def samplers() -> Samplers:
    """The per-function request samplers, set from the environment at the first invocation (after the host has
    loaded local.settings.json)."""
    global _samplers
    if _samplers is None:
        _samplers = Samplers.from_env(os.environ)
    return _samplers


def _observe_not_traced(options: Any) -> Iterator[metrics.Observation]:
    for function, count in samplers().not_traced().items():
        yield metrics.Observation(count, {"function": function})


metrics.get_meter("devhost").create_observable_counter(
    "invocations_not_traced", callbacks=[_observe_not_traced],
    description="invocations over their function's trace budget: counted in invocation_duration_ms and in the "
                "next trace's sample rate, not traced")


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
