"""Each guardrail on a small crafted dataset: it fires on the problem and stays quiet without it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.guardrails import evaluate

RNG = np.random.default_rng(3)


def base(rows: int = 600, positive_share: float = 0.5) -> pd.DataFrame:
    y = np.where(RNG.random(rows) < positive_share, "yes", "no")
    signal = (y == "yes").astype(float)
    return pd.DataFrame({
        "age": RNG.integers(18, 90, rows),
        "income": RNG.normal(50, 10, rows) + 3 * signal,  # a little signal, as real features have
        "city": RNG.choice(["a", "b", "c", "d"], rows),
        "score": RNG.normal(0, 1, rows) + 1.0 * signal,
        "y": y,
    })


def found(frame: pd.DataFrame, check: str, excluded: tuple[str, ...] = ()) -> dict | None:
    return next((f for f in evaluate(frame, "y", excluded) if f["check"] == check), None)


def test_class_balance():
    balanced = found(base(), "class_balance")
    assert balanced is not None and balanced["severity"] == "info"
    skewed = found(base(positive_share=0.08), "class_balance")
    assert skewed is not None and skewed["severity"] == "warning"
    assert "'yes' is" in skewed["message"] and "threshold" in skewed["message"]
    assert 0.04 < skewed["details"]["minority_share"] < 0.12


def test_missing_values_per_column():
    frame = base()
    frame.loc[frame.index[:90], "income"] = np.nan
    frame.loc[frame.index[:3], "city"] = None
    finding = found(frame, "missing_values")
    assert finding is not None and finding["severity"] == "warning"
    assert finding["details"]["columns"] == {"income": 0.15, "city": 0.005}
    clean = found(base(), "missing_values")
    assert clean is not None and clean["severity"] == "info" and clean["details"]["columns"] == {}


def test_constant_columns():
    frame = base()
    frame["country"] = "nl"
    finding = found(frame, "constant_columns")
    assert finding is not None and finding["details"]["columns"] == ["country"]
    assert found(base(), "constant_columns") is None


def test_id_like_columns():
    frame = base()
    frame["customer_id"] = [f"C{i:06d}" for i in range(len(frame))]
    frame["row_number"] = np.arange(len(frame))
    finding = found(frame, "id_like_columns")
    assert finding is not None and finding["details"]["columns"] == ["customer_id", "row_number"]
    assert found(base(), "id_like_columns") is None  # age repeats, income is not monotonic
    assert finding["message"].endswith("exclude them.")
    excluded = {f["check"]: f for f in evaluate(frame, "y", ("customer_id", "row_number"))}["id_like_columns"]
    assert excluded["message"].endswith("the upload excludes them from training.")


def test_duplicate_rows():
    frame = base()
    doubled = pd.concat([frame, frame.iloc[:30]], ignore_index=True)
    finding = found(doubled, "duplicate_rows")
    assert finding is not None and finding["severity"] == "warning" and finding["details"]["rows"] == 30
    none = found(base(), "duplicate_rows")
    assert none is not None and none["details"]["rows"] == 0


def test_target_leakage_suspect_is_reported_not_dropped():
    frame = base()
    # Known only after the outcome: the call's length, long when the customer said yes.
    frame["duration"] = np.where(frame["y"] == "yes", RNG.normal(600, 150, len(frame)), RNG.normal(200, 80, len(frame)))
    finding = found(frame, "target_leakage")
    assert finding is not None and finding["severity"] == "alert" and finding["details"]["column"] == "duration"
    assert finding["details"]["auc_alone"] > finding["details"]["auc_others"]
    assert "exclude=duration" in finding["message"]
    excluded = found(frame, "target_leakage", excluded=("duration",))
    assert excluded is not None and "excluded from training" in excluded["message"]
    assert found(base(), "target_leakage") is None  # ordinary features are no suspects


def test_shuffled_row_numbers_and_keys_named_so_are_id_like_too():
    frame = base()
    frame["record"] = RNG.permutation(len(frame)) + 1000  # a shuffled key filling a range
    frame["CustomerID"] = RNG.choice(10**7, len(frame), replace=False).astype(float)  # read as floats
    frame["paid"] = RNG.normal(100, 5, len(frame))  # unique values, but a measurement named like nothing of the sort
    finding = found(frame, "id_like_columns")
    assert finding is not None and finding["details"]["columns"] == ["record", "CustomerID"]


def test_a_name_is_read_whole_a_newline_after_id_does_not_make_a_column_id_like():
    frame = base()
    frame["paid_id\n"] = RNG.normal(100, 5, len(frame))  # unique measurements; '$' would match before the newline
    assert found(frame, "id_like_columns") is None
