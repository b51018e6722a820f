"""Batch scoring of a CSV in chunks: memory stays bounded by the chunk size, not the file's row count."""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd

from shared.errors import DatasetRejected
from shared.local import artifacts


def _delimiter(head: bytes) -> str:
    first = head.split(b"\n", 1)[0]
    return ";" if first.count(b";") > first.count(b",") else ","


def score_csv(content: bytes, served: Any, chunk_rows: int, write: Callable[[bytes], None]) -> dict[str, Any]:
    """Score every row of ``content``; ``write`` receives the output CSV piece by piece."""
    started = time.perf_counter()
    meta = served.model.meta
    needed = [f["name"] for f in meta["features"]]
    reader = pd.read_csv(io.BytesIO(content), sep=_delimiter(content[:65536]), chunksize=chunk_rows,
                         encoding="utf-8-sig", low_memory=False)
    counts: Counter[str] = Counter()
    rows = chunks = coerced = 0
    classes = served.model.classes
    for chunk in reader:
        if chunks == 0:
            missing = [name for name in needed if name not in chunk.columns]
            if missing:
                raise DatasetRejected(f"the file lacks the model's column(s): {', '.join(missing)}", "missing_columns")
        numeric = [f["name"] for f in meta["features"] if f["kind"] in ("integer", "number")]
        before = int(chunk[numeric].notna().sum().sum())
        columns = artifacts.columns_from_frame(chunk, meta)
        coerced += before - sum(int((~pd.isna(columns[n])).sum()) for n in numeric)
        proba = served.model.predict_proba(columns)
        labels = served.model.labels(proba)
        chunk["prediction"] = labels
        for index, name in enumerate(classes):
            chunk[f"probability_{name}"] = proba[:, index].round(6)
        write(chunk.to_csv(index=False, header=chunks == 0).encode("utf-8"))
        counts.update(labels)
        rows += len(chunk)
        chunks += 1
    seconds = time.perf_counter() - started
    return {"rows": rows, "chunks": chunks, "predictions": dict(counts),
            "model": {"name": served.version.name, "version": served.version.version},
            "values_not_numeric": coerced, "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds) if seconds else None}
