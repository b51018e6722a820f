"""Telemetry: Azure Monitor (OpenTelemetry) set up once per process, custom events, spans and metrics.

In Azure the connection string is the Function App's Application Insights;
locally the development host serves the same track API and sets the string.
Without a connection string (or with TELEMETRY_ENABLED=false) nothing is
exported and every call here is a cheap no-op.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.settings import env_flag

log = logging.getLogger("pipeline.events")
_propagator = TraceContextTextMapPropagator()
_configured = False
_tracer = trace.get_tracer("csv-to-endpoint")
_meter = metrics.get_meter("csv-to-endpoint")


def enabled() -> bool:
    return env_flag("TELEMETRY_ENABLED", True)


def worker_exports() -> bool:
    """True in Azure when the Functions Python worker itself exports to Application Insights."""
    return env_flag("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", False)


def configure(service_name: str) -> bool:
    """Start exporting to Application Insights (once per process); False when switched off."""
    global _configured
    if _configured:
        return True
    if worker_exports():
        # The Functions Python worker has already set up Azure Monitor: a second set-up would double every record.
        _configured = True
        return True
    connection = os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "")
    if not connection or not enabled():
        return False
    os.environ.setdefault("OTEL_SERVICE_NAME", service_name)
    if "IngestionEndpoint=http://127.0.0.1" in connection or "IngestionEndpoint=http://localhost" in connection:
        # The local endpoint is no Azure region: statsbeat would only complain about it.
        os.environ.setdefault("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
    from azure.monitor.opentelemetry import configure_azure_monitor

    options: dict[str, Any] = {}
    ratio = os.environ.get("TELEMETRY_SAMPLING_RATIO")
    if ratio:  # else the distro's default: at most 5 traces per second, which keeps scoring fast
        options["sampling_ratio"] = float(ratio)
    configure_azure_monitor(connection_string=connection, enable_live_metrics=False, **options)
    logging.getLogger("pipeline.events").setLevel(logging.INFO)
    _configured = True
    return True


def flush() -> None:
    """Export what is buffered (a short-lived process calls this before it exits)."""
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force = getattr(provider, "force_flush", None)
        if force is not None:
            force()
    for handler in logging.getLogger().handlers:
        handler.flush()


# Attributes every LogRecord has: an event property with one of these names would make logging raise.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def event(name: str, **properties: Any) -> None:
    """A custom event (Application Insights customEvents): a log record with the event name attribute.

    Properties named like a LogRecord attribute (``message``, ``name``, ...) are sent as ``event_<name>``.
    """
    clean = {f"event_{k}" if k in _RESERVED else k: v if isinstance(v, (str, int, float, bool)) else str(v)
             for k, v in properties.items() if v is not None}
    log.info("%s %s", name, " ".join(f"{k}={v}" for k, v in clean.items()),
             extra={"microsoft.custom_event.name": name, **clean})


def current_traceparent() -> str:
    """The W3C traceparent of the active span, to carry the operation across processes and events."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


@contextlib.contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, traceparent: str = "",
         attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """A span, continuing ``traceparent`` when given; exceptions mark it failed and propagate."""
    token = None
    if traceparent:
        token = otel_context.attach(_propagator.extract({"traceparent": traceparent}))
    try:
        with _tracer.start_as_current_span(name, kind=kind, attributes=attributes,
                                           record_exception=True, set_status_on_exception=True) as current:
            yield current
    finally:
        if token is not None:
            otel_context.detach(token)


def recording() -> bool:
    """True when the current trace is sampled: child spans are worth creating."""
    return trace.get_current_span().is_recording()


class _Tally:
    """Counts kept in a plain dict on the hot path and read by the exporter when it collects.

    Cheaper per request than OpenTelemetry counters (an attribute-set lookup each), same result:
    monotonically growing totals per set of attributes.
    """

    def __init__(self, name: str, description: str) -> None:
        self._counts: dict[tuple[tuple[str, str], ...], int] = {}
        # Requests run on a thread pool: the read-add-write below must not interleave, or counts are lost.
        self._lock = threading.Lock()
        _meter.create_observable_counter(name, callbacks=[self._observe], description=description)

    def add(self, amount: int, attributes: tuple[tuple[str, str], ...]) -> None:
        with self._lock:
            self._counts[attributes] = self._counts.get(attributes, 0) + amount

    def totals(self) -> dict[tuple[tuple[str, str], ...], int]:
        with self._lock:
            return dict(self._counts)

    def _observe(self, options: Any) -> Iterator[metrics.Observation]:
        for attributes, total in self.totals().items():
            yield metrics.Observation(total, dict(attributes))


class _Gauges:
    """Latest values per set of attributes, read by the exporter when it collects."""

    def __init__(self, name: str, description: str) -> None:
        self.values: dict[tuple[tuple[str, str], ...], float] = {}
        _meter.create_observable_gauge(name, callbacks=[self._observe], description=description)

    def set(self, value: float, attributes: tuple[tuple[str, str], ...]) -> None:
        self.values[attributes] = value

    def _observe(self, options: Any) -> Iterator[metrics.Observation]:
        for attributes, value in list(self.values.items()):
            yield metrics.Observation(value, dict(attributes))


# Scoring metrics: no-ops until a meter provider is configured.
score_latency = _meter.create_histogram("score_latency_ms", unit="ms", description="model time per request")
rows_scored = _Tally("rows_scored", "rows scored")
predicted_labels = _Tally("predicted_labels", "predicted label counts")
unseen_categories = _Tally("unseen_categories", "text values not seen in training")
feature_psi = _Gauges("feature_psi", "population stability index of a feature, last window vs training")
predicted_positive_rate = _Gauges("predicted_positive_rate", "share of rows predicted positive, last window")
