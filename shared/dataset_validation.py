"""Parse an uploaded CSV and decide whether it is a dataset we can train on.

Every rejection is a ``DatasetRejected`` with a precise, plain-language reason
and a stable code, so the user sees why in the status API, the CLI and telemetry.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared.errors import DatasetRejected
from shared.schema import BOOLEAN_WORDS, DATETIME, ISO_DATE, MAX_CATEGORIES, Column, Schema, date_parts
from shared.tasks import Task, TaskChoice, choose, kind_of, numbers

DELIMITERS = (",", ";")
SNIFF_LINES = 50
MAX_CLASSES = 100
MIN_ROWS_PER_CLASS = 10
# Read as missing besides pandas' defaults (empty, NA, NaN, NULL, N/A, ...): "?" as in the UCI repository's files.
EXTRA_MISSING = ["?"]
# A number written with a decimal comma (12,5), as spreadsheets write CSV where the comma is the decimal mark:
# they then separate fields with ';'.
DECIMAL_COMMA = re.compile(r"[-+]?\d+(?:,\d+)?")


@dataclass(frozen=True)
class ValidatedDataset:
    frame: pd.DataFrame
    schema: Schema
    content_hash: str
    delimiter: str
    dropped_rows: int  # rows whose target was empty
    task: TaskChoice
    findings: tuple[dict[str, object], ...] = ()  # what reading the file changed, shown with the guardrails

    @property
    def rows(self) -> int:
        return len(self.frame)


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _decode(content: bytes) -> str:
    if b"\x00" in content[:65536]:
        raise DatasetRejected("not a CSV: the file holds binary data (NUL bytes)", "not_csv")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetRejected(
            f"not UTF-8 text (invalid byte at position {error.start}); save the CSV as UTF-8", "encoding"
        ) from None


def sniff_delimiter(text: str) -> str:
    """The delimiter that gives the header several columns and the same count on the next lines."""
    sample = text.splitlines()[:SNIFF_LINES]
    best, best_score = ",", -1.0
    for delimiter in DELIMITERS:
        counts = [len(row) for row in csv.reader(sample, delimiter=delimiter)]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for c in counts if c == counts[0]) / len(counts)
        score = consistent * 1000 + counts[0]
        if score > best_score:
            best, best_score = delimiter, score
    if best_score < 0:
        raise DatasetRejected("not a CSV: the header has a single column (expected ',' or ';' separators)",
                              "not_csv")
    return best


def header_of(text: str, delimiter: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    return [name.strip() for name in first]


def boolean_values(series: pd.Series) -> pd.Series | None:
    """1.0 / 0.0 (NaN when missing) for a column of true/false values in any case; None for other columns."""
    present = series.dropna()
    if present.empty:
        return None
    if pd.api.types.is_bool_dtype(present):
        return series.map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else np.nan).astype(float)
    if not (pd.api.types.is_object_dtype(present) or pd.api.types.is_string_dtype(present)):
        return None
    words = present.map(lambda v: str(v).strip().lower())
    if not words.isin(list(BOOLEAN_WORDS)).all():
        return None
    return series.map(lambda v: BOOLEAN_WORDS.get(str(v).strip().lower(), np.nan) if isinstance(v, (str, bool))
                      else np.nan).astype(float)


def _is_row_names(values: pd.Series) -> bool:
    """A leading unnamed column of row numbers (0..n-1 or 1..n, as pandas and R write them) or of unique names."""
    if values.isna().any():
        return False
    if pd.api.types.is_integer_dtype(values):
        start = int(values.iloc[0])
        return start in (0, 1) and bool((values.to_numpy() == np.arange(start, start + len(values))).all())
    return bool(values.is_unique)


def decimal_commas(frame: pd.DataFrame) -> list[str]:
    """Turn the text columns whose every value is a number with a decimal comma into numbers, in place; their
    names."""
    converted = []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        present = series.dropna().astype(str).str.strip()
        if present.empty or not present.str.contains(",", regex=False).any() \
                or not present.str.fullmatch(DECIMAL_COMMA.pattern).all():
            continue
        frame[name] = pd.to_numeric(present.str.replace(",", ".", regex=False)).reindex(frame.index)
        converted.append(str(name))
    return converted


def portable_csv(content: bytes, target: str) -> bytes:
    """A validated upload as any CSV reader takes it, for readers that know nothing of the leniency above (Azure
    ML's MLTable reads ',' and UTF-8): UTF-8 without a BOM, ',' between fields, no unnamed columns (row names,
    empty trailing ones), decimal commas as points, '?' and empty cells empty, no rows without a target. Every
    other cell as written: the reader infers the types itself."""
    text = _decode(content)
    delimiter = sniff_delimiter(text)
    header = header_of(text, delimiter)
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, quotechar='"', skipinitialspace=True, dtype=str,
                        keep_default_na=False, na_values=["", *EXTRA_MISSING])
    named = [i for i, name in enumerate(header) if name]
    frame = frame.iloc[:, named]
    frame.columns = [header[i] for i in named]
    if delimiter == ";":
        decimal_commas(frame)
    out: bytes = frame[frame[target].notna()].to_csv(index=False, lineterminator="\n").encode("utf-8")
    return out


def infer_schema(frame: pd.DataFrame, target: str, booleans: frozenset[str] = frozenset(),
                 task: Task = Task.CLASSIFICATION) -> Schema:
    columns = []
    for name in frame.columns:
        series = frame[name]
        missing = int(series.isna().sum())
        if name in booleans:
            columns.append(Column(name, "boolean", missing))
        elif pd.api.types.is_integer_dtype(series):
            columns.append(Column(name, "integer", missing))
        elif pd.api.types.is_float_dtype(series):
            columns.append(Column(name, "number", missing))
        elif name != target and is_date_column(series):
            columns.append(Column(name, DATETIME, missing))
        else:
            counts = series.dropna().astype(str).value_counts()
            columns.append(Column(name, "string", missing, tuple(counts.index[:MAX_CATEGORIES])))
    return Schema(tuple(columns), target, kind_of(task))


def is_date_column(series: pd.Series) -> bool:
    """Whether every value of a text column is an ISO 8601 date (or date and time) of the calendar."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    present = series.dropna().astype(str).str.strip()
    if present.empty or not ISO_DATE.fullmatch(present.iloc[0]) or not present.str.fullmatch(ISO_DATE.pattern).all():
        return False
    return all(date_parts(value) is not None for value in present.unique())


