"""The import graph of the dgkit package: module-level imports between dgkit modules form no cycle.

Every module of the package is parsed (no import is executed). An import of a dgkit module at module level
(including inside ``try``/``if`` at the top, but not in an ``if TYPE_CHECKING:`` block) is an edge of the
module-level graph, which must be acyclic. Imports inside functions run late and may legitimately close a
circle (a lazy import); they are collected separately and reported, not failed.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import dgkit

PACKAGE = Path(dgkit.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import, known: set[str]) -> list[str]:
    """The dgkit modules an import statement loads (``from . import x`` names a submodule when one exists)."""
    if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
    out = []
    for target in targets:
        while target and target not in known:  # dgkit.x.y where y is a name: the module is dgkit.x
            target = target.rpartition(".")[0]
        if target.startswith("dgkit"):
            out.append(target)
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(module-level dgkit imports, function-level dgkit imports) of one module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    top: set[str] = set()
    late: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:  # the else branch runs
                    visit(ast.Module(body=[sub], type_ignores=[]), in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (late if in_function else top).update(t for t in _resolve(module, is_package, child, known)
                                                       if t != module)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, late


@functools.lru_cache(maxsize=1)
def _graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules()
    known = set(modules)
    top, late = {}, {}
    for name, path in modules.items():
        top[name], late[name] = _imports(name, path, known)
    return top, late


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_the_parser_sees_relative_absolute_and_function_level_imports(tmp_path):
    known = {"dgkit", "dgkit.a", "dgkit.a.b", "dgkit.a.c", "dgkit.d"}
    src = tmp_path / "b.py"
    src.write_text("from __future__ import annotations\nfrom typing import TYPE_CHECKING\nimport numpy\n"
                   "from . import c\nfrom ..d import thing\nimport dgkit.a\n"
                   "if TYPE_CHECKING:\n    from .c import Hint\n"
                   "def f():\n    from dgkit.d import other\n")
    top, late = _imports("dgkit.a.b", src, known)
    assert top == {"dgkit.a.c", "dgkit.d", "dgkit.a"}
    assert late == {"dgkit.d"}
    assert _find_cycle({"x": {"y"}, "y": {"z"}, "z": {"x"}}) == ["x", "y", "z", "x"]
    assert _find_cycle({"x": {"y"}, "y": {"z"}, "z": set()}) is None


def test_module_level_import_graph_has_no_cycle():
    top, late = _graphs()
    assert "dgkit.training.loop" in top and "dgkit.training.task" in top["dgkit.training.idsg"]
    cycle = _find_cycle(top)
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


def test_training_stages_import_only_the_base_modules():
    top, _late = _graphs()
    for stage in ("dgkit.training.idsg", "dgkit.training.rfg"):
        training = {m for m in top[stage] if m.startswith("dgkit.training.")}
        assert training <= {"dgkit.training.config", "dgkit.training.losses", "dgkit.training.runtime",
                             "dgkit.training.task", "dgkit.training.vgg"}, (stage, training)


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_function_level_cycles_are_reported(capsys):
    """Not a failure: a function-level import whose target imports the importer back at module level (a lazy
    import that closes a circle) is listed."""
    top, late = _graphs()
    circles = [f"{module} -> {target} (inside a function)" for module, targets in sorted(late.items())
               for target in sorted(targets) if _reaches(top, target, module)]
    with capsys.disabled():
        print(f"\n{len(circles)} function-level import(s) close a circle:" if circles else
              "\nno function-level import closes a circle")
        for line in circles:
            print("  " + line)
    assert "dgkit.training.entry" in late["dgkit.training.cli"]  # the lazy imports are seen at all
