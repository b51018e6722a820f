"""Which invocations get a trace: a budget per function and second, decided before any span exists.

An invocation left out costs a counter increment, not a span. Each traced
invocation stands for itself and for those left out since the previous one, and
says so the way Application Insights reads it: ``_MS.sampleRate`` = 100 / that
number, so summing each item's ``100 / sampleRate`` gives the exact count of
invocations. Exact percentiles of every invocation are kept in place as a metric
(``invocation_duration_ms``). Overload cannot grow telemetry: a function is
traced at most ``per_second`` times a second (a token bucket, so a quiet function
has every invocation traced), whatever the request rate; the invocations left
out are counted (``invocations_not_traced``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


class RequestSampler:
    """One function's sampling: a budget of ``per_second`` traces, or a fixed ``percentage`` when given."""

    def __init__(self, per_second: float = 5.0, percentage: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_second < 0 or not 0 <= (percentage or 0) <= 100:
            raise ValueError("traces per second must be zero or more, a percentage within 0-100")
        self.per_second = per_second
        self.percentage = percentage
        self._clock = clock
        self._lock = threading.Lock()
        self._capacity = max(1.0, per_second) if per_second else 0.0  # a burst of up to a second's budget
        self._tokens = self._capacity
        self._refilled = clock()
        self._credit = 0.0
        self._since_traced = 0
        self.not_traced = 0

    def decide(self) -> float:
        """The sample rate (a percentage) to record when this invocation is traced, 0.0 when it is not."""
        with self._lock:
            self._since_traced += 1
            if not (self._fixed_share() if self.percentage is not None else self._budget()):
                self.not_traced += 1
                return 0.0
            rate = 100.0 / self._since_traced
            self._since_traced = 0
            return rate

    def _budget(self) -> bool:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * self.per_second)
        self._refilled = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _fixed_share(self) -> bool:
        # Even spacing: each invocation earns the percentage as credit; a whole unit buys a trace.
        self._credit += (self.percentage or 0.0) / 100.0
        if self._credit < 1.0 - 1e-9:  # ten tenths are a whole, though their float sum is not
            return False
        self._credit -= 1.0
        return True


class Samplers:
    """A sampler per function, so that a flood of one (scoring) never hides another's traces (a training run)."""

    def __init__(self, per_second: float = 5.0, percentage: float | None = None) -> None:
        self._per_second = per_second
        self._percentage = percentage
        self._by_function: dict[str, RequestSampler] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Samplers:
        """``TELEMETRY_SAMPLING_RATIO`` (0-1) fixes the share traced; else ``TELEMETRY_TRACES_PER_SECOND``
        (default 5, the Azure Monitor distribution's own default) per function."""
        ratio = environ.get("TELEMETRY_SAMPLING_RATIO")
        per_second = float(environ.get("TELEMETRY_TRACES_PER_SECOND") or 5.0)
        return cls(per_second, float(ratio) * 100 if ratio else None)

    def decide(self, function: str) -> float:
        sampler = self._by_function.get(function)
        if sampler is None:
            sampler = self._by_function.setdefault(function, RequestSampler(self._per_second, self._percentage))
        return sampler.decide()

    def not_traced(self) -> dict[str, int]:
        return {name: sampler.not_traced for name, sampler in list(self._by_function.items())}
