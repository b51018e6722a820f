"""Typed errors of the core; the function layer maps them to HTTP statuses or trigger outcomes."""

from __future__ import annotations


class CoreError(Exception):
    """Base of the errors the core raises on purpose."""

    status_code = 500


class DatasetRejected(CoreError):
    """The upload is not a usable dataset; ``reason`` says why in plain words. Never retried."""

    status_code = 400

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class ArtifactUnusable(CoreError):
    """A registered model's files cannot be loaded or cannot predict: it must never serve."""


class DeploymentFailed(CoreError):
    """The platform could not deploy a model (its deployment ended failed): production keeps serving.

    Unlike ArtifactUnusable, the model itself may be fine; unlike other errors, retrying the same
    step will not help, so the deployment ends here with the reason recorded.
    """


class InProgress(CoreError):
    """Another delivery of the same work holds it and has not finished: answer with a failure, so that the
    sender (Event Grid) delivers again later, when the work is either done or free to be taken over."""

    status_code = 503


class ScoreMissing(CoreError):
    """A model's score on the metric is not known (not logged, or not readable): the gate must not guess."""


class NotFound(CoreError):
    status_code = 404


class BadRequest(CoreError):
    status_code = 400

    def __init__(self, message: str, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class ServiceUnavailable(CoreError):
    status_code = 503


class PayloadTooLarge(BadRequest):
    status_code = 413


class UnsupportedMediaType(BadRequest):
    status_code = 415


class NotSupported(CoreError):
    """This backend does not offer the capability; the message says what to use instead."""

    status_code = 501


class BadGateway(CoreError):
    """A service behind this one (e.g. the online endpoint) answered with something unusable."""

    status_code = 502


class GatewayTimeout(CoreError):
    status_code = 504
