"""The rows each dataset version keeps out of training, so that in Azure the champion and the challenger are
compared on the same rows, which neither trained on.

A row is held out by the hash of its own text, not by its position: the same
row lands on the same side in every version of a dataset, so the rows the
challenger is judged on were held out of the champion's training as well
(when both versions carry them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import numpy as np
import pandas as pd
from numpy.typing import NDArray

HOLDOUT_SHARE = 0.1  # of the rows, by their hash
HOLDOUT_FILE = "holdout.csv"
TRAIN_FILE = "train.csv"
COMPARED_ROWS = 20_000  # the most held-out rows both models score (the first ones, so the same for both)
COMPARED_BYTES = 32 << 20  # read of holdout.csv for them: the file itself grows with the dataset
_BUCKETS = 10_000


def held_out_rows(frame: pd.DataFrame) -> NDArray[np.bool_]:
    """Whether each row of a chunk of the portable copy (cells as text, missing ones NaN) is held out: a hash of
    the row's cells, with missing and empty the same, so a row's side never depends on the chunk it is in."""
    cells = frame.fillna("").astype(str)
    hashes = pd.util.hash_pandas_object(cells, index=False).to_numpy(dtype=np.uint64)
    held: NDArray[np.bool_] = hashes % _BUCKETS < int(HOLDOUT_SHARE * _BUCKETS)
    return held


def rows(holdout: bytes, limit: int = COMPARED_ROWS) -> Iterator[dict[str, str | None]]:
    """The held-out rows as records, an empty cell read as missing (as the training table reads it)."""
    text = holdout.decode("utf-8", errors="ignore")
    whole = len(holdout) < COMPARED_BYTES
    if not whole:  # only the file's head was read: its last line may be cut off
        text = text[:text.rfind("\n") + 1]
    records = list(csv.DictReader(io.StringIO(text)))
    if not whole and records:
        records.pop()  # a quoted cell with a line end could have been cut too
    for row in records[:limit]:
        yield {name: (value if value != "" else None) for name, value in row.items()}
