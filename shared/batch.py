"""Batch scoring of a CSV in chunks: memory stays bounded by the chunk size, not the file's row count."""

from __future__ import annotations

import abc
import io
import time
from collections import Counter
from collections.abc import Callable
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from shared import telemetry
from shared.dataset_validation import decimal_commas
from shared.errors import BadRequest, DatasetRejected, NotSupported
from shared.model_contract import ServedModel, columns_from_frame
from shared.ports import BatchSummary, ModelServer

OUTPUT_CONTAINER = "scoring-output"



def _delimiter(head: bytes) -> str:
    first = head.split(b"\n", 1)[0]
    return ";" if first.count(b";") > first.count(b",") else ","


def score_csv(content: bytes, served: ServedModel, chunk_rows: int, write: Callable[[bytes], None]
              ) -> BatchSummary:
    """Score every row of ``content``; ``write`` receives the output CSV piece by piece."""
    started = time.perf_counter()
    signature = served.signature
    needed = signature.names
    numeric = list(signature.numeric)
    delimiter = _delimiter(content[:65536])
    reader = pd.read_csv(io.BytesIO(content), sep=delimiter, chunksize=chunk_rows,
                         encoding="utf-8-sig", low_memory=False, na_values=["?"])
    counts: Counter[str] = Counter()
    low, high, total = float("inf"), float("-inf"), 0.0  # the predicted numbers of a regression model
    rows = chunks = coerced = not_finite = 0
    classes = signature.classes
    for chunk in reader:
        if chunks == 0:
            missing = [name for name in needed if name not in chunk.columns]
            if missing:
                raise DatasetRejected(f"the file lacks the model's column(s): {', '.join(missing)}", "missing_columns")
        if delimiter == ";":  # numbers may be written with decimal commas, as uploads for training may be
            numbers = chunk[numeric]
            for name in decimal_commas(numbers):
                chunk[name] = numbers[name]
        before = int(chunk[numeric].notna().sum().sum())
        columns = columns_from_frame(chunk, signature)
        coerced += before - sum(int((~pd.isna(columns[n])).sum()) for n in numeric)
        outputs = served.predict(columns)
        results = served.results(outputs)
        if signature.regression:
            # A number beyond float range (inputs far beyond training's) is left empty, as the API answers null.
            finite = np.isfinite(outputs[:, 0])
            chunk["prediction"] = np.where(finite, np.asarray(results, dtype=float), np.nan)
            if finite.any():
                kept = outputs[finite, 0]
                low, high = min(low, float(kept.min())), max(high, float(kept.max()))
                total += float(kept.sum())
            not_finite += int((~finite).sum())
        else:
            chunk["prediction"] = results
            for index, name in enumerate(classes):
                chunk[f"probability_{name}"] = outputs[:, index].round(6)
            counts.update(str(label) for label in results)
        write(chunk.to_csv(index=False, header=chunks == 0).encode("utf-8"))
        rows += len(chunk)
        chunks += 1
    seconds = time.perf_counter() - started
    predictions: dict[str, int] | dict[str, float] = dict(counts)
    if signature.regression and rows > not_finite:
        predictions = {"min": round(low, 6), "mean": round(total / (rows - not_finite), 6), "max": round(high, 6)}
        if not_finite:
            predictions["not_finite"] = not_finite
    return {"rows": rows, "chunks": chunks, "predictions": predictions,
            "model": {"name": served.name, "version": served.version},
            "values_not_numeric": coerced, "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds) if seconds else None}


class BatchOutputs(abc.ABC):
    """Where a dropped file's results go (the ``scoring-output`` container)."""

    @abc.abstractmethod
    def write_json(self, name: str, body: dict[str, object]) -> None: ...

    @abc.abstractmethod
    def csv_writer(self, name: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
        """(write a piece, commit): nothing is visible under ``name`` until the commit."""


def score_drop(server: ModelServer, blob_path: str, content: bytes, chunk_rows: int, outputs: BatchOutputs
               ) -> dict[str, object]:
    """Score a file dropped at ``scoring-input/<model>/<file>.csv`` (or at the top: the default model).

    Writes ``<file>.scored.csv`` and ``<file>.summary.json``, or ``<file>.error.json`` saying why not.
    Failures are not retried: nothing changes until a model is deployed; the input stays where it is.
    """
    path = PurePosixPath(blob_path)
    model = path.parts[0] if len(path.parts) > 1 else server.default_model() or ""
    base = str(path.with_suffix(""))
    write, commit = outputs.csv_writer(f"{base}.scored.csv")
    try:
        summary = server.score_file(model, content, chunk_rows, write) if model else None
    except NotSupported as error:
        return report_failure(outputs, base, str(error))
    except DatasetRejected as rejected:
        telemetry.event("BatchRejected", blob=str(path), reason=rejected.reason)
        return report_failure(outputs, base, rejected.reason)
    except BadRequest as refused:  # rows the model cannot answer (a forecast beyond its horizon): say which
        telemetry.event("BatchRejected", blob=str(path), reason=str(refused))
        return report_failure(outputs, base, str(refused))
    if summary is None:
        return report_failure(outputs, base, f"no model is deployed for {model or 'any model'}")
    commit()
    result: dict[str, object] = {**summary, "input": str(path), "output": f"{OUTPUT_CONTAINER}/{base}.scored.csv"}
    outputs.write_json(f"{base}.summary.json", result)
    telemetry.event("BatchScored", blob=str(path), rows=summary["rows"], model=model,
                    rows_per_second=summary["rows_per_second"])
    return result


def report_failure(outputs: BatchOutputs, base: str, reason: str) -> dict[str, object]:
    """``<base>.error.json``, saying why the drop was not scored."""
    body: dict[str, object] = {"error": reason}
    outputs.write_json(f"{base}.error.json", body)
    return body