def check_classes(classes: pd.Series, target: str) -> None:
    """Refuse a classification target by its rows per class (most first)."""
    if len(classes) < 2:
        raise DatasetRejected(f"target {target!r} has one class only ({classes.index[0]!r}): nothing to learn",
                              "one_class")
    if len(classes) > MAX_CLASSES:
        raise DatasetRejected(
            f"target {target!r} has {len(classes)} distinct values; classification supports up to {MAX_CLASSES} "
            "(set metadata 'task' to regression to predict it as a number)", "too_many_classes")
    rare = classes[classes < MIN_ROWS_PER_CLASS]
    if len(rare):
        listed = ", ".join(f"{label!r} ({count})" for label, count in rare.items())
        raise DatasetRejected(
            f"class(es) with too few rows: {listed}; each class needs at least {MIN_ROWS_PER_CLASS}", "rare_class")


def check_header(header: list[str], target: str) -> tuple[bool, list[int]]:
    """Refuse a header with duplicate names or without the target. Returns whether the first column is unnamed
    (row names, as R's write.csv and pandas' to_csv with its index write them: checked once the values are read)
    and the positions of the other unnamed columns (left out when empty, as a delimiter at the end of every line
    makes them; refused otherwise)."""
    row_names = bool(header) and header[0] == ""
    unnamed = [i for i, name in enumerate(header) if not name and not (i == 0 and row_names)]
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        raise DatasetRejected(f"duplicate column names: {', '.join(duplicates)}", "duplicate_columns")
    if target not in header:
        raise DatasetRejected(
            f"target column {target!r} is missing; the columns are: {', '.join(header)} "
            "(set the blob metadata 'target' to choose another)", "target_missing")
    return row_names, unnamed


def cut_off(last_line: str, delimiter: str, columns: int) -> str | None:
    """Why the file looks cut off, or None: its last line has no line end and fewer fields than the header (an
    upload or an export that stopped mid-row). A short row that ends its line is read as missing values."""
    if not last_line.strip() or '"' in last_line:  # a quoted field may hold line ends: pandas judges those
        return None
    fields = len(next(csv.reader([last_line], delimiter=delimiter), []))
    if fields >= columns:
        return None
    return (f"the file looks cut off: its last line has {fields} of {columns} fields and no line end; "
            "upload the whole file")


