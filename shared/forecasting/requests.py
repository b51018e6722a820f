"""Forecast requests as the forecaster reads them: validated columns back to rows of times, ids and features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.model_contract import Columns, ModelSignature
from shared.schema import DATE_PARTS, DATETIME


def rows_of(columns: Columns, signature: ModelSignature) -> pd.DataFrame:
    """The request's rows: a date's parts (``shared.schema.DATE_PARTS``) become its timestamp again (to the
    second), missing text stays missing, numbers stay numbers."""
    out: dict[str, object] = {}
    for column in signature.features:
        if column.kind == DATETIME:
            parts = {part: columns[name].reshape(-1).astype(np.float64)
                     for part, name in zip(DATE_PARTS, column.inputs, strict=True)}
            out[column.name] = _timestamps(parts)
        else:
            values = columns[column.name].reshape(-1)
            out[column.name] = [None if v == "" else v for v in values] if values.dtype == object else values
    return pd.DataFrame(out)


def _timestamps(parts: dict[str, np.ndarray]) -> pd.DatetimeIndex:
    known = np.isfinite(parts["year"]) & np.isfinite(parts["month"]) & np.isfinite(parts["day"])
    days = pd.to_datetime(pd.DataFrame({p: np.where(known, parts[p], 1).astype(np.int64)
                                        for p in ("year", "month", "day")}), errors="coerce")
    seconds = np.rint(np.nan_to_num(parts["hour"]) * 3600).astype(np.int64)
    stamps = pd.DatetimeIndex(days + pd.to_timedelta(seconds, unit="s"))
    return stamps.where(known, pd.NaT)
