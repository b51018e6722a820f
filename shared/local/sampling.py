"""A big dataset version for training, read from its stored CSV a chunk at a time.

The search, the ensemble and the judged fit need a sample, not every row: ``StoredRows.sample`` draws one in one
pass with memory bounded by its size (uniform, with every class kept at least ``CLASS_FLOOR`` rows, so that a
rare class survives the stratified splits). ``StoredRows.features`` then gives every labelled row as the model's
inputs, chunk by chunk, for a refit on all of them: only the float32 matrix is ever whole.

Rows are typed as ingest's readers type them (``shared.csv_stream``, ``shared.dataset_validation``), from the
dataset version's schema: numbers (decimal commas in a ``;`` file), true/false words as 1/0, text as it is,
and the target's labels spelled as its classes are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shared import csv_stream
from shared.dataset_validation import EXTRA_MISSING, SNIFF_LINES, header_of, sniff_delimiter
from shared.schema import BOOLEAN_WORDS, Schema

SEARCH_ROWS = 200_000  # labelled rows the search works on by default (AUTOML_SEARCH_ROWS)
CLASS_FLOOR = 50  # rows of each class a sample keeps (all of them when a class has fewer)
CHUNK_ROWS = 100_000
SEED = 42
_WHOLE = re.compile(r"-?\d+")
_KEY, _POSITION = "__sample_key", "__sample_position"


@dataclass
class StoredRows:
    """Every labelled row of one dataset version's CSV, read on demand a chunk at a time."""

    path: Path
    schema: Schema  # the dataset version's: every column it kept, the target's classes among its categories
    rows: int = 0  # labelled rows, known once a pass has read them all
    read_s: float = 0.0  # what the last whole pass took

    @property
    def regression(self) -> bool:
        return not self.schema.task.predicts_classes

    def _raw_chunks(self) -> Iterator[tuple[pd.DataFrame, bool]]:
        """Labelled rows as text (missing where missing), named by the schema's columns; and whether the file is
        ``;``-delimited (its numbers may have decimal commas)."""
        names = [column.name for column in self.schema.columns]
        with self.path.open("rb") as source:
            text = csv_stream.UploadText(source, self.path.stat().st_size + 1)
            head = text.head(SNIFF_LINES)
            delimiter = sniff_delimiter(head)
            header = header_of(head, delimiter)
            at = [header.index(name) for name in names]  # names are unique: ingest rejects duplicates
            target_at = header.index(self.schema.target)
            for chunk in pd.read_csv(text, sep=delimiter, quotechar='"', skipinitialspace=True, dtype=str,
                                     na_values=EXTRA_MISSING, chunksize=CHUNK_ROWS):
                chunk.columns = range(len(header))
                labelled = chunk[chunk[target_at].notna()]
                yield labelled[at].set_axis(names, axis=1), delimiter == ";"

    def typed(self, raw: pd.DataFrame, semicolon: bool) -> pd.DataFrame:
        """Text rows typed as the whole-file reader types the same rows."""
        out: dict[str, pd.Series] = {}
        for column in self.schema.columns:
            values = raw[column.name]
            if column.name == self.schema.target:
                labels = values.astype(str).str.strip()
                out[column.name] = pd.to_numeric(labels.str.replace(",", ".", regex=False), errors="coerce") \
                    .astype(float) if self.regression else self._classes(labels, column.categories)
            elif column.kind in ("integer", "number"):
                text = values.str.strip().str.replace(",", ".", regex=False) if semicolon else values
                numbers = pd.to_numeric(text, errors="coerce").astype(float)
                whole = column.kind == "integer" and not numbers.isna().any()
                out[column.name] = numbers.astype("int64") if whole else numbers
            elif column.kind == "boolean":
                out[column.name] = values.str.strip().str.lower().map(BOOLEAN_WORDS).astype(float)
            else:  # text and dates; through categories, so that cells of one value share one string
                shared = values.astype("category").astype(object)
                out[column.name] = shared.where(values.notna().to_numpy(), np.nan)
        return pd.DataFrame(out).reset_index(drop=True)

    @staticmethod
    def _classes(labels: pd.Series, classes: tuple[str, ...]) -> pd.Series:
        """Labels spelled as the dataset's classes: the whole-file reader reads true/false words as booleans
        (``True``) and numbers as numbers (``1``, or ``1.0`` in a column with gaps), and makes text of each."""
        known = set(classes)
        out = labels.astype(object)
        odd = ~out.isin(known)
        if odd.any():
            words = labels[odd].str.lower().map({"true": "True", "false": "False"})
            numbers = pd.to_numeric(labels[odd].str.replace(",", ".", regex=False), errors="coerce")
            whole = all(_WHOLE.fullmatch(c) for c in classes)
            spelled = numbers.map(lambda v: None if pd.isna(v) else str(int(v)) if whole else str(float(v)))
            out[odd] = words.where(words.isin(known), spelled)
        unknown = ~out.isin(known)
        if unknown.any():
            raise ValueError(f"label {labels[unknown].iloc[0]!r} is not one of the dataset's classes")
        return out

    def sample(self, size: int = SEARCH_ROWS, floor: int = CLASS_FLOOR, seed: int = SEED) -> pd.DataFrame:
        """A sample of ``size`` labelled rows, typed, in file order, in one pass: each row draws a random key and
        the smallest keys stay (bottom-k, uniform), and so do the ``floor`` smallest of each class. Counts the rows
        and times the pass on the way."""
        started = time.perf_counter()
        rng = np.random.default_rng(seed)
        kept: pd.DataFrame | None = None
        seen = 0
        semicolon = False
        for raw, in_semicolons in self._raw_chunks():
            semicolon = in_semicolons
            chunk = raw.assign(**{_KEY: rng.random(len(raw)), _POSITION: np.arange(seen, seen + len(raw))})
            seen += len(raw)
            kept = chunk if kept is None else pd.concat([kept, chunk], ignore_index=True)
            if len(kept) > size:
                kept = self._bottom(kept, size, floor)
        self.rows, self.read_s = seen, time.perf_counter() - started
        if kept is None:
            return self.typed(pd.DataFrame(columns=[c.name for c in self.schema.columns]), semicolon)
        ordered = kept.sort_values(_POSITION).drop(columns=[_KEY, _POSITION])
        return self.typed(ordered, semicolon)

    def _bottom(self, rows: pd.DataFrame, size: int, floor: int) -> pd.DataFrame:
        keep = (rows[_KEY].rank(method="first") <= size).to_numpy()
        if not self.regression:
            by_class = rows.groupby(rows[self.schema.target].str.strip())[_KEY].rank(method="first")
            keep = keep | (by_class <= floor).to_numpy()
        return rows[keep].reset_index(drop=True)

    def features(self, inputs: Callable[[pd.DataFrame], NDArray[np.float32]],
                 targets: Callable[[pd.DataFrame], NDArray[Any]]) -> tuple[NDArray[np.float32], NDArray[Any]]:
        """Every labelled row as model inputs and targets, a chunk at a time into one float32 matrix."""
        started = time.perf_counter()
        x: NDArray[np.float32] | None = None
        y: NDArray[Any] | None = None
        filled = 0
        for raw, semicolon in self._raw_chunks():
            typed = self.typed(raw, semicolon)
            block, labels = inputs(typed), targets(typed)
            if x is None or y is None:
                x = np.empty((max(self.rows, len(block)), block.shape[1]), dtype=np.float32)
                y = np.empty(max(self.rows, len(block)), dtype=labels.dtype)
            if filled + len(block) > len(x):  # more rows than counted before: grow (not expected)
                x = np.concatenate([x, np.empty_like(x[: len(block)])])
                y = np.concatenate([y, np.empty_like(y[: len(block)])])
            x[filled:filled + len(block)] = block
            y[filled:filled + len(block)] = labels
            filled += len(block)
        self.read_s = time.perf_counter() - started
        if x is None or y is None:
            raise ValueError(f"{self.path.name} has no labelled rows")
        return x[:filled], y[:filled]
