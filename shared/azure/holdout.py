"""The rows each dataset version keeps out of training, so that in Azure the champion and the challenger are
compared on the same rows, which neither trained on.

A row is held out by the hash of its own text, not by its position: the same
row lands on the same side in every version of a dataset, so the rows the
challenger is judged on were held out of the champion's training as well
(when both versions carry them).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator

HOLDOUT_SHARE = 0.1  # of the rows, by their hash
HOLDOUT_FILE = "holdout.csv"
TRAIN_FILE = "train.csv"
COMPARED_ROWS = 20_000  # the most held-out rows both models score (the first ones, so the same for both)
_BUCKETS = 10_000


def held_out(row: list[str]) -> bool:
    digest = hashlib.blake2b("\x1f".join(row).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _BUCKETS < HOLDOUT_SHARE * _BUCKETS


def split(portable: bytes) -> tuple[bytes, bytes, int]:
    """The training rows and the held-out rows of a portable CSV (``shared.dataset_validation.portable_csv``),
    each with the header, and how many were held out."""
    train, holdout = io.StringIO(), io.StringIO()
    train_out = csv.writer(train, lineterminator="\n")
    holdout_out = csv.writer(holdout, lineterminator="\n")
    reader = csv.reader(io.StringIO(portable.decode("utf-8")))
    header = next(reader, None)
    if header is None:
        return b"", b"", 0
    train_out.writerow(header)
    holdout_out.writerow(header)
    count = 0
    for row in reader:
        if held_out(row):
            holdout_out.writerow(row)
            count += 1
        else:
            train_out.writerow(row)
    return train.getvalue().encode("utf-8"), holdout.getvalue().encode("utf-8"), count


def rows(holdout: bytes, limit: int = COMPARED_ROWS) -> Iterator[dict[str, str | None]]:
    """The held-out rows as records, an empty cell read as missing (as the training table reads it)."""
    reader = csv.DictReader(io.StringIO(holdout.decode("utf-8")))
    for index, row in enumerate(reader):
        if index >= limit:
            return
        yield {name: (value if value != "" else None) for name, value in row.items()}
