"""The house as docs/architecture.md draws it: which room may import which, no cycles, small files, short
functions. A move that breaks one of these changes the picture, so it changes the doc and this table together."""
from __future__ import annotations

import ast
import re
import typing as t
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
SHARED = {"module_utils/_epns", "module_utils/_hostname", "module_utils/_host", "module_utils/_result",
          "module_utils/_python_floor"}
# room -> the rooms it may import besides the shared pieces (docs/architecture.md, "The rooms and the one-way flow")
ALLOWED: t.Dict[str, t.Set[str]] = {
    "module_utils/_probe": set(),
    "module_utils/_agent": set(),
    "module_utils/_firewall": set(),
    "module_utils/_proxy": set(),
    "module_utils/_eset_api": set(),
    "module_utils/_eset_policy": {"module_utils/_eset_api"},
    "module_utils/_wol": {"module_utils/_firewall", "module_utils/_eset_api"},
    "module_utils/_calibrate": {"module_utils/_eset_api", "module_utils/_eset_policy", "module_utils/_wol"},
    "plugin_utils/_report": set(),
    "plugin_utils/_published": set(),
    "plugin_utils/_eset_inventory": {"module_utils/_eset_api", "module_utils/_eset_policy"},
}
# plugins outside the rooms -> the rooms they may import (the shared pieces besides)
PLUGIN_IMPORTS: t.Dict[str, t.Set[str]] = {
    "inventory/eset_protect": {"module_utils/_eset_api", "plugin_utils/_eset_inventory"},
}
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60


def room_of(path: Path) -> str:
    parts = path.relative_to(PLUGINS).with_suffix("").parts
    return "/".join(parts[:2]) if parts[0] in ("module_utils", "plugin_utils") else "/".join(parts)


def imported_rooms(path: Path) -> t.Set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = path.parent
            for _level in range(node.level - 1):
                base = base.parent
            target = base.joinpath(*(node.module or "").split(".")) if node.module else base
            names = [target] if node.module else [base / alias.name for alias in node.names]
        elif (node.module or "").startswith("ansible_collections.protectnet.epns.plugins."):
            rest = node.module.split(".")[4:]  # type: ignore[union-attr]
            names = [PLUGINS.joinpath(*rest)]
        else:
            continue
        for name in names:
            candidate = name if name.is_dir() else name.with_suffix(".py")
            if candidate.exists():
                found.add(room_of(candidate if candidate.is_file() else candidate / "__init__.py"))
    return found - {room_of(path)}


SOURCES = sorted(PLUGINS.rglob("*.py"))
GRAPH = {room: set() for room in {room_of(p) for p in SOURCES}}  # type: t.Dict[str, t.Set[str]]
for source in SOURCES:
    GRAPH[room_of(source)] |= imported_rooms(source)


@pytest.mark.parametrize("room", sorted(r for r in GRAPH if r.startswith(("module_utils/", "plugin_utils/"))))
def test_a_room_imports_only_the_shared_pieces_and_the_rooms_the_picture_allows(room: str) -> None:
    allowed = set() if room in SHARED else SHARED | ALLOWED[room]  # the shared pieces import no room
    assert GRAPH[room] <= allowed, f"{room} imports {sorted(GRAPH[room] - allowed)}: change the picture first"


@pytest.mark.parametrize("plugin", sorted(PLUGIN_IMPORTS))
def test_an_inventory_plugin_imports_only_its_rooms(plugin: str) -> None:
    allowed = SHARED | PLUGIN_IMPORTS[plugin]
    assert GRAPH[plugin] <= allowed, f"{plugin} imports {sorted(GRAPH[plugin] - allowed)}: change the picture first"


def test_every_inventory_plugin_is_in_the_table() -> None:
    assert {r for r in GRAPH if r.startswith("inventory/")} == set(PLUGIN_IMPORTS)


def test_a_module_imports_no_other_module_and_nothing_imports_a_module() -> None:
    modules = {r for r in GRAPH if r.startswith("modules/")}
    importers = {room: sorted(GRAPH[room] & modules) for room in GRAPH if GRAPH[room] & modules}
    assert importers == {}


def test_the_rooms_have_no_import_cycle() -> None:
    state: t.Dict[str, int] = {}

    def visit(room: str, trail: t.List[str]) -> None:
        if state.get(room) == 1:
            pytest.fail("import cycle: " + " -> ".join([*trail, room]))
        if state.get(room) == 2:
            return
        state[room] = 1
        for target in sorted(GRAPH.get(room, ())):
            visit(target, [*trail, room])
        state[room] = 2

    for room in sorted(GRAPH):
        visit(room, [])


def test_no_file_in_plugins_is_over_the_limit() -> None:
    long = {str(p.relative_to(PLUGINS)): n for p in SOURCES if (n := p.read_text().count("\n")) > MAX_FILE_LINES}
    assert long == {}


def test_no_function_in_plugins_is_over_the_limit() -> None:
    long = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PLUGINS)}:{node.name}"] = size
    assert long == {}


def test_the_architecture_page_names_the_rooms_that_exist() -> None:
    """docs/architecture.md matches the tree: every file it names exists, every package of module_utils and
    plugin_utils is named there."""
    page = (PLUGINS.parent / "docs" / "architecture.md").read_text()
    files = {p.name for p in SOURCES} | {p.name for p in (PLUGINS.parent / "tests").rglob("*.py")}
    named = set(re.findall(r"\b(_[a-z0-9_]+\.py)\b", page))
    assert named - files == set()
    packages = {p.parent.name for p in SOURCES if p.name == "__init__.py" and p.parent.parent.name.endswith("_utils")}
    assert {name for name in packages if f"{name}/" not in page} == set()
