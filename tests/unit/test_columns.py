"""Reading request rows into model inputs: the one-row fast path agrees with the general path, value for value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cli import sample_data
from shared import scoring
from shared.dataset_validation import validate
from shared.errors import BadRequest
from shared.model_contract import Columns, ModelSignature
from shared.schema import Column

TRAINING = validate(sample_data.to_csv(sample_data.rows(500, seed=1)), "y", max_bytes=10**8, min_rows=50)
SIGNATURE = ModelSignature.from_schema(TRAINING.schema, ("no", "yes"))
FLAGGED = ModelSignature((Column("age", "integer"), Column("member", "boolean"), Column("city", "string",
                                                                                          categories=("a", "b"))),
                         "y", ("no", "yes"), ignored=frozenset({"id"}))


def rows() -> list[dict]:
    out = [{k: v for k, v in r.items() if k != "y"} for r in sample_data.rows(50, seed=9)]
    out[0]["age"] = None  # missing number
    out[1]["job"] = None  # missing text
    out[2]["job"] = ""  # an empty string is a category like any other
    out[3]["job"] = "astronaut"  # unseen
    out[4]["age"] = 41.5
    return out


def same(a: Columns, b: Columns) -> bool:
    return a.keys() == b.keys() and all(
        a[n].dtype == b[n].dtype and a[n].shape == b[n].shape and
        all((x == y) or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
            for x, y in zip(a[n].ravel().tolist(), b[n].ravel().tolist(), strict=True)) for n in a)


@pytest.mark.parametrize("index", range(50))
def test_one_row_reads_as_it_does_among_others(index: int):
    row = rows()[index]
    alone, unseen_alone = scoring.columns_for([row], SIGNATURE)
    assert scoring._one_good_row(row, SIGNATURE) is not None  # the fast path took it
    among, unseen_among = scoring.columns_for([row, row], SIGNATURE)
    assert same(alone, {n: v[:1] for n, v in among.items()}) and unseen_among == 2 * unseen_alone


@pytest.mark.parametrize("value,field,words", [
    (True, "age", "expected a number"), (float("nan"), "age", "expected a number"),
    (1e39, "age", "expected a number"), ("41", "age", "expected a number"), (3, "city", "expected a string"),
    ("maybe", "member", "expected true or false"),
])
def test_a_doubtful_row_goes_the_general_way_and_gets_its_errors_named(value, field, words):
    row = {"age": 41, "member": True, "city": "a", field: value}
    assert scoring._one_good_row(row, FLAGGED) is None
    with pytest.raises(BadRequest) as caught:
        scoring.columns_for([row], FLAGGED)
    assert caught.value.details == [{"row": 0, "field": field, "error": caught.value.details[0]["error"]}]
    assert words in str(caught.value.details[0]["error"])


def test_missing_unknown_and_ignored_columns():
    with pytest.raises(BadRequest, match="problem"):
        scoring.columns_for([{"age": 41, "member": True}], FLAGGED)  # city missing
    with pytest.raises(BadRequest, match="problem"):
        scoring.columns_for([{"age": 41, "member": True, "city": "a", "zip": 1}], FLAGGED)  # unknown column
    columns, unseen = scoring.columns_for([{"age": 41, "member": "TRUE", "city": "c", "id": 7}], FLAGGED)
    assert set(columns) == {"age", "member", "city"} and unseen == 1  # the ignored id is dropped
    assert columns["member"].dtype == np.float32 and columns["member"][0, 0] == 1.0
