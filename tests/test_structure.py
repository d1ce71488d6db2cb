"""The package's shape, so that a new feature cannot quietly undo it: no import cycle between
mlpsuite modules (any import, at module level or inside a function), and every module named in
the README's Layout section. A module is as long as its one concern needs: no line count."""

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

ROOT = Path(__file__).resolve().parents[1]


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under `package` (a package is its
    __init__)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports. A submodule importing its own package (whose
    __init__ only re-exports) is not an edge, nor is the top-level package."""
    found = modules(package)
    top = package.name

    def owner(name: str) -> str | None:
        while name and name not in found:
            name = name.rpartition(".")[0]
        return name or None

    graph = {name: set() for name in found}
    for name, path in found.items():
        package_of = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the importing module's package upwards
                    parts = package_of.split(".")[: len(package_of.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                if target == top or not target.startswith(top + "."):
                    continue
                imported = owner(target)
                if (
                    imported
                    and imported != name
                    and imported != top
                    and not name.startswith(imported + ".")
                ):
                    graph[name].add(imported)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules():
    graph = import_graph(ROOT / "mlpsuite")
    assert cycles(graph) == []
    assert "mlpsuite.config" in graph["mlpsuite.grid_checks"]  # the checks sit above the config
    assert (
        "mlpsuite.training" in graph["mlpsuite.vectorized"]
    )  # vectorized uses the runner's methods


def test_the_checker_finds_a_cycle_even_through_a_function_level_import(tmp_path):
    package = tmp_path / "mlpsuite"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from mlpsuite.sub.a import A\n")
    (package / "sub" / "a.py").write_text("from mlpsuite.b import B\nA = 1\n")
    (package / "b.py").write_text("def f():\n    from .sub import a\n    return a\nB = 2\n")
    (package / "c.py").write_text("import mlpsuite.b\n")
    graph = import_graph(package)
    assert graph["mlpsuite.c"] == {"mlpsuite.b"}
    assert cycles(graph) == [["mlpsuite.b", "mlpsuite.sub", "mlpsuite.sub.a"]]


def _layout_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", readme, flags=re.S | re.M)
    assert match, "README.md has no '## Layout' section"
    return match.group(1)


def test_the_readme_layout_names_every_module():
    layout = _layout_section()
    paths = [
        str(path.relative_to(ROOT))
        for path in modules(ROOT / "mlpsuite").values()
        if path.name not in ("__init__.py", "__main__.py")
    ]
    unnamed = [path for path in paths if f"`{path}`" not in layout]
    assert not unnamed, f"README.md's Layout section does not name {unnamed}"


def test_the_readme_layout_names_no_module_that_is_gone():
    named = re.findall(r"`(mlpsuite/[\w/]+\.py)`", _layout_section())
    assert named, "the Layout section names no module"
    missing = [path for path in named if not (ROOT / path).is_file()]
    assert not missing, f"README.md's Layout names modules that do not exist: {missing}"


def test_each_module_imports_only_modules_listed_above_it():
    """The Layout list is the package's layering: read top to bottom, nothing reaches down."""
    listed = [
        path.removesuffix(".py").replace("/", ".")
        for path in re.findall(r"^- `(mlpsuite/[\w/]+\.py)`", _layout_section(), flags=re.M)
    ]
    position = {name: index for index, name in enumerate(listed)}
    graph = import_graph(ROOT / "mlpsuite")

    def through_packages(
        name: str,
    ) -> set[str]:  # a package's __init__ stands for what it re-exports
        return (
            {name} if name in position else set().union(*map(through_packages, graph.get(name, ())))
        )

    upward = sorted(
        f"{name} imports {target}"
        for name, imports in graph.items()
        if name in position
        for other in imports
        for target in through_packages(other)
        if position[target] > position[name]
    )
    assert not upward, f"move these in README.md's Layout, or turn the import around: {upward}"
    assert len(position) > 40
