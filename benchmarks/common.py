"""Shared by the benchmarks: the dataset to use and a fixed hold-out split of it."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cli import sample_data

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bankmarketing_train.csv"


def dataset_bytes() -> tuple[bytes, str]:
    """``DATA`` when set, else the bank file beside the project when present, else generated rows."""
    chosen = os.environ.get("DATA")
    path = Path(chosen) if chosen else DEFAULT_DATA
    if path.is_file():
        return path.read_bytes(), str(path)
    return sample_data.to_csv(sample_data.rows(20000)), "generated sample (20,000 rows)"


def holdout(frame: pd.DataFrame, target: str = "y") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fifth of the file held back, stratified, never seen by any training."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=0.2, random_state=2024, stratify=frame[target])
    return train.reset_index(drop=True), test.reset_index(drop=True)
