"""How the library's packages depend on each other: config at the bottom (it imports nothing
of the library above `mixmerge.core`), no cycle between packages, and params validation that
loads no torch, so that a mistake in params is answered at once."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict

from tests.conftest import REPO

# Torch-free tables beside core that the schema may read: the layout of the study's folders.
BOTTOM = {"core", "paths"}


def _package(module: str) -> str:
    """`mixmerge.config.study` -> `config`; `mixmerge.paths` -> `paths`."""
    return module.split(".")[1]


def _imported(tree: ast.Module) -> set[str]:
    """The `mixmerge.*` modules (or names in them) a module imports at run time, lazily too:
    an import under `if TYPE_CHECKING:` is for type checkers only."""
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("mixmerge.")}


def package_graph() -> dict[str, dict[str, set[str]]]:
    """Package -> the packages it imports -> the modules that import them."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted((REPO / "mixmerge").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        if module == "mixmerge.__init__":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name in _imported(tree):
            if _package(name) != _package(module):
                graph[_package(module)][_package(name)].add(module)
    return graph


def test_config_imports_nothing_above_core():
    above = {
        package: sorted(modules)
        for package, modules in package_graph()["config"].items()
        if package not in BOTTOM
    }
    assert above == {}


def test_no_package_imports_one_that_imports_it_back():
    graph = package_graph()
    cycles, done = [], set()

    def visit(package: str, trail: list[str]) -> None:
        for imported in graph.get(package, {}):
            if imported in trail:
                cycles.append(" -> ".join(trail[trail.index(imported) :] + [imported]))
            elif imported not in done:
                visit(imported, trail + [imported])
        done.add(package)

    for package in list(graph):
        if package not in done:
            visit(package, [package])
    assert cycles == []


def test_validating_params_and_the_command_line_load_no_torch():
    """Every params file the project ships, validated as every command does, and the command
    line itself, without torch (which takes seconds to import)."""
    check = (
        "import sys, pathlib\n"
        "import mixmerge.stages.cli\n"
        "from mixmerge.validation import load_params\n"
        "for path in ['params.yaml', *sorted(pathlib.Path('configs').glob('*.yaml'))]:\n"
        "    load_params(path)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
