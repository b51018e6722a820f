"""How an upload's path and metadata become a model name, a target, a task and a metric."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote

from shared import metrics, tasks
from shared.errors import DatasetRejected
from shared.printable import has_control

# Matched whole (fullmatch): with re.match, '$' also matches before a final newline, so 'nl\n' would pass.
_VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MODEL_NAME_PATTERN = f"^{_VALID_NAME.pattern}$"  # as the OpenAPI document states it (JSON Schema: ECMA-262)


def is_model_name(text: str) -> bool:
    """The rule of ``model_name_for``, on the whole text."""
    return _VALID_NAME.fullmatch(text) is not None


@dataclass(frozen=True)
class UploadSpec:
    model_name: str
    target: str
    metric: str | None  # None: the task's default, known once the file is read
    excluded_columns: tuple[str, ...]
    task: tasks.Task | None = None  # None: decided by the target's values


def _refuse_control_characters(blob_path: str, part: str) -> None:
    """A newline or an escape sequence in a name forges log lines and drives terminals: refused, named escaped."""
    control = has_control(part)
    if control:
        raise DatasetRejected(f"blob name {blob_path!r} holds a control character ({control}): rename the file",
                              "bad_name")


def model_name_for(blob_path: str) -> str:
    """``bank/jan.csv`` -> ``bank``; ``jan.csv`` at the root -> ``jan``."""
    path = PurePosixPath(blob_path)
    parts = [p for p in path.parts if p not in ("", "/")]
    if any(p in (".", "..") for p in parts):
        raise DatasetRejected(f"blob name {blob_path!r} contains a relative path segment", "bad_name")
    name = parts[0] if len(parts) > 1 else path.stem
    _refuse_control_characters(blob_path, name)
    if not _VALID_NAME.fullmatch(name):
        raise DatasetRejected(
            f"model name {name!r} (from {blob_path!r}) must be 1-64 letters, digits, '-', '_' or '.'", "bad_name")
    return name


def spec_for(blob_path: str, metadata: dict[str, str] | None, default_target: str) -> UploadSpec:
    """Blob metadata is ASCII: a column name beyond it (``Résultat``) comes percent-encoded as UTF-8
    (``R%C3%A9sultat``), as ``cli upload`` sends it, and a comma inside one as ``%2C``."""
    model_name = model_name_for(blob_path)
    _refuse_control_characters(blob_path, blob_path)  # anywhere in the path, not only in the model's name
    meta = {k.lower(): v for k, v in (metadata or {}).items()}
    metric: str | None = None
    if meta.get("metric", "").strip():
        try:
            metric = metrics.resolve(meta["metric"].strip()).name
        except ValueError as error:
            raise DatasetRejected(str(error), "bad_metric") from None
    excluded = tuple(unquote(c).strip() for c in meta.get("exclude", "").split(",") if c.strip())
    target = unquote(meta["target"]) if "target" in meta else default_target
    return UploadSpec(model_name, target.strip(), metric, excluded, tasks.parse(meta.get("task")))