def validate(content: bytes, target: str, *, max_bytes: int, min_rows: int,
             task: Task | None = None) -> ValidatedDataset:
    """Parse and check ``content``; raises ``DatasetRejected`` with the first reason found.

    ``task`` is the upload's choice; without one the target's values decide (``shared.tasks.choose``).
    """
    if len(content) > max_bytes:
        raise DatasetRejected(f"too large: {len(content):,} bytes, the limit is {max_bytes:,}", "too_large")
    text = _decode(content)
    if not text.strip():
        raise DatasetRejected("empty: the file has no content", "empty")
    delimiter = sniff_delimiter(text)
    header = header_of(text, delimiter)
    row_names, unnamed = check_header(header, target)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, quotechar='"', decimal=".", skipinitialspace=True,
                            on_bad_lines="error", low_memory=False, na_values=EXTRA_MISSING)
    except pd.errors.ParserError as error:
        raise DatasetRejected(f"not a well-formed CSV: {error}", "malformed") from None
    frame.columns = header
    if frame.empty:
        raise DatasetRejected("header only: the file has no data rows", "header_only")
    truncated = cut_off(text.rsplit("\n", 1)[-1], delimiter, len(header))
    if truncated:
        raise DatasetRejected(truncated, "truncated")
    findings: list[dict[str, object]] = []
    if unnamed:
        filled = [i for i in unnamed if not frame.iloc[:, i].isna().all()]
        if filled:
            raise DatasetRejected(f"column {filled[0] + 1} of the header has no name", "unnamed_column")
        frame = frame.iloc[:, [i for i in range(len(header)) if i not in unnamed]]
        header = [name for i, name in enumerate(header) if i not in unnamed]
        findings.append({"check": "empty_unnamed_columns", "severity": "info", "details": {"count": len(unnamed)},
                         "message": f"{len(unnamed)} column(s) without a name and without values (a delimiter at "
                                    "the end of every line, as some exports write) are left out."})
    if row_names:
        if not _is_row_names(frame[""]):
            raise DatasetRejected("column 1 of the header has no name, and its values are not row numbers or "
                                  "unique row names", "unnamed_column")
        frame = frame.drop(columns=[""])
        header = header[1:]
        findings.append({"check": "row_names", "severity": "info", "details": {},
                         "message": "The first column has no name and holds row numbers or names (as R's "
                                    "write.csv and pandas' to_csv write them): it is not used as a feature."})
    commas = decimal_commas(frame) if delimiter == ";" else []
    if commas:
        findings.append({"check": "decimal_commas", "severity": "info", "details": {"columns": commas},
                         "message": f"Column(s) written with decimal commas (12,5) read as numbers: "
                                    f"{', '.join(commas)}."})
    empty_columns = [name for name in header if frame[name].isna().all()]
    if empty_columns:
        raise DatasetRejected(f"column(s) entirely empty: {', '.join(empty_columns)}", "empty_column")
    labelled = frame[frame[target].notna()].reset_index(drop=True)
    if len(labelled) < min_rows:
        raise DatasetRejected(
            f"too few rows: {len(labelled)} with a {target!r} value, at least {min_rows} are needed", "too_few_rows")
    choice = choose(labelled[target], task)
    if not kind_of(choice.task).predicts_classes:
        labelled[target] = numbers(labelled[target])
        if labelled[target].nunique() < 2:
            raise DatasetRejected(f"target {target!r} has one value only: nothing to learn", "one_class")
    else:
        labelled[target] = labelled[target].astype(str).str.strip()
        check_classes(labelled[target].value_counts(), target)
    booleans = set()
    for name in header:
        flags = boolean_values(labelled[name]) if name != target else None
        if flags is not None:
            labelled[name] = flags
            booleans.add(name)
    schema = infer_schema(labelled, target, frozenset(booleans), choice.task)
    return ValidatedDataset(labelled, schema, content_hash(content), delimiter, len(frame) - len(labelled),
                            choice, tuple(findings))
