"""Structure checks read from the source: layering, import cycles, sizes, torch-free search.

The import graph is parsed with ``ast`` (every import, at module level and inside functions),
so a lazy import counts like any other: dependencies must point one way.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nas", "predictors", "search_spaces")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _sources() -> dict[str, Path]:
    """Every project module by dotted name (``pkg/__init__.py`` names the package)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(name: str, modules: set[str]) -> str | None:
    """The project module ``name`` names: itself, else its longest module prefix."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: set[str]) -> set[str]:
    """Project modules imported anywhere in ``path`` (third-party imports are ignored)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(module, path).split(".")
                anchor = ".".join(package[: len(package) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            # ``from a.b import c``: a.b.c when that is a module, else a.b
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != module:
                    out.add(resolved)
    return out


def _import_graph() -> dict[str, set[str]]:
    sources = _sources()
    modules = set(sources)
    return {m: _imports(m, p, modules) for m, p in sources.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or ``None`` (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_find_cycle_reports_a_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    cycle = _find_cycle(_import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_nas_does_not_import_plugins() -> None:
    graph = _import_graph()
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.split(".")[0] == "nas" and not module.startswith("nas.cli")
        for target in targets
        if target.split(".")[0] in ("predictors", "search_spaces")
    )
    assert not bad, "nas/ outside nas/cli/ imports a plug-in package:\n" + "\n".join(bad)


def test_module_and_function_sizes() -> None:
    too_long = []
    for path in _sources().values():
        text = path.read_text()
        n_lines = len(text.splitlines())
        if n_lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {n_lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines"
                    )
    assert not too_long, (
        f"over {MAX_MODULE_LINES} lines per module or {MAX_FUNCTION_LINES} per function:\n"
        + "\n".join(too_long)
    )


_TORCH_FREE_SEARCH = textwrap.dedent(
    """
    import sys

    import numpy as np

    from nas.search import Problem, create_searcher, list_searchers
    from nas.search.surrogate import GPSurrogate, PredictorSurrogate, TreesSurrogate
    from nas.space import SearchSpace, choice, stage


    class MeanOfPositions:
        # a numpy-only predictor: fit(archs, y) / predict(archs)
        def fit(self, archs, y):
            self.mean = float(np.mean(y))

        def predict(self, archs):
            return np.array([self.mean + 0.01 * sum(a.positions) for a in archs])


    space = SearchSpace(
        "toy", [*stage("s1", depth=[1, 2], block={"kernel": [3, 5]}), choice("res", [32, 48])]
    )
    problem = Problem.create(space, {"accuracy": "max", "latency_ms": "min"},
                             {"latency_ms": 45.0})


    def metrics(archs):
        return [{"accuracy": float(sum(a.positions)), "latency_ms": float(a["res"])}
                for a in archs]


    def steps(searcher, n_steps=2, batch=4):
        for _ in range(n_steps):
            archs = searcher.ask(batch)
            searcher.tell(archs, metrics(archs))


    # 8 trials: Optuna's GP sampler (a third-party model that needs torch) stays in its
    # random start-up phase (10 trials); every other searcher runs its own model code
    for name in list_searchers():
        steps(create_searcher(name, problem, seed=0))
    for surrogate in ("gp", "gp-hamming", "trees", MeanOfPositions()):
        for name in ("local", "linas"):
            steps(create_searcher(name, problem, seed=0, n_init=3,
                                             surrogate=surrogate), n_steps=3)
    X, y = np.eye(4), np.arange(4.0)
    for model in (GPSurrogate(), TreesSurrogate(seed=0)):
        model.fit(X, y)
        model.predict(X)
    wrapped = PredictorSurrogate(MeanOfPositions(), space)
    rows = np.zeros((3, len(space.choices)), dtype=np.int64)
    wrapped.fit(rows, np.arange(3.0))
    wrapped.predict(rows)
    leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    assert not leaked, leaked
    print("ok")
    """
)


def test_search_imports_no_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _TORCH_FREE_SEARCH],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
