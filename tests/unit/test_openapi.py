"""The OpenAPI document built from deployed models' signatures: what it lets data say, and what each route takes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared import openapi
from shared.model_contract import ModelSignature
from shared.schema import Column

PLANTED = ("<a href='https://example.com'>win</a>", "**bold**", "[link](https://example.com)", "<strong>x</strong>")


def texts(node: Any) -> Iterator[str]:
    """Every description and summary: Swagger UI renders descriptions as Markdown."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary") and isinstance(value, str):
                yield value
            else:
                yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def test_text_from_the_data_never_reaches_a_markdown_description():
    signature = ModelSignature((Column("job", "string", categories=PLANTED), Column("<b>age</b>", "integer")),
                               "**y**", ("no", "<i>yes</i>"), ignored=frozenset({"[z](https://example.com)"}))
    document = openapi.document({"bank": signature}, "bank")
    planted = [*PLANTED, "<b>age</b>", "**y**", "<i>yes</i>", "[z](https://example.com)"]
    assert not [(text, value) for text in texts(document) for value in planted if value in text]
    row = document["components"]["schemas"]["Row_bank"]  # the data is kept where Swagger UI shows it as text
    assert row["properties"]["job"]["examples"] == list(PLANTED) and "<b>age</b>" in row["properties"]
