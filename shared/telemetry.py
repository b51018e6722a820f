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
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from shared.latency_histogram import STATISTICS, LatencyHistogram
from shared.printable import printable
from shared.settings import env_flag

log = logging.getLogger("pipeline.events")
TELEMETRY_LOGGERS = ("azure.monitor.opentelemetry", "opentelemetry")  # the exporters' and the SDK's own loggers
_propagator = TraceContextTextMapPropagator()
_configured = False
_tracer = trace.get_tracer("csv-to-endpoint")
_meter = metrics.get_meter("csv-to-endpoint")


def enabled() -> bool:
    return env_flag("TELEMETRY_ENABLED", True)


def worker_exports() -> bool:
    """True in Azure when the Functions Python worker itself exports to Application Insights."""
    return env_flag("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", False)


def configure(service_name: str, traces_per_second: float | None = None) -> bool:
    """Start exporting to Application Insights (once per process); False when switched off.

    A host that samples its invocations itself passes ``traces_per_second``, a ceiling far above its own budget:
    the exporter's rate limiter then keeps every trace the host chose, with the sample rate the host gave it,
    and ``TELEMETRY_SAMPLING_RATIO`` is the host's to apply.
    """
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
        # The local endpoint is no Azure region: statsbeat would only complain about it, and the SDK's own
        # statistics (a second metrics pipeline and its thread) would fill the local store with the exporter's
        # bookkeeping. Nor does the local stack call Azure: the exporter's dynamic configuration service
        # (settings.sdk.monitor.azure.com) stays off, or every attempt offline is stored as an exception.
        os.environ.setdefault("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
        os.environ.setdefault("APPLICATIONINSIGHTS_SDKSTATS_DISABLED", "true")
        os.environ.setdefault("APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED", "true")
    from azure.monitor.opentelemetry import configure_azure_monitor

    options: dict[str, Any] = {}
    ratio = os.environ.get("TELEMETRY_SAMPLING_RATIO")
    if traces_per_second is not None:
        options["traces_per_second"] = traces_per_second
    elif ratio:  # else the distro's default: at most 5 traces per second
        options["sampling_ratio"] = float(ratio)
    configure_azure_monitor(connection_string=connection, enable_live_metrics=False, **options)
    for handler in logging.getLogger().handlers:  # the distribution's handler exports every logger's records
        if type(handler).__module__.startswith("opentelemetry"):
            handler.addFilter(_not_from_telemetry)
    provider = trace.get_tracer_provider()
    if isinstance(getattr(provider, "sampler", None), Sampler):
        provider.sampler = _CurrentParent(provider.sampler)  # type: ignore[attr-defined]
    logging.getLogger("pipeline.events").setLevel(logging.INFO)
    _configured = True
    return True


def _not_from_telemetry(record: logging.LogRecord) -> bool:
    """Telemetry's own complaints (an endpoint that does not answer) stay in the log, unexported: exported, each
    failed export would queue one more record to export, and a flush at shutdown would never end."""
    return not record.name.startswith(TELEMETRY_LOGGERS)


class _CurrentParent(Sampler):
    """The distribution's sampler, told the parent when a span names none (it then uses the current span).

    Azure Monitor's samplers follow a parent only when given its context explicitly, which
    ``start_as_current_span`` does not do: a child of a request left out would be sampled on its own and stored
    without its request. Given the current context, children follow their request, and its sample rate.
    """

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(self, parent_context: otel_context.Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: TraceState | None = None) -> SamplingResult:
        return self._inner.should_sample(otel_context.get_current() if parent_context is None else parent_context,
                                         trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"CurrentParent{{{self._inner.get_description()}}}"


def exporting() -> bool:
    """True once this process exports telemetry (``configure`` succeeded)."""
    return _configured


def flush() -> None:
    """Export what is buffered (a short-lived process calls this before it exits)."""
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force = getattr(provider, "force_flush", None)
        if force is not None:
            force()
    for handler in logging.getLogger().handlers:
        handler.flush()


def shutdown() -> None:
    """Export what is buffered, then stop exporting: for a process about to stop its telemetry endpoint, so
    that nothing is left to send (and fail) when the interpreter exits."""
    from opentelemetry import _logs

    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider()):
        stop = getattr(provider, "shutdown", None)
        if stop is not None:
            stop()


# Attributes every LogRecord has: an event property with one of these names would make logging raise.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def event(name: str, **properties: Any) -> None:
    """A custom event (Application Insights customEvents): a log record with the event name attribute.

    Properties named like a LogRecord attribute (``message``, ``name``, ...) are sent as ``event_<name>``.
    """
    clean = {f"event_{k}" if k in _RESERVED else k: v if isinstance(v, (str, int, float, bool)) else str(v)
             for k, v in properties.items() if v is not None}
    # The line is for people; the properties travel as they are (a newline in a name must not forge a line).
    log.info("%s %s", name, " ".join(f"{k}={printable(v)}" for k, v in clean.items()),
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


class _Latencies(LatencyHistogram):
    """Durations in place (see ``shared.latency_histogram``), exported as two instruments when collected:
    ``<name>`` holds each export window's count, p50, p95, p99 and max (attribute ``statistic``), and
    ``<name>_count`` the count since start."""

    def __init__(self, name: str, description: str) -> None:
        super().__init__()
        _meter.create_observable_gauge(name, callbacks=[self._observe_window], unit="ms", description=description)
        _meter.create_observable_counter(f"{name}_count", callbacks=[self._observe_total],
                                         description=f"{description}: values since start")

    def _observe_window(self, options: Any) -> Iterator[metrics.Observation]:
        for attributes, summary in self.drain().items():
            for statistic in STATISTICS:
                yield metrics.Observation(summary.statistic(statistic), {**dict(attributes), "statistic": statistic})

    def _observe_total(self, options: Any) -> Iterator[metrics.Observation]:
        for attributes, total in self.totals().items():
            yield metrics.Observation(total, dict(attributes))


# Scoring metrics: no-ops until a meter provider is configured.
score_latency = _Latencies("score_latency_ms", "model time per scoring request")
invocation_duration = _Latencies("invocation_duration_ms", "function invocation time, every invocation "
                                                           "(traces are sampled)")
rows_scored = _Tally("rows_scored", "rows scored")
predicted_labels = _Tally("predicted_labels", "predicted label counts")
unseen_categories = _Tally("unseen_categories", "text values not seen in training")
feature_psi = _Gauges("feature_psi", "population stability index of a feature, last window vs training")
predicted_positive_rate = _Gauges("predicted_positive_rate", "share of rows predicted positive, last window")
