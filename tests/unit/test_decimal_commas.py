"""Files as spreadsheets write them where the comma is the decimal mark: ';' between fields, 12,5 for numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.batch import score_csv
from shared.dataset_validation import validate
from shared.model_contract import Columns, ModelSignature, Outputs
from shared.schema import Column
from tests.unit.fakes import ConstantModel


def rows(count: int = 120) -> list[str]:
    return [f"{20 + i % 50};{i % 7},{i % 10}5;{'yes' if i % 2 else 'no'};{'-' if i % 3 else ''}{i},5;A{i % 4}"
            for i in range(count)]


def test_decimal_comma_columns_of_a_semicolon_file_are_numbers_and_said_so():
    content = ("age;rate;y;change;code\n" + "\n".join(rows()) + "\n").encode()
    dataset = validate(content, "y", max_bytes=10**7, min_rows=50)
    assert dataset.delimiter == ";"
    kinds = {c.name: c.kind for c in dataset.schema.columns}
    assert kinds == {"age": "integer", "rate": "number", "y": "string", "change": "number", "code": "string"}
    assert dataset.frame["rate"].tolist()[:3] == [0.05, 1.15, 2.25]
    assert dataset.frame["change"].tolist()[:3] == [0.5, -1.5, -2.5]
    assert next(f for f in dataset.findings if f["check"] == "decimal_commas")["details"] == {
        "columns": ["rate", "change"]}


def test_a_decimal_comma_target_is_a_quantity_to_predict():
    lines = [f"{i % 9};{i},{i % 4}" for i in range(80)]
    dataset = validate(("size;price\n" + "\n".join(lines)).encode(), "price", max_bytes=10**7, min_rows=50)
    assert dataset.schema.task == "regression" and dataset.frame["price"].iloc[5] == 5.1


def test_in_a_comma_file_a_quoted_number_with_a_comma_stays_text():
    lines = [f'{i},"{i % 5},{i % 3}",{"yes" if i % 2 else "no"}' for i in range(80)]
    dataset = validate(("n,pair,y\n" + "\n".join(lines)).encode(), "y", max_bytes=10**7, min_rows=50)
    assert dataset.schema.column("pair").kind == "string"
    assert not [f for f in dataset.findings if f["check"] == "decimal_commas"]


@dataclass
class Recording(ConstantModel):
    seen: list[Columns] = field(default_factory=list)

    def predict(self, columns: Columns) -> Outputs:
        self.seen.append(columns)
        return super().predict(columns)


def test_batch_scoring_reads_decimal_commas_as_the_training_upload_did():
    signature = ModelSignature((Column("rate", "number"), Column("code", "string", categories=("A0",))), "y",
                               ("no", "yes"))
    model = Recording(signature, [0.4, 0.6])
    summary = score_csv(b"rate;code\n1,25;A0\n-3;A1\n;A0\n", model, 100, lambda piece: None)
    assert model.seen[0]["rate"].ravel().tolist()[:2] == [1.25, -3.0] and np.isnan(model.seen[0]["rate"][2, 0])
    assert summary["values_not_numeric"] == 0 and summary["rows"] == 3


def test_the_demo_sends_a_files_first_rows_as_ingest_read_them(tmp_path):
    from cli.uploads import first_rows

    upload = tmp_path / "eu.csv"
    upload.write_bytes(b'\xef\xbb\xbf;age;rate;city;y\n1;41;1,5;"Paris; centre";no\n2;;-0,25;?;yes\n3;7;2;x;no\n')
    assert first_rows(upload, "y") == [{"age": 41.0, "rate": 1.5, "city": "Paris; centre"},
                                       {"age": None, "rate": -0.25, "city": None}]
