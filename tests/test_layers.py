"""The folders are the layers, and every import in the package runs down them.

    doors (wyoming/, http/)  ─┐
                              ├─→ core ─→ text
    engines (local/, cloud/) ─┘

The composition root (`server.py`, `__main__.py`, `commands/`) wires the layers together and is
the only code that imports a door or an engine. The engine interface lives in `core/engine.py`
(core's port), so no arrow has to run from the core to an engine. Two doors, or two engines,
never import each other. Every import counts: those inside functions and under
`TYPE_CHECKING` too.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wyoming_xtts"

ALLOWED: dict[str, set[str]] = {
    "text": set(),
    "core": {"text"},
    "engines": {"core", "text"},
    "doors": {"core", "text"},
}
"""What each layer may import besides itself (the composition root may import anything)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every package module `path` imports, absolute, with the line it is imported on."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (
        _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    )
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import x` may name a module as well as a value: count both readings.
            found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return [(line, name) for line, name in found if name.split(".")[0] == "wyoming_xtts"]


def _unit(module: str) -> tuple[str, str] | None:
    """(layer, part of it) for a module of a layer; None for the root and the bare package."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in ALLOWED:
        return None
    layer = parts[1]
    part = parts[2] if layer in ("doors", "engines") and len(parts) > 2 else ""
    return layer, part


def _allowed(source: tuple[str, str], target: tuple[str, str]) -> bool:
    if target[0] == source[0]:
        # Within a layer, but never from one door (or engine) into another.
        return not target[1] or not source[1] or target[1] == source[1]
    return target[0] in ALLOWED[source[0]]


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


def _arrows_up() -> list[str]:
    wrong: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module_name(path))
        if source is None:
            continue  # the composition root
        for line, imported in _imports(path):
            if not _is_module(imported):
                continue  # a name imported from a module, counted through its module
            target = _unit(imported)
            if target is None:
                if imported != "wyoming_xtts":  # the bare package holds only __version__
                    wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {imported}")
                continue
            if not _allowed(source, target):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {imported}")
    return wrong


def test_no_import_runs_up_the_layers() -> None:
    assert _arrows_up() == []


@pytest.mark.parametrize(
    ("module", "imported", "allowed"),
    [
        ("wyoming_xtts.core.speaking", "wyoming_xtts.text.segmentation", True),
        ("wyoming_xtts.core.speaking", "wyoming_xtts.engines.local.engine", False),
        ("wyoming_xtts.text.ssml", "wyoming_xtts.core.errors", False),
        ("wyoming_xtts.doors.http.app", "wyoming_xtts.engines.cloud", False),
        ("wyoming_xtts.doors.http.app", "wyoming_xtts.doors.wyoming.server", False),
        ("wyoming_xtts.engines.local.engine", "wyoming_xtts.engines.cloud.http", False),
        ("wyoming_xtts.engines.local.engine", "wyoming_xtts.core.engine", True),
    ],
)
def test_the_rule_itself_tells_a_wrong_arrow_from_a_right_one(
    module: str, imported: str, allowed: bool
) -> None:
    source, target = _unit(module), _unit(imported)
    assert source is not None and target is not None
    assert _allowed(source, target) is allowed
