"""One meaning per name: a public class or type alias is defined in one module only.

Two ``Agent`` classes, or two ``Outcome`` aliases, make a reader (and an
import) guess which one is meant. Functions may share verbs across layers
(``create``, ``run``); types may not.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def type_names(root: Path) -> dict[str, list[str]]:
    """Public top-level classes and CamelCase aliases, with the modules defining each."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        if "suites" in path.parts:  # task files are user content, not the package
            continue
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            if isinstance(node, ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                names = [n for n in names if n[:1].isupper() and not n.isupper()]
            else:
                continue
            for name in names:
                if not name.startswith("_"):
                    found[name].append(str(path.relative_to(root)))
    return found


def test_every_public_type_name_has_one_definition():
    twice = {n: where for n, where in type_names(SRC / "openale").items() if len(where) > 1}
    assert not twice, f"defined more than once: {twice}"


def test_the_check_sees_a_second_definition(tmp_path):
    (tmp_path / "a.py").write_text("class Agent:\n    pass\n")
    (tmp_path / "b.py").write_text("from typing import Literal\nAgent = Literal['x']\n")
    (tmp_path / "c.py").write_text("MAX = 1\n")
    (tmp_path / "d.py").write_text("MAX = 2\n")
    names = type_names(tmp_path)
    assert names["Agent"] == ["a.py", "b.py"]
    assert "MAX" not in names  # constants are not types
