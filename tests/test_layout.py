"""The package's shape: no import circle between modules or between stage packages, and no
module reaching for another module's private names. And the tests' own: no test file imports the
benchmarks (what both use lives in tests/support/)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "aggregator"
TESTS = Path(__file__).resolve().parent


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """(module imported, name imported or "") for every import in the file, inside functions
    too: an import hidden in a function still makes a circle."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ""
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}".strip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full, "") if full in known else (base, alias.name)


def graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, _ in imports(path, name, known):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def stage(module: str) -> str:
    """The stage a module belongs to: its package under aggregator, or the module itself."""
    return ".".join(module.split(".")[:2])


def test_no_import_circle_between_modules() -> None:
    assert cycles(graph()) == []


def test_no_import_circle_between_stages() -> None:
    edges: dict[str, set[str]] = {}
    for module, targets in graph().items():
        for target in targets:
            if stage(target) != stage(module):
                edges.setdefault(stage(module), set()).add(stage(target))
    assert cycles(edges) == []


def is_private(name: str) -> bool:
    """_name is private to its module; __version__ and the like are not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_imports_a_private_name_from_another() -> None:
    known = modules()
    private = [
        f"{name} imports {target}.{imported}"
        for name, path in known.items()
        for target, imported in imports(path, name, known)
        if target.startswith("aggregator") and is_private(imported) and target != name
    ]
    assert private == []


def benchmark_imports(path: Path, name: str) -> list[str]:
    """What the file (module ``name``) imports from ``benchmarks``, inside functions too."""
    return [target for target, _ in imports(path, name, {}) if target.split(".")[0] == "benchmarks"]


def test_no_test_file_imports_the_benchmarks() -> None:
    """Benchmarks may import tests.support; tests never import benchmarks."""
    found = [
        f"{path.relative_to(TESTS.parent)} imports {target}"
        for path in sorted(TESTS.rglob("*.py"))
        for target in benchmark_imports(
            path, ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)
        )
    ]
    assert found == []


def test_the_checks_see_a_circle_and_a_private_import(tmp_path: Path) -> None:
    """The checks above can fail: a made-up graph with a circle is caught, and so are made-up
    imports of the benchmarks."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert stage("aggregator.crawl.fetch") == "aggregator.crawl"
    assert is_private("_helper") and not is_private("__version__") and not is_private("helper")
    test = tmp_path / "test_x.py"
    test.write_text(
        "import benchmarks\nimport benchmarks.bench_parse as bp\n"
        "from benchmarks.bench_cluster import load_uci\nfrom benchmarks import bench_sources\n"
        "from tests.support.uci import load_uci\nimport benchmarking\n"
        "def f():\n    from benchmarks.bench_parse import agreement\n",
        encoding="utf-8",
    )
    assert benchmark_imports(test, "tests.test_x") == [
        "benchmarks",
        "benchmarks.bench_parse",
        "benchmarks.bench_cluster",
        "benchmarks",
        "benchmarks.bench_parse",
    ]
