"""Layers point one way: a module may import only from its own layer and the layers below.

sandbox <- tasks <- agent <- bench <- rl, data (rl and data are siblings); the
server sits on the sandbox; safety sits on the agent layer and under the bench;
the CLI and the web UI sit on top. Every
``import`` counts, including those inside functions, so a lazy import cannot
hide an upward edge. A new top-level package must be given its place here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

# What each top-level package may import besides itself. Safety reads the audit
# log (sandbox) and trajectories (agent) and plugs into the bench and rewards;
# the server stays on the sandbox layer (a safety policy reaches it from the CLI).
BELOW = {
    "sandbox": set(),
    "tasks": {"sandbox"},
    "agent": {"sandbox", "tasks"},
    "safety": {"sandbox", "tasks", "agent"},
    "bench": {"sandbox", "tasks", "agent", "safety"},
    "rl": {"sandbox", "tasks", "agent", "safety", "bench"},
    "data": {"sandbox", "tasks", "agent", "safety", "bench"},
    "server": {"sandbox"},
    "ui": {"sandbox", "tasks", "agent", "safety", "bench", "rl", "data", "server"},
    "cli": {"sandbox", "tasks", "agent", "safety", "bench", "rl", "data", "server", "ui"},
}


def _module_name(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported(node: ast.AST, module: list[str], is_package: bool) -> list[str]:
    """Absolute dotted names an import statement reaches."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level == 0:
            return [node.module or ""]
        package = module if is_package else module[:-1]
        base = package[: len(package) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
        if node.module:
            return [target]
        return [f"{target}.{alias.name}" for alias in node.names]
    return []


def upward_imports(root: Path, package: str = "openale") -> list[str]:
    """Every import under ``root/package`` that points at a layer it may not use."""
    problems = []
    for path in sorted((root / package).rglob("*.py")):
        module = _module_name(path, root)
        if len(module) < 2:
            continue  # the package's own __init__ names no layer
        layer = module[1]
        if layer not in BELOW:
            problems.append(f"{'.'.join(module)}: package {layer!r} has no layer in BELOW")
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py"):
                parts = name.split(".")
                if parts[0] != package or len(parts) < 2:
                    continue
                target = parts[1]
                if target != layer and target not in BELOW[layer]:
                    problems.append(f"{'.'.join(module)}:{node.lineno} imports {name}")
    return problems


def test_no_module_imports_from_a_higher_layer():
    problems = upward_imports(SRC)
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from openale.bench import runner\n", True),
        ("def f():\n    import openale.rl.trainer\n", True),  # lazy imports count
        ("from ..server import schemas\n", True),  # relative imports resolve
        ("from .. import bench\n", True),
        ("from openale.sandbox import Sandbox\n", False),
        ("from . import model\n", False),
    ],
)
def test_the_check_sees_upward_imports(tmp_path, source, found):
    tasks = tmp_path / "openale" / "tasks"
    tasks.mkdir(parents=True)
    (tmp_path / "openale" / "__init__.py").write_text("")
    (tasks / "__init__.py").write_text("")
    (tasks / "probe.py").write_text(source)
    assert bool(upward_imports(tmp_path)) is found


def test_an_undeclared_package_is_reported(tmp_path):
    (tmp_path / "openale" / "newthing").mkdir(parents=True)
    (tmp_path / "openale" / "newthing" / "__init__.py").write_text("")
    assert upward_imports(tmp_path) == [
        "openale.newthing: package 'newthing' has no layer in BELOW"
    ]
