import ast
import importlib.util
import re
import subprocess
from pathlib import Path

REPO = Path("/app/project")


def git(*args):
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()


def load_mathutils():
    spec = importlib.util.spec_from_file_location("mathutils_merged", REPO / "mathutils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_merge_commit_on_main():
    assert git("symbolic-ref", "--short", "HEAD") == "main"
    parents = git("rev-list", "--parents", "-n", "1", "HEAD").split()[1:]
    assert len(parents) == 2
    assert parents[1] == git("rev-parse", "feature/stats")
    assert git("log", "-1", "--format=%s", parents[0]) == "Add median()"
    assert git("log", "-1", "--format=%s", "feature/stats") == "Add mode()"
    assert git("rev-list", "--count", "feature/stats") == "2"


def test_clean_and_committed():
    assert git("status", "--porcelain") == ""
    assert not (REPO / ".git" / "MERGE_HEAD").exists()
    # what is checked out is what was committed
    for path in ("mathutils.py", "CHANGELOG.md", "tests/test_mathutils.py"):
        assert git("show", f"HEAD:{path}") == (REPO / path).read_text().strip()


def test_no_conflict_markers():
    for path in git("ls-files").splitlines():
        text = (REPO / path).read_text()
        assert not re.search(r"^(<<<<<<<|=======|>>>>>>>)", text, re.M), path


def test_mathutils_functions_and_order():
    tree = ast.parse((REPO / "mathutils.py").read_text())
    funcs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert funcs == ["mean", "median", "mode", "clamp"]
    m = load_mathutils()
    assert m.__version__ == "1.3.0"
    assert m.median([5, 1, 3]) == 3 and m.median([1, 2, 3, 10]) == 2.5
    assert m.mode([4, 4, 1, 1, 9]) == 1 and m.mode(["b", "a", "b"]) == "b"
    assert m.mean([1, 2]) == 1.5 and m.clamp(9, 0, 5) == 5
    versions = re.findall(r"__version__\s*=", (REPO / "mathutils.py").read_text())
    assert len(versions) == 1


def test_changelog():
    lines = [line.rstrip() for line in (REPO / "CHANGELOG.md").read_text().splitlines() if line.strip()]
    assert lines == [
        "# Changelog",
        "## 1.3.0", "- Add mode().",
        "## 1.2.1", "- Add median().",
        "## 1.2.0", "- Add clamp().",
        "## 1.1.0", "- Add mean().",
    ]


def test_all_tests_kept_and_passing():
    tree = ast.parse((REPO / "tests" / "test_mathutils.py").read_text())
    names = sorted(n.name for n in tree.body if isinstance(n, ast.FunctionDef))
    assert names == ["test_clamp", "test_mean", "test_mean_empty", "test_median", "test_mode"]
    r = subprocess.run(["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 passed" in r.stdout
