"""Read an upload in chunks, with memory bounded whatever its size: what ``dataset_validation.validate`` finds in
the whole file, found one chunk of rows at a time.

Counted exactly over every row: the content hash, the dialect (delimiter, decimal commas, BOM), the schema (each
column's kind, missing values, categories), every rejection, the task, the rows, the classes and the target's range.
Kept as a bounded uniform sample of the labelled rows (reservoir sampling, in file order): what needs rows side by
side (leakage, ID-like columns); duplicated rows are estimated from a bounded sample of distinct rows chosen by
their hash, so that both copies of a duplicate are in it or neither. Cells are read as text and typed once the
whole column is known, as the whole-file reader types them.
"""

from __future__ import annotations

import codecs
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pandas as pd

from shared.dataset_validation import (
    DECIMAL_COMMA,
    EXTRA_MISSING,
    MAX_CLASSES,
    SNIFF_LINES,
    check_classes,
    check_header,
    cut_off,
    header_of,
    sniff_delimiter,
)
from shared.errors import DatasetRejected
from shared.schema import BOOLEAN_WORDS, DATETIME, ISO_DATE, MAX_CATEGORIES, Column, Schema, date_parts
from shared.tasks import MAX_CODED_CLASSES, Task, TaskChoice, decide, kind_of

READ_BYTES = 1 << 20  # what one read takes from the source
NUL_SCAN_BYTES = 65536  # binary data is looked for where the whole-file reader looks: the first 64 KiB
CHUNK_ROWS = 50_000
SAMPLE_ROWS = 100_000  # rows kept side by side for the row checks: what bounds ingest's memory
MAX_COUNTED = 10_000  # distinct values counted per column; a column with more has no use for exact categories
MAX_TARGET_VALUES = 1_000_000  # distinct numbers of a target counted exactly (8 bytes each)
MAX_HEAD_CHARS = 8 << 20  # the delimiter is sniffed from the first lines, read up to this much text
MAX_LAST_LINE = 1 << 20  # the last line is kept to tell a file cut off mid-row; longer ones are not judged


