"""The layering of the package, read from the source: every import statement counts, including
the ones inside functions (a function-local import hides a dependency, it does not remove it).

- the core (``geoprobe/``, ``geoprobe.jepa`` included) imports neither ``geoprobe.probes`` nor
  ``geoprobe.datasets``: they build on it;
- a probe module imports the core and ``geoprobe.datasets``, never another probe module
  (shared engines live in the core);
- the imports among core modules form no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> the package it installs as (pyproject.toml's package-dir)
PACKAGES = {"geoprobe": "geoprobe", "probes": "geoprobe.probes", "datasets": "geoprobe.datasets"}


def _modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the three packages."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Modules of the package that ``name`` (at ``path``) imports anywhere in its body."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import x`` imports the submodule pkg.x when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # ``import a.b.c`` of a name inside a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _is_core(name: str) -> bool:
    return not name.startswith(("geoprobe.probes", "geoprobe.datasets"))


def test_the_source_tree_is_found():
    assert {"geoprobe.probe", "geoprobe.jepa.train", "geoprobe.probes.spectrum",
            "geoprobe.datasets.treebank"} <= set(MODULES)


def test_probe_modules_do_not_import_each_other():
    bad = sorted(f"{m} imports {t}" for m, targets in GRAPH.items()
                 if m.startswith("geoprobe.probes.") for t in targets
                 if t.startswith("geoprobe.probes"))
    assert not bad, "shared code belongs in the core:\n" + "\n".join(bad)


def test_core_imports_nothing_above_it():
    bad = sorted(f"{m} imports {t}" for m, targets in GRAPH.items() if _is_core(m)
                 for t in targets if not _is_core(t))
    assert not bad, "the core must not depend on probes or datasets:\n" + "\n".join(bad)


def test_core_imports_form_no_cycle():
    core = {m: sorted(t for t in targets if _is_core(t)) for m, targets in GRAPH.items()
            if _is_core(m)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(m, path):
        state[m] = 1
        for t in core[m]:
            if state.get(t) == 1:
                cycles.append(" -> ".join(path[path.index(t):] + [t]))
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(core):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles among core modules:\n" + "\n".join(cycles)
