"""One typed settings object, read from environment variables (Function App settings).

A bad value fails fast with the variable's name, instead of surfacing later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


def env_int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ValueError(f"setting {name}={raw!r} is not an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise ValueError(f"setting {name}={value} must be {bound}")
    return value


def env_float(name: str, default: float, minimum: float, maximum: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"setting {name}={raw!r} is not a number") from None
    if not minimum <= value <= maximum:
        raise ValueError(f"setting {name}={value} must be from {minimum} to {maximum}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower() or default
    if value not in choices:
        raise ValueError(f"setting {name}={value!r} must be one of {', '.join(choices)}")
    return value


def env_flag(name: str, default: bool) -> bool:
    """``false``, ``0``, ``no`` or ``off`` switch a setting off; anything else set switches it on."""
    raw = os.environ.get(name, "").strip().lower()
    return default if not raw else raw not in ("0", "false", "no", "off")


def _metric_setting(name: str, default: str) -> str:
    """A primary metric, checked at start-up: a bad one would otherwise reject every upload later."""
    from shared.metrics import resolve

    raw = os.environ.get(name, "").strip() or default
    try:
        return resolve(raw).name
    except ValueError as error:
        raise ValueError(f"setting {name}={raw!r}: {error}") from None


MIN_DEFAULT_UPLOAD_MB = 200


def default_upload_mb(memory_bytes: int | None = None) -> int:
    """The upload limit when ``MAX_UPLOAD_MB`` is not set: a quarter of the machine's memory, 200 MB at least.

    Neither ingest nor training holds a file whole: ingest reads it in chunks and keeps a fixed sample of rows,
    training searches on a fixed sample and refits on every row only when that matrix fits the memory a fit may
    take. What grows with the file is its copies on disk and the time to read it; a quarter of the memory keeps
    a file well within what the machine can also page through (24 GiB: uploads up to 6,144 MB).
    """
    if memory_bytes is None:
        try:
            memory_bytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # no sysconf (Windows): the fixed floor
            memory_bytes = 0
    return max(MIN_DEFAULT_UPLOAD_MB, memory_bytes // 4 // (1024 * 1024))


def upload_limit_source() -> str:
    """Where the upload limit comes from, for the reason of a rejection."""
    if os.environ.get("MAX_UPLOAD_MB"):
        return "MAX_UPLOAD_MB"
    return "MAX_UPLOAD_MB is not set: a quarter of this machine's memory, 200 MB at least"


@dataclass(frozen=True)
class Settings:
    backend: str
    """PIPELINE_BACKEND: ``local`` (embedded default) or ``azure``."""
    state_dir: Path
    """LOCAL_STATE_DIR: where the local backend keeps its registries and artefacts."""
    max_upload_bytes: int
    """MAX_UPLOAD_MB: uploads larger than this are rejected (by default what this machine can train)."""
    min_rows: int
    """MIN_ROWS: fewer labelled rows than this are rejected."""
    time_budget_s: int
    """AUTOML_TIME_BUDGET_S: the AutoML search budget of one training run."""
    ensemble_members: int
    """AUTOML_ENSEMBLE_MEMBERS: most configurations in the soft vote (1: the best model alone, the fastest to
    score)."""
    search_rows: int
    """AUTOML_SEARCH_ROWS: a dataset version with more labelled rows is searched on a sample of this many (local
    backend); the deployed model is refit on every row when that fits the budget and memory."""
    default_target: str
    """DEFAULT_TARGET: target column when the upload names none."""
    default_metric: str
    """DEFAULT_METRIC: primary metric when the upload names none."""
    host_url: str
    """DEVHOST_URL: the local host, to which run-completed events are posted."""
    eventgrid_function: str
    """RUN_EVENTS_FUNCTION: the Event Grid function that receives RunCompleted events."""
    worker_idle_s: int
    """TRAINING_WORKER_IDLE_S: the local training worker exits after this long without work."""
    max_score_rows: int
    """MAX_SCORE_ROWS: rows accepted in one scoring request (more -> 413)."""
    max_score_bytes: int
    """MAX_SCORE_BYTES: bytes accepted in one scoring request body (more -> 413)."""
    default_model: str
    """DEFAULT_MODEL: the model /api/score serves; empty means the most recently deployed one."""
    batch_chunk_rows: int
    """BATCH_CHUNK_ROWS: rows scored at a time in batch scoring (bounds memory)."""
    drift_window_s: int
    """DRIFT_WINDOW_S: scoring traffic is compared with the training data over windows this long."""
    drift_threshold: float
    """DRIFT_PSI_THRESHOLD: a feature whose population stability index reaches this has drifted."""
    drift_min_rows: int
    """DRIFT_MIN_ROWS: a window with fewer scored rows carries over to the next one."""
    state_container: str
    """STATE_CONTAINER: the container of the app's small state records (deployments, leases; runs in Azure)."""

    def shown_path(self, path: str) -> str:
        """A local path as the API shows it: relative to ``state_dir``, so that no answer tells where the stack
        lives on this machine. Anything else (an ``azureml://`` URI, a path elsewhere) is shown as it is."""
        relative = os.path.relpath(path, self.state_dir) if os.path.isabs(path) else ""
        return relative if relative and not relative.startswith("..") else path

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            backend=env_choice("PIPELINE_BACKEND", "local", ("local", "azure")),
            state_dir=Path(os.environ.get("LOCAL_STATE_DIR", ".localstack")).resolve(),
            max_upload_bytes=env_int("MAX_UPLOAD_MB", default_upload_mb(), 1) * 1024 * 1024,
            min_rows=env_int("MIN_ROWS", 50, 1),
            time_budget_s=env_int("AUTOML_TIME_BUDGET_S", 60, 1),
            ensemble_members=env_int("AUTOML_ENSEMBLE_MEMBERS", 6, 1),
            search_rows=env_int("AUTOML_SEARCH_ROWS", 200_000, 100),
            default_target=os.environ.get("DEFAULT_TARGET", "y"),
            default_metric=_metric_setting("DEFAULT_METRIC", "accuracy"),
            host_url=os.environ.get("DEVHOST_URL", "http://127.0.0.1:7071").rstrip("/"),
            eventgrid_function=os.environ.get("RUN_EVENTS_FUNCTION", "promote"),
            worker_idle_s=env_int("TRAINING_WORKER_IDLE_S", 120, 1),
            max_score_rows=env_int("MAX_SCORE_ROWS", 10_000, 1),
            max_score_bytes=env_int("MAX_SCORE_BYTES", 10 * 1024 * 1024, 1),
            default_model=os.environ.get("DEFAULT_MODEL", "").strip(),
            batch_chunk_rows=env_int("BATCH_CHUNK_ROWS", 50_000, 1),
            drift_window_s=env_int("DRIFT_WINDOW_S", 300, 1),
            drift_threshold=env_float("DRIFT_PSI_THRESHOLD", 0.2, 0.001, 10.0),
            drift_min_rows=env_int("DRIFT_MIN_ROWS", 200, 1),
            state_container=os.environ.get("STATE_CONTAINER", "pipeline-state"),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