class UploadText(io.TextIOBase):
    """The upload's bytes as text, read once: hashed, counted, checked for binary data and UTF-8 on the way, the
    BOM dropped, its last line kept. A problem stops the reading at the chunk that shows it."""

    def __init__(self, source: BinaryIO, max_bytes: int) -> None:
        super().__init__()
        self._source = source
        self._max_bytes = max_bytes
        self._digest = hashlib.sha256()
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._buffer = ""
        self._eof = False
        self.bytes_read = 0
        self.last_line = ""  # the text after the last line end (empty when the file ends with one)

    def readable(self) -> bool:
        return True

    @property
    def content_hash(self) -> str:
        return self._digest.hexdigest()

    def _fill(self) -> bool:
        """Decode one more block into the buffer; False at the end of the file."""
        if self._eof:
            return False
        block = self._source.read(READ_BYTES)
        start = self.bytes_read
        self.bytes_read += len(block)
        if self.bytes_read > self._max_bytes:
            raise DatasetRejected(f"too large: more than {self._max_bytes:,} bytes, the limit", "too_large")
        if start < NUL_SCAN_BYTES and b"\x00" in block[:NUL_SCAN_BYTES - start]:
            raise DatasetRejected("not a CSV: the file holds binary data (NUL bytes)", "not_csv")
        self._digest.update(block)
        pending = len(self._decoder.getstate()[0])  # bytes of a character the last block cut in two
        try:
            text = self._decoder.decode(block, final=not block)
        except UnicodeDecodeError as error:
            raise DatasetRejected(f"not UTF-8 text (invalid byte at position {start - pending + error.start}); "
                                  "save the CSV as UTF-8", "encoding") from None
        if not block:
            self._eof = True
        self._buffer += text
        end = text.rfind("\n")
        self.last_line = text[end + 1:] if end >= 0 else self.last_line + text
        if len(self.last_line) > MAX_LAST_LINE:  # no line at all, or a huge one: not judged as cut off
            self.last_line = ""
        return True

    def head(self, lines: int) -> str:
        """The first ``lines`` lines (and a little more), left in place to be read again."""
        while len(self._buffer.splitlines()) <= lines and len(self._buffer) < MAX_HEAD_CHARS and self._fill():
            pass
        return self._buffer

    def read(self, size: int | None = -1) -> str:
        if size is None or size < 0:
            while self._fill():
                pass
            size = len(self._buffer)
        while len(self._buffer) < size and self._fill():
            pass
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _words(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower()


@dataclass
class _ColumnStats:
    """One column, as far as the file has been read. "All rows" facts type the column, as pandas types a whole
    column; "labelled" ones (rows with a target) describe the dataset, as the whole-file reader's do."""

    present: int = 0  # all rows
    missing: int = 0  # all rows
    numeric: bool = True  # every present value is a number
    integer: bool = True  # ... and each chunk read them as whole numbers
    commas: bool = True  # every present value is a number with or without a decimal comma
    any_comma: bool = False
    words_all: bool = True  # every present value is true or false, in any case (all rows)
    words: bool = True  # the same, over labelled rows
    dates: bool = True  # every labelled value is an ISO 8601 date of the calendar
    labelled_present: int = 0
    labelled_missing: int = 0
    low: float = np.inf  # labelled numbers, read with a decimal point or comma
    high: float = -np.inf
    counts: pd.Series | None = field(default_factory=lambda: pd.Series(dtype="int64"))  # labelled text values
    overflowed: pd.Series | None = None  # the most frequent when counting stopped
    row_names_next: int | None = None  # the next row number expected of a leading unnamed column
    row_name_hashes: list[np.ndarray] = field(default_factory=list)

    def add(self, values: pd.Series, labelled: np.ndarray, semicolon: bool, row_names: bool) -> pd.Series:
        """Take in one chunk of the column; returns its values as rows are compared for duplicates: numbers by
        value, true/false words in any case alike, as the whole-file reader's types make them."""
        key = values
        present_mask = values.notna().to_numpy()
        present = values[present_mask]
        self.present += len(present)
        self.missing += len(values) - len(present)
        in_labels = present_mask & labelled
        labelled_values = values[in_labels]
        self.labelled_present += len(labelled_values)
        self.labelled_missing += int(labelled.sum()) - len(labelled_values)
        if self.numeric and len(present):
            parsed = pd.to_numeric(present, errors="coerce")
            if parsed.isna().any():
                self.numeric = self.integer = False
            else:
                self.integer = self.integer and parsed.dtype.kind in "iu"
                self._range(parsed[labelled[present_mask]])
                key = parsed.astype(float).reindex(values.index)
        if semicolon and self.commas and len(present):  # every chunk: a column is converted only if all match
            text = present.str.strip()
            self.commas = bool(text.str.fullmatch(DECIMAL_COMMA.pattern).all())
            self.any_comma = self.any_comma or bool(text.str.contains(",", regex=False).any())
            if self.commas and not self.numeric:
                self._range(pd.to_numeric(labelled_values.str.strip().str.replace(",", ".", regex=False)))
        if self.words_all and len(present):
            self.words_all = bool(_words(present).isin(list(BOOLEAN_WORDS)).all())
        if self.words and len(labelled_values):
            self.words = bool(_words(labelled_values).isin(list(BOOLEAN_WORDS)).all())
            if self.words:
                key = _words(values)
        if self.dates and len(labelled_values):
            text = labelled_values.str.strip()
            self.dates = bool(text.str.fullmatch(ISO_DATE.pattern).all()) and all(
                date_parts(v) is not None for v in text.unique())
        self._count(labelled_values)
        if row_names:
            self._row_names(values)
        return key

    def _range(self, numbers: pd.Series) -> None:
        if len(numbers):
            self.low = min(self.low, float(numbers.min()))
            self.high = max(self.high, float(numbers.max()))

    def _count(self, values: pd.Series) -> None:
        if self.counts is None:
            return
        merged = pd.concat([self.counts, values.value_counts(sort=False)])
        # Summed in order of first appearance, so that ties rank as the whole-file reader ranks them.
        self.counts = merged.groupby(level=0, sort=False).sum()
        if len(self.counts) > MAX_COUNTED:
            self.overflowed = _ranked(self.counts).iloc[:MAX_CATEGORIES]
            self.counts = None

    def _row_names(self, values: pd.Series) -> None:
        """Row numbers in sequence, checked as they come; other row names kept as 8-byte hashes for uniqueness."""
        if values.isna().any():
            self.row_name_hashes = []
            self.row_names_next = -1
            return
        numbers = pd.to_numeric(values, errors="coerce")
        if self.row_names_next != -1 and numbers.notna().all() and numbers.dtype.kind in "iu":
            start = int(numbers.iloc[0]) if self.row_names_next is None else self.row_names_next
            ok = (self.row_names_next is not None or start in (0, 1)) and bool(
                (numbers.to_numpy() == np.arange(start, start + len(numbers))).all())
            self.row_names_next = start + len(numbers) if ok else -2
        self.row_name_hashes.append(pd.util.hash_array(values.to_numpy(dtype=object)))

    def row_names_ok(self) -> bool:
        if self.missing or self.row_names_next == -1:
            return False
        if self.numeric and self.integer:  # pandas reads them as integers: they must count the rows
            return self.row_names_next is not None and self.row_names_next >= 0
        hashes = np.concatenate(self.row_name_hashes) if self.row_name_hashes else np.array([], dtype=np.uint64)
        return len(np.unique(hashes)) == len(hashes)

    def kind(self, target: bool, semicolon: bool) -> str:
        """The column's kind, as ``infer_schema`` names it for the whole-file reader's frame."""
        if self.numeric and self.present:
            return "integer" if self.integer and not self.missing else "number"
        if semicolon and self.commas and self.any_comma:
            return "number"
        if self.words and self.labelled_present and not target:
            return "boolean"
        if self.dates and self.labelled_present and not target:
            return DATETIME
        return "string"

    def categories(self) -> tuple[str, ...]:
        counts = self.overflowed if self.counts is None else _ranked(self.counts)
        return tuple(str(v) for v in counts.index[:MAX_CATEGORIES]) if counts is not None else ()

    def distinct_at_most_one(self, kind: str) -> bool:
        """Whether the labelled rows hold one value at most (a constant column)."""
        if kind in ("integer", "number"):
            return not self.high > self.low
        if self.counts is None:
            return False
        keys = pd.Series(self.counts.index.astype(str))
        return int((_words(keys) if kind == "boolean" else keys).nunique()) <= 1


def _ranked(counts: pd.Series) -> pd.Series:
    return counts.sort_values(ascending=False, kind="stable")


@dataclass
class _Target:
    """The target over labelled rows: what decides the task, the classes and the range."""

    numeric: bool = True
    whole: bool = True
    example: object = None  # the first value that is no number
    values: np.ndarray = field(default_factory=lambda: np.array([], dtype=float))  # distinct numbers, sorted
    more: bool = False  # more distinct numbers than were kept

    def add(self, labels: pd.Series, semicolon: bool) -> None:
        if not self.numeric or not len(labels):
            return
        text = labels.str.strip()
        parsed = pd.to_numeric(text, errors="coerce")
        if semicolon and parsed.isna().any():  # decimal commas: numbers too in a ';' file
            commas = text.str.fullmatch(DECIMAL_COMMA.pattern)
            parsed = parsed.where(~commas, pd.to_numeric(text.where(commas).str.replace(",", ".", regex=False),
                                                         errors="coerce"))
        finite = np.isfinite(parsed.to_numpy(dtype=float, na_value=np.nan))
        if not finite.all():
            self.numeric = False
            self.example = labels[~finite].iloc[0]
            return
        numbers = parsed.to_numpy(dtype=float)
        self.whole = self.whole and bool((numbers == np.round(numbers)).all())
        if not self.more:
            self.values = np.union1d(self.values, numbers)
            if len(self.values) > MAX_TARGET_VALUES:
                self.values, self.more = self.values[:MAX_TARGET_VALUES], True


class _Reservoir:
    """A uniform sample of at most ``size`` labelled rows: each row draws a random key and the ``size`` smallest
    keys stay (bottom-k sampling, uniform without replacement). Kept as Arrow strings, a fraction of the memory of
    Python ones, and given back in file order: a row number column stays in order, as ID checks expect."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seen = 0
        self.rows: pd.DataFrame | None = None
        self.keys = np.array([], dtype=float)
        self.positions = np.array([], dtype=np.int64)
        self._rng = np.random.default_rng(seed)

    def add(self, rows: pd.DataFrame) -> None:
        keys = self._rng.random(len(rows))
        positions = np.arange(self.seen, self.seen + len(rows))
        self.seen += len(rows)
        if len(self.keys) >= self.size:  # only rows that beat the largest key kept can enter
            entering = keys < self.keys.max()
            rows, keys, positions = rows[entering], keys[entering], positions[entering]
        if not len(rows):
            return
        new = rows.astype("string[pyarrow]").reset_index(drop=True)
        merged = new if self.rows is None else pd.concat([self.rows, new], ignore_index=True)
        keys, positions = np.concatenate([self.keys, keys]), np.concatenate([self.positions, positions])
        if len(keys) > self.size:
            keep = np.argpartition(keys, self.size - 1)[:self.size]
            merged, keys, positions = merged.take(keep).reset_index(drop=True), keys[keep], positions[keep]
        self.rows, self.keys, self.positions = merged, keys, positions

    def frame(self) -> pd.DataFrame:
        """The sampled rows in file order, as Arrow strings (missing where missing)."""
        if self.rows is None:
            return pd.DataFrame()
        return self.rows.take(np.argsort(self.positions, kind="stable")).reset_index(drop=True)


def _text(values: pd.Series) -> pd.Series:
    """Arrow strings back as Python ones, NaN where missing, as pandas reads text. Through categories, so that
    cells of the same value share one string: a sample of a few categories costs a pointer a cell."""
    shared = values.astype("category").astype(object)
    return shared.where(values.notna().to_numpy(), np.nan)


class _DistinctRows:
    """Duplicated rows, estimated within bounded memory: the ``size`` smallest row hashes and how often each
    occurs. Rows with those hashes are a uniform sample of the distinct rows with their exact counts; while every
    distinct row fits, the count is exact."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hashes = np.array([], dtype=np.uint64)
        self.counts = np.array([], dtype=np.int64)
        self.rows = 0
        self.full = False  # some distinct rows were left out

    def add(self, rows: pd.DataFrame) -> None:
        if not len(rows):
            return
        self.rows += len(rows)
        hashes = pd.util.hash_pandas_object(rows, index=False).to_numpy()
        if self.full:
            hashes = hashes[hashes <= self.hashes[-1]]
        merged, inverse = np.unique(np.concatenate([self.hashes, hashes]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([self.counts, np.ones(len(hashes), dtype=np.int64)]))
        if len(merged) > self.size:
            merged, counts, self.full = merged[:self.size], counts[:self.size], True
        self.hashes, self.counts = merged, counts.astype(np.int64)

    def duplicates(self) -> tuple[int, int | None]:
        """Rows that repeat an earlier one, and the rows the figure was estimated on (None: counted exactly)."""
        if not self.full:
            return self.rows - len(self.hashes), None
        mean = float(self.counts.sum()) / len(self.counts)  # copies per distinct row, in the sample
        return round(self.rows * (1 - 1 / mean)), int(self.counts.sum())


@dataclass(frozen=True)
class Counts:
    """What the guardrails need of every row, counted exactly, beside the sample."""

    rows: int  # labelled rows
    missing: dict[str, int]  # labelled rows without a value, per column
    constant: tuple[str, ...]  # columns holding a single value
    classes: dict[str, int] | None  # rows per class, most first (classification)
    target_low: float | None  # the numeric target's range (regression)
    target_high: float | None
    target_distinct: int | None
    numbers: dict[str, tuple[float, float]]  # each numeric column's range
    dates: tuple[str, ...]  # columns read as dates
    duplicates: int
    duplicates_estimated_on: int | None  # rows the duplicates were estimated on; None when counted exactly


@dataclass(frozen=True)
class StreamedDataset:
    """The upload as read in chunks: its schema and checks over every row, and a sample of its labelled rows typed
    as the whole-file reader types them."""

    sample: pd.DataFrame
    counts: Counts
    schema: Schema
    content_hash: str
    delimiter: str
    dropped_rows: int  # rows whose target was empty
    task: TaskChoice
    findings: tuple[dict[str, object], ...]
    bytes_read: int

    @property
    def rows(self) -> int:
        return self.counts.rows


def read(source: BinaryIO, target: str, *, max_bytes: int, min_rows: int, task: Task | None = None,
         chunk_rows: int = CHUNK_ROWS, sample_rows: int = SAMPLE_ROWS) -> StreamedDataset:
    """Read ``source`` (a binary stream, from its current position) in chunks and check it as ``validate`` checks a
    whole file; raises ``DatasetRejected`` with the reason, as soon as a chunk shows it."""
    text = UploadText(source, max_bytes)
    head = text.head(SNIFF_LINES)
    if not head.strip():
        raise DatasetRejected("empty: the file has no content", "empty")
    delimiter = sniff_delimiter(head)
    header = header_of(head, delimiter)
    row_names, unnamed = check_header(header, target)
    semicolon = delimiter == ";"
    positions = list(range(len(header)))
    kept_at = [i for i in positions if i not in unnamed and not (row_names and i == 0)]  # the dataset's columns
    target_at = header.index(target)
    stats = [_ColumnStats() for _ in header]
    labels = pd.Series(dtype="int64")
    goal = _Target()
    reservoir = _Reservoir(sample_rows)
    distinct_rows = _DistinctRows(sample_rows)
    rows = dropped = 0
    try:
        chunks = pd.read_csv(text, sep=delimiter, quotechar='"', skipinitialspace=True, on_bad_lines="error",
                             dtype=str, na_values=EXTRA_MISSING, chunksize=chunk_rows)
        for chunk in chunks:
            chunk.columns = positions
            labelled = chunk[target_at].notna().to_numpy()
            rows += len(chunk)
            dropped += len(chunk) - int(labelled.sum())
            keys = pd.DataFrame({i: column.add(chunk[i], labelled, semicolon, row_names and i == 0)
                                 for i, column in enumerate(stats)})
            kept = chunk[labelled]
            target_labels = kept[target_at].str.strip()
            goal.add(kept[target_at], semicolon)
            labels = pd.concat([labels, target_labels.value_counts(sort=False)]).groupby(level=0, sort=False).sum()
            if len(labels) > MAX_COUNTED:  # more classes than any classification takes: the count stops
                labels = labels.iloc[:MAX_COUNTED + 1]
            reservoir.add(kept)
            distinct_rows.add(keys.loc[labelled, kept_at])
    except pd.errors.ParserError as error:
        raise DatasetRejected(f"not a well-formed CSV: {error}", "malformed") from None
    if not rows:
        raise DatasetRejected("header only: the file has no data rows", "header_only")
    truncated = cut_off(text.last_line, delimiter, len(header))
    if truncated:
        raise DatasetRejected(truncated, "truncated")
    findings: list[dict[str, object]] = []
    if unnamed:
        filled = [i for i in unnamed if stats[i].present]
        if filled:
            raise DatasetRejected(f"column {filled[0] + 1} of the header has no name", "unnamed_column")
        findings.append({"check": "empty_unnamed_columns", "severity": "info", "details": {"count": len(unnamed)},
                         "message": f"{len(unnamed)} column(s) without a name and without values (a delimiter at "
                                    "the end of every line, as some exports write) are left out."})
    if row_names:
        if not stats[0].row_names_ok():
            raise DatasetRejected("column 1 of the header has no name, and its values are not row numbers or "
                                  "unique row names", "unnamed_column")
        findings.append({"check": "row_names", "severity": "info", "details": {},
                         "message": "The first column has no name and holds row numbers or names (as R's "
                                    "write.csv and pandas' to_csv write them): it is not used as a feature."})
    kinds = {i: stats[i].kind(i == target_at, semicolon) for i in kept_at}
    commas = [header[i] for i in kept_at if semicolon and not stats[i].numeric and kinds[i] == "number"]
    if commas:
        findings.append({"check": "decimal_commas", "severity": "info", "details": {"columns": commas},
                         "message": f"Column(s) written with decimal commas (12,5) read as numbers: "
                                    f"{', '.join(commas)}."})
    empty_columns = [header[i] for i in kept_at if not stats[i].present]
    if empty_columns:
        raise DatasetRejected(f"column(s) entirely empty: {', '.join(empty_columns)}", "empty_column")
    labelled_rows = rows - dropped
    if labelled_rows < min_rows:
        raise DatasetRejected(f"too few rows: {labelled_rows} with a {target!r} value, at least {min_rows} are "
                              "needed", "too_few_rows")
    y = stats[target_at]
    # The whole-file reader reads a target of true/false words without gaps as booleans: not numbers.
    booleans_target = y.words_all and not y.missing and not y.numeric
    choice = decide(target, task, numeric=goal.numeric and not booleans_target, whole=goal.whole,
                    distinct=len(goal.values), example=goal.example, more=goal.more)
    regression = not kind_of(choice.task).predicts_classes
    classes: dict[str, int] | None = None
    if regression:
        if not y.high > y.low:
            raise DatasetRejected(f"target {target!r} has one value only: nothing to learn", "one_class")
        kinds[target_at] = "number"
    else:
        named = _classes(labels, y, booleans_target, semicolon)
        if len(labels) > MAX_COUNTED:
            raise DatasetRejected(
                f"target {target!r} has more than {MAX_COUNTED:,} distinct values; classification supports up to "
                f"{MAX_CLASSES} (set metadata 'task' to regression to predict it as a number)", "too_many_classes")
        check_classes(named, target)
        classes = {str(k): int(v) for k, v in named.items()}
        kinds[target_at] = "string"
    columns = []
    for i in kept_at:
        name, kind = header[i], kinds[i]
        categories = tuple(classes or ()) if i == target_at and classes is not None else \
            stats[i].categories() if kind == "string" else ()
        columns.append(Column(name, kind, stats[i].labelled_missing, categories))
    schema = Schema(tuple(columns), target, kind_of(choice.task))
    sample = _typed(reservoir.frame(), header, kept_at, kinds, target_at, choice.task,
                    lambda labels: _label_names(labels, y, booleans_target, semicolon), semicolon)
    duplicates, estimated_on = distinct_rows.duplicates()
    counts = Counts(
        rows=labelled_rows, missing={header[i]: stats[i].labelled_missing for i in kept_at},
        constant=tuple(header[i] for i in kept_at if i != target_at and stats[i].distinct_at_most_one(kinds[i])),
        classes=classes, target_low=y.low if regression else None, target_high=y.high if regression else None,
        target_distinct=None if goal.more or not regression else len(goal.values),
        numbers={header[i]: (stats[i].low, stats[i].high) for i in kept_at if kinds[i] in ("integer", "number")},
        dates=tuple(header[i] for i in kept_at if kinds[i] == DATETIME),
        duplicates=duplicates, duplicates_estimated_on=estimated_on)
    return StreamedDataset(sample, counts, schema, text.content_hash, delimiter, dropped, choice, tuple(findings),
                           text.bytes_read)


def _label_names(labels: pd.Series, y: _ColumnStats, booleans: bool, semicolon: bool) -> pd.Series:
    """Class names as the whole-file reader writes them: it reads a column of whole numbers as integers, of other
    numbers as floats (``1.0``), of true/false words without gaps as booleans (``True``), and makes text of each."""
    if booleans:
        return _words(labels).map({"true": "True", "false": "False"})
    if y.numeric or (semicolon and y.commas and y.any_comma):
        numbers = pd.to_numeric(labels.str.replace(",", ".", regex=False))
        whole = y.numeric and y.integer and not y.missing
        return numbers.map(lambda v: str(int(v)) if whole else str(float(v))).astype(object)
    return labels


def _classes(labels: pd.Series, y: _ColumnStats, booleans: bool, semicolon: bool) -> pd.Series:
    """Rows per class, most first, counted under the class names of ``_label_names``."""
    names = _label_names(pd.Series(labels.index.astype(str)), y, booleans, semicolon)
    renamed = pd.Series(labels.to_numpy(), index=names.to_numpy())
    return _ranked(renamed.groupby(level=0, sort=False).sum())


def _typed(raw: pd.DataFrame, header: list[str], kept_at: list[int], kinds: dict[int, str], target_at: int,
           task: Task, label_names: Callable[[pd.Series], pd.Series], semicolon: bool) -> pd.DataFrame:
    """The sampled rows typed as the whole-file reader types the same rows."""
    out: dict[str, pd.Series] = {}
    for i in kept_at:
        values = _text(raw[i]) if len(raw) else pd.Series(dtype=object)  # a column at a time: one in Python
        kind = kinds[i]
        if i == target_at:
            text = values.astype(str).str.strip()
            if not kind_of(task).predicts_classes:
                out[header[i]] = pd.to_numeric(text.str.replace(",", ".", regex=False)).astype(float)
            else:
                out[header[i]] = label_names(text)
            continue
        if kind == "integer":
            out[header[i]] = pd.to_numeric(values).astype("int64")
        elif kind == "number":
            text = values.str.strip().str.replace(",", ".", regex=False) if semicolon else values
            out[header[i]] = pd.to_numeric(text).astype(float)
        elif kind == "boolean":
            out[header[i]] = _words(values).map(BOOLEAN_WORDS).astype(float)
        else:
            out[header[i]] = values.astype(object)
    return pd.DataFrame(out)


__all__ = ["MAX_CODED_CLASSES", "Counts", "StreamedDataset", "UploadText", "read"]


def portable_frames(source: BinaryIO, schema: Schema, *, max_bytes: int, chunk_rows: int = CHUNK_ROWS
                    ) -> Iterator[pd.DataFrame]:
    """A validated upload, a chunk of rows at a time, as ``dataset_validation.portable_csv`` writes it whole: the
    named columns only, '?' and empty cells missing, no rows without a target, every cell as written except the
    decimal commas of the columns ``schema`` reads as numbers (known from every row, so no chunk decides alone)."""
    text = UploadText(source, max_bytes)
    head = text.head(SNIFF_LINES)
    delimiter = sniff_delimiter(head)
    header = header_of(head, delimiter)
    named = [i for i, name in enumerate(header) if name]
    commas = {c.name for c in schema.columns if c.kind in ("number", "integer")} if delimiter == ";" else set()
    chunks = pd.read_csv(text, sep=delimiter, quotechar='"', skipinitialspace=True, dtype=str,
                         keep_default_na=False, na_values=["", *EXTRA_MISSING], chunksize=chunk_rows)
    for chunk in chunks:
        chunk = chunk.iloc[:, named]
        chunk.columns = [header[i] for i in named]
        for name in commas & set(chunk.columns):
            chunk[name] = chunk[name].str.strip().str.replace(",", ".", regex=False)
        yield chunk[chunk[schema.target].notna()]
