"""Dataset schema: each column's kind, and the categories seen for text columns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

MAX_CATEGORIES = 1000
BOOLEAN_WORDS = {"true": 1.0, "false": 0.0}  # a "boolean" column's values, in any case, as the model sees them


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "integer", "number", "boolean" (1/0 to the model) or "string"
    missing: int = 0
    categories: tuple[str, ...] = field(default=())  # for "string" columns, most frequent first

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("integer", "number", "boolean")

    @cached_property
    def known(self) -> frozenset[str]:
        """The categories as a set, built once per column (scoring counts unseen ones per request)."""
        return frozenset(self.categories)


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]
    target: str
    task: str = "classification"  # or "regression": decided at validation (``shared.tasks``)

    @property
    def features(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.name != self.target)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "task": self.task, "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        columns = tuple(
            Column(c["name"], c["kind"], int(c.get("missing", 0)), tuple(c.get("categories", ())))
            for c in data["columns"]
        )
        return cls(columns, data["target"], str(data.get("task") or "classification"))

    def without(self, names: set[str]) -> Schema:
        return Schema(tuple(c for c in self.columns if c.name not in names), self.target, self.task)
