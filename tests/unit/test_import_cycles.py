from pathlib import Path

from tests import import_cycles


def test_a_circle_is_found_and_spelled_out_even_through_a_deferred_import():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e2"}, "e2": {"e"}}
    assert sorted(import_cycles.cycles(edges)) == [["a", "b", "c", "a"], ["e", "e2", "e"]]


def test_imports_inside_functions_and_type_checking_blocks_count(tmp_path: Path, monkeypatch):
    package = tmp_path / "shared"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text("from typing import TYPE_CHECKING\n"
                                    "if TYPE_CHECKING:\n    from shared.two import X\n")
    (package / "two.py").write_text("def f():\n    from shared import one\n    return one\n")
    monkeypatch.setattr(import_cycles, "ROOT", tmp_path)
    modules = {"shared", "shared.one", "shared.two"}
    assert import_cycles.imports_of(package / "one.py", modules) == {"shared.two"}
    assert import_cycles.imports_of(package / "two.py", modules) == {"shared", "shared.one"}


def test_the_project_has_no_import_circle():
    assert import_cycles.cycles(import_cycles.graph()) == []
