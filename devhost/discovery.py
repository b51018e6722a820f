"""Find the functions of a FunctionApp and describe their triggers.

Everything here is read from the app object itself (``get_functions()``), so the
host serves exactly what ``function_app.py`` declares.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the app, with its trigger binding as plain JSON values."""

    name: str
    trigger_type: str
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]
    user_function: Callable[..., Any]
    is_async: bool
    wants_context: bool

    @property
    def trigger_arg(self) -> str:
        return str(self.trigger["name"])

    @property
    def function_id(self) -> str:
        return f"Host.Functions.{self.name}"


def load_app(target: str) -> func.FunctionApp:
    """Import ``module:attribute`` (default attribute ``app``)."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attr or "app")
    if not isinstance(app, func.FunctionApp):
        raise TypeError(f"{target} is not an azure.functions.FunctionApp")
    return app


def functions_of(app: func.FunctionApp) -> list[Any]:
    """``app.get_functions()``, once per app: a second call fails its unique-name check, as in the worker."""
    cached: list[Any] | None = getattr(app, "_devhost_functions", None)
    if cached is None:
        cached = list(app.get_functions())
        app._devhost_functions = cached  # type: ignore[attr-defined]
    return cached


def discover(app: func.FunctionApp) -> list[FunctionSpec]:
    specs: list[FunctionSpec] = []
    for function in functions_of(app):
        described = json.loads(function.get_function_json())
        bindings = tuple(described["bindings"])
        trigger = next((b for b in bindings if b["type"].endswith("Trigger")), None)
        if trigger is None:
            raise ValueError(f"function {function.get_function_name()} has no trigger")
        user_function = function.get_user_function()
        params = inspect.signature(user_function).parameters
        specs.append(
            FunctionSpec(
                name=str(function.get_function_name()),
                trigger_type=trigger["type"],
                trigger=trigger,
                bindings=bindings,
                user_function=user_function,
                is_async=inspect.iscoroutinefunction(user_function),
                wants_context="context" in params,
            )
        )
    return specs


_SEGMENT = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(\?)?(?::([a-z]+)(?:\([^)]*\))?)?(=[^}]*)?\}")
_STARLETTE_CONVERTERS = {"int": "int", "long": "int", "double": "float", "float": "float", "guid": "uuid"}


def route_variants(route: str) -> list[str]:
    """Translate an Azure Functions route template into Starlette paths.

    ``{id:int}`` keeps its constraint, ``{*rest}`` becomes a path catch-all and an
    optional trailing ``{v?}`` yields two paths, with and without it.
    """
    with_optional = route
    without_optional: str | None = None

    def convert(match: re.Match[str]) -> str:
        star, name, _optional, constraint, _default = match.groups()
        if star:
            return "{" + name + ":path}"
        converter = _STARLETTE_CONVERTERS.get(constraint or "")
        return "{" + name + (f":{converter}" if converter else "") + "}"

    optional = [m for m in _SEGMENT.finditer(route) if m.group(3)]
    if optional:
        first = optional[0]
        without_optional = route[: first.start()].rstrip("/")
    paths = [_SEGMENT.sub(convert, with_optional)]
    if without_optional is not None:
        paths.append(_SEGMENT.sub(convert, without_optional))
    return paths


def blob_path_parts(path: str) -> tuple[str, str, re.Pattern[str]]:
    """Split ``container/pattern`` into the container, a listing prefix and a matcher."""
    container, _, pattern = path.partition("/")
    prefix = pattern.split("{", 1)[0]
    regex = ""
    for piece in re.split(r"(\{[^}]+\})", pattern):
        if piece.startswith("{") and piece.endswith("}"):
            regex += f"(?P<{piece[1:-1]}>.+)"
        else:
            regex += re.escape(piece)
    return container, prefix, re.compile(f"{regex}\\Z", re.DOTALL)  # \Z: '$' would also match before a final newline
