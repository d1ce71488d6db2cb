"""The package's shape, so that a new feature cannot quietly undo it: no import cycle between
mlpsuite modules (any import, at module level or inside a function), and every module named in
the Layout section of the Architecture page (docs/architecture.md). A module is as long as its one
concern needs: no line count."""

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
        "mlpsuite.trial.training" in graph["mlpsuite.trial.vectorized"]
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


ARCHITECTURE = ROOT / "docs" / "architecture.md"  # the site's Architecture page


def _layout_section() -> str:
    page = ARCHITECTURE.read_text(encoding="utf-8")
    match = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", page, flags=re.S | re.M)
    assert match, "docs/architecture.md has no '## Layout' section"
    return match.group(1)


def test_the_layout_names_every_module():
    layout = _layout_section()
    paths = [
        str(path.relative_to(ROOT))
        for path in modules(ROOT / "mlpsuite").values()
        if path.name not in ("__init__.py", "__main__.py")
    ]
    unnamed = [path for path in paths if f"`{path}`" not in layout]
    assert not unnamed, f"docs/architecture.md's Layout section does not name {unnamed}"


def test_the_layout_names_no_module_that_is_gone():
    named = re.findall(r"`(mlpsuite/[\w/]+\.py)`", _layout_section())
    assert named, "the Layout section names no module"
    missing = [path for path in named if not (ROOT / path).is_file()]
    assert not missing, f"docs/architecture.md's Layout names modules that do not exist: {missing}"


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
    assert not upward, (
        f"move these in docs/architecture.md's Layout, or turn the import around: {upward}"
    )
    assert len(position) > 40


# ------------------------------------------------------------ the layering by folder

FRAMEWORKS = ("keras", "tensorflow", "torch", "jax", "jaxlib", "sklearn.neural_network")
# The Keras library pieces users import, the lecture's figures and the worker side.
MAY_IMPORT_A_FRAMEWORK = (
    "mlpsuite.trial",
    "mlpsuite.layers",
    "mlpsuite.models",
    "mlpsuite.figures",
)
COORDINATOR = (
    "mlpsuite.config",
    "mlpsuite.grid_checks",
    "mlpsuite.executors",
    "mlpsuite.tracking",
    "mlpsuite.run_records",
    "mlpsuite.analysis",
    "mlpsuite.present",
    "mlpsuite.runner",
    "mlpsuite.api",
    "mlpsuite.cli",
)
# The Ray actor is the worker loop itself, imported inside the actor (on the worker's side).
COORDINATOR_TO_WORKER = {("mlpsuite.executors.ray", "mlpsuite.trial.worker")}


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def external_imports(path: Path) -> set[str]:
    """Every absolute module a file imports (module level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def framework_importers(package: Path) -> dict[str, set[str]]:
    """Module -> the frameworks it imports."""
    return {
        name: hits
        for name, path in modules(package).items()
        if (
            hits := {
                module
                for module in external_imports(path)
                if any(module == f or module.startswith(f + ".") for f in FRAMEWORKS)
            }
        )
    }


def test_only_the_worker_side_and_the_keras_library_import_a_framework():
    importers = framework_importers(ROOT / "mlpsuite")
    assert "mlpsuite.trial.training" in importers  # the check sees function-level imports too
    assert "mlpsuite.trial.sklearn_backend" in importers
    outside = {
        name: sorted(hits)
        for name, hits in importers.items()
        if not _within(name, MAY_IMPORT_A_FRAMEWORK)
    }
    assert not outside, f"a framework imported outside the worker side: {outside}"


def test_the_coordinator_never_imports_the_worker_side():
    graph = import_graph(ROOT / "mlpsuite")
    crossing = sorted(
        (name, target)
        for name, imports in graph.items()
        if _within(name, COORDINATOR)
        for target in imports
        if _within(target, ("mlpsuite.trial",))
    )
    assert set(crossing) == COORDINATOR_TO_WORKER, crossing


def test_the_worker_side_reaches_the_coordinator_only_through_the_wire():
    graph = import_graph(ROOT / "mlpsuite")
    allowed = ("mlpsuite.executors.wire",)
    reaching = sorted(
        (name, target)
        for name, imports in graph.items()
        if _within(name, ("mlpsuite.trial",))
        for target in imports
        if _within(target, COORDINATOR)
        and not _within(target, allowed)
        and target
        != "mlpsuite.executors"  # the package itself: `from mlpsuite.executors import wire`
        and not _within(target, ("mlpsuite.config",))  # a Trial is the request's content
    )
    assert not reaching, reaching
    assert graph["mlpsuite.executors.wire"] <= {"mlpsuite.registry"}  # a leaf both sides import


@pytest.mark.parametrize(
    ("package", "must_not_import"),
    [
        # numbers only: no store writes, no views, no executors
        (
            "mlpsuite.analysis",
            (
                "mlpsuite.present",
                "mlpsuite.runner",
                "mlpsuite.executors",
                "mlpsuite.api",
                "mlpsuite.cli",
            ),
        ),
        # the store knows nothing of what reads it
        (
            "mlpsuite.tracking",
            (
                "mlpsuite.analysis",
                "mlpsuite.present",
                "mlpsuite.executors",
                "mlpsuite.runner",
                "mlpsuite.api",
                "mlpsuite.cli",
            ),
        ),
        # views read results; they run nothing
        (
            "mlpsuite.present",
            (
                "mlpsuite.executors.local",
                "mlpsuite.executors.ray",
                "mlpsuite.runner",
                "mlpsuite.api",
                "mlpsuite.cli",
            ),
        ),
        # the scheduling knows no store and no view
        (
            "mlpsuite.executors",
            (
                "mlpsuite.tracking",
                "mlpsuite.analysis",
                "mlpsuite.present",
                "mlpsuite.runner",
                "mlpsuite.api",
                "mlpsuite.cli",
            ),
        ),
    ],
)
def test_each_folder_imports_only_what_its_role_needs(package, must_not_import):
    graph = import_graph(ROOT / "mlpsuite")
    wrong = sorted(
        (name, target)
        for name, imports in graph.items()
        if _within(name, (package,))
        for target in imports
        if _within(target, must_not_import)
    )
    assert not wrong, wrong


def test_mlflow_store_calls_stay_in_tracking():
    """Only the store's modules import MLflow's client, entities or exceptions; the worker side
    writes MLflow's model format (`mlflow.keras`), the CLI execs MLflow's server."""
    allowed = (
        "mlpsuite.tracking",
        "mlpsuite.run_records",
        "mlpsuite.trial.saved_models",  # the model formats a worker writes
        "mlpsuite.trial.sklearn_backend",
        "mlpsuite.cli.serve",
    )
    users = {
        name: sorted(m for m in external_imports(path) if m == "mlflow" or m.startswith("mlflow."))
        for name, path in modules(ROOT / "mlpsuite").items()
    }
    outside = {name: hits for name, hits in users.items() if hits and not _within(name, allowed)}
    assert not outside, f"MLflow imported outside tracking/: {outside}"
