"""The house rules, read from the source: imports point one way between the domain and ui/ (lazy imports
counted, TYPE_CHECKING ones not), the HTTP libraries are imported in the wire modules only, and no module
grows past ~400 lines."""
from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "wanlab"
MAX_LINES = 460      # "about 400": black-style formatting spreads long signatures over many lines


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()


def _runtime_imports(name: str, path: Path) -> set[str]:
    """Every wanlab module `name` imports at run time, at the top or inside a function; not under TYPE_CHECKING.
    The package `wanlab` itself (the facade every submodule import runs anyway) is left out."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for n in ast.walk(block)}
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.update(t for t in [target, *(f"{target}.{a.name}" for a in node.names)] if t in MODULES)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
    return found - {name, "wanlab"}


GRAPH = {name: _runtime_imports(name, path) for name, path in MODULES.items()}


def _reaches(start: str, goal: str) -> list[str] | None:
    prev: dict[str, str | None] = {start: None}
    todo = deque([start])
    while todo:
        here = todo.popleft()
        for nxt in sorted(GRAPH[here]):
            if nxt not in prev:
                prev[nxt] = here
                todo.append(nxt)
    if goal not in prev:
        return None
    path = [goal]
    while prev[path[-1]] is not None:
        path.append(prev[path[-1]])  # type: ignore[arg-type]
    return path[::-1]


def test_no_import_cycle_between_the_domain_and_the_ui():
    ui = [m for m in MODULES if m == "wanlab.ui" or m.startswith("wanlab.ui.")]
    domain = [m for m in MODULES if m not in ui and not m.startswith("wanlab.sim")]
    for d in domain:
        for u in GRAPH[d] & set(ui):
            back = _reaches(u, d)
            assert back is None, f"{d} imports {u}, and {' → '.join(back)} leads back"


def test_the_views_the_domain_renders_with_do_not_need_the_ui():
    assert not any(m.startswith("wanlab.ui") for m in _closure("wanlab._views"))
    assert not any(m.startswith("wanlab.ui") for m in _closure("wanlab.jobs"))


def _closure(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in GRAPH[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("library, modules", [
    ("httpx", ["wanlab/_http.py", "wanlab/_transport.py"]),   # the client, and the wire it sits on
    ("aiohttp", ["wanlab/_transport.py"]),
])
def test_http_libraries_are_imported_in_the_wire_modules_only(library, modules):
    users = sorted(str(p.relative_to(ROOT.parent)) for p in ROOT.glob("*.py")
                   if any(isinstance(n, (ast.Import, ast.ImportFrom)) and library in ast.unparse(n)
                          and not _under_type_checking(p, n) for n in ast.walk(ast.parse(p.read_text()))))
    assert users == modules


def _under_type_checking(path: Path, node: ast.AST) -> bool:
    tree = ast.parse(path.read_text())
    lines = {getattr(n, "lineno", -1) for b in ast.walk(tree) if isinstance(b, ast.If)
             and "TYPE_CHECKING" in ast.unparse(b.test) for n in ast.walk(b)}
    return getattr(node, "lineno", -2) in lines


def test_no_module_grows_past_about_400_lines():
    long = {str(p.relative_to(ROOT.parent)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
