"""Loading task folders: the Harbor layout, and the older Terminal-Bench one through an adapter."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from openale.tasks.errors import TaskLoadError
from openale.tasks.model import Task, TaskConfig

SUITES_DIR = Path(__file__).parent / "suites"


def _config(path: Path, data: dict[str, Any]) -> TaskConfig:
    try:
        return TaskConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise TaskLoadError(path, err["msg"], field) from None


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise TaskLoadError(path, f"missing {what}")
    return path


def load_harbor(root: Path) -> Task:
    toml_path = root / "task.toml"
    try:
        data = tomllib.loads(toml_path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise TaskLoadError(toml_path, f"not valid TOML: {e}") from None
    config = _config(toml_path, data)
    instruction = _require(root / "instruction.md", "instruction.md").read_text()
    if not instruction.strip():
        raise TaskLoadError(root / "instruction.md", "the instruction is empty")
    env_dir = _require(root / "environment", "environment/ folder")
    tests_dir = _require(root / "tests", "tests/ folder")
    _require(tests_dir / "test.sh", "tests/test.sh")
    solution = root / "solution" / "solve.sh"
    return Task(
        name=root.name,
        path=root,
        layout="harbor",
        instruction=instruction,
        config=config,
        build_context=env_dir,
        dockerfile=_require(env_dir / "Dockerfile", "environment/Dockerfile"),
        tests_dir=tests_dir,
        solution=solution if solution.exists() else None,
        solution_dir=solution.parent if solution.exists() else None,
    )


def load_terminal_bench(root: Path) -> Task:
    """The Terminal-Bench 1 layout: task.yaml, Dockerfile, run-tests.sh, solution.sh, tests/."""
    yaml_path = root / "task.yaml"
    try:
        raw = yaml.safe_load(yaml_path.read_text()) or {}
    except yaml.YAMLError as e:
        raise TaskLoadError(yaml_path, f"not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise TaskLoadError(yaml_path, "must be a mapping")
    instruction = raw.get("instruction")
    if instruction is None and isinstance(raw.get("descriptions"), list):
        base = [d for d in raw["descriptions"] if d.get("key", "base") == "base"]
        instruction = (base or raw["descriptions"])[0].get("description")
    if not isinstance(instruction, str) or not instruction.strip():
        raise TaskLoadError(yaml_path, "no instruction", "instruction")
    data: dict[str, Any] = {
        "metadata": {
            "author_email": raw.get("author_email"),
            "difficulty": raw.get("difficulty", "unknown"),
            "category": raw.get("category", "uncategorized"),
            "tags": raw.get("tags") or [],
        },
        "agent": {"timeout_sec": raw.get("max_agent_timeout_sec", 600.0)},
        "verifier": {"timeout_sec": raw.get("max_test_timeout_sec", 600.0)},
    }
    config = _config(yaml_path, data)
    tests_dir = _require(root / "tests", "tests/ folder")
    solution = root / "solution.sh"
    return Task(
        name=root.name,
        path=root,
        layout="terminal-bench",
        instruction=instruction,
        config=config,
        build_context=root,
        dockerfile=_require(root / "Dockerfile", "Dockerfile"),
        tests_dir=tests_dir,
        test_script="run-tests.sh",
        extra_test_files={"run-tests.sh": _require(root / "run-tests.sh", "run-tests.sh")},
        solution=solution if solution.exists() else None,
    )


def load_task(path: str | Path) -> Task:
    """Load one task folder, whichever layout it has."""
    root = Path(path).resolve()
    if not root.is_dir():
        raise TaskLoadError(root, "not a directory")
    if (root / "task.toml").exists():
        return load_harbor(root)
    if (root / "task.yaml").exists():
        return load_terminal_bench(root)
    raise TaskLoadError(root, "neither task.toml (Harbor) nor task.yaml (Terminal-Bench) found")


def resolve_tasks_dir(name_or_path: str | Path) -> Path:
    """A directory, or the name of a built-in suite (``core``, ``toy``)."""
    path = Path(name_or_path)
    if path.is_dir():
        return path.resolve()
    suite = SUITES_DIR / str(name_or_path)
    if suite.is_dir():
        return suite
    raise TaskLoadError(path, f"no such directory or built-in suite (have: {builtin_suites()})")


def builtin_suites() -> list[str]:
    return sorted(p.name for p in SUITES_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))


def load_tasks(
    source: str | Path,
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    category: str | None = None,
    difficulty: str | None = None,
    split: str | None = None,
    limit: int | None = None,
) -> list[Task]:
    """Every task under ``source`` (a task folder, a folder of tasks, or a suite name)."""
    root = resolve_tasks_dir(source)
    if (root / "task.toml").exists() or (root / "task.yaml").exists():
        folders = [root]
    else:
        folders = [
            p
            for p in sorted(root.iterdir())
            if p.is_dir() and ((p / "task.toml").exists() or (p / "task.yaml").exists())
        ]
    # Names are folder names: filter before loading, so a broken task that
    # was not asked for cannot stop the run.
    if include:
        folders = [p for p in folders if any(fnmatch.fnmatch(p.name, pat) for pat in include)]
    if exclude:
        folders = [p for p in folders if not any(fnmatch.fnmatch(p.name, pat) for pat in exclude)]

    def keep(t: Task) -> bool:
        if category and t.category != category:
            return False
        if difficulty and t.difficulty != difficulty:
            return False
        return not split or t.config.metadata.split == split

    tasks = [t for t in (load_task(p) for p in folders) if keep(t)]
    return tasks[:limit] if limit else tasks
