import subprocess
from pathlib import Path

REPO = "/app/repo"


def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, check=True).stdout.strip()


def commit_by_subject(ref, subject):
    for line in git("log", ref, "--format=%H%x09%s").splitlines():
        sha, subj = line.split("\t", 1)
        if subj == subject:
            return sha
    raise AssertionError(f"no commit {subject!r} on {ref}")


def changed_files(a, b):
    return sorted(git("diff", "--name-only", a, b).splitlines())


def test_on_release_branch():
    assert git("symbolic-ref", "--short", "HEAD") == "release-1.0.x"


def test_branch_starts_at_v1_0_with_three_commits():
    assert git("rev-list", "--count", "v1.0..release-1.0.x") == "3"
    assert git("rev-parse", "release-1.0.x~3") == git("rev-parse", "v1.0^{commit}")
    # linear: no merges
    assert git("rev-list", "--merges", "v1.0..release-1.0.x") == ""


def test_commit_subjects_in_order():
    subjects = git("log", "--format=%s", "v1.0..release-1.0.x").splitlines()
    assert subjects == ["Release 1.0.1", "Fix off-by-one in page count", "Fix crash on empty input"]


def test_crash_fix_cherry_picked():
    orig = commit_by_subject("develop", "Fix crash on empty input")
    new = git("rev-parse", "release-1.0.x~2")
    assert new != orig
    assert changed_files("v1.0", new) == ["inv/parse.py"]
    assert git("show", f"{new}:inv/parse.py") == git("show", f"{orig}:inv/parse.py")
    assert git("log", "-1", "--format=%an <%ae>", new) == "Chen Wei <chen@example.com>"


def test_page_fix_cherry_picked_from_develop():
    orig = commit_by_subject("develop", "Fix off-by-one in page count")
    new = git("rev-parse", "release-1.0.x~1")
    assert changed_files("release-1.0.x~2", new) == ["inv/pager.py"]
    content = git("show", f"{new}:inv/pager.py")
    assert content == git("show", f"{orig}:inv/pager.py")
    assert "math.ceil" not in content
    assert git("log", "-1", "--format=%an <%ae>", new) == "Dana Kruger <dana@example.com>"


def test_release_commit():
    assert changed_files("release-1.0.x~1", "release-1.0.x") == ["VERSION"]
    assert git("show", "release-1.0.x:VERSION") == "1.0.1"
    raw = subprocess.run(["git", "-C", REPO, "show", "release-1.0.x:VERSION"], capture_output=True).stdout
    assert raw == b"1.0.1\n"


def test_other_files_as_in_v1_0():
    for path in ("inv/cli.py", "README.md", "inv/__init__.py"):
        assert git("show", f"release-1.0.x:{path}") == git("show", f"v1.0:{path}")
    assert git("ls-tree", "-r", "--name-only", "release-1.0.x") == git("ls-tree", "-r", "--name-only", "v1.0")


def test_annotated_tag():
    assert git("cat-file", "-t", "v1.0.1") == "tag"
    assert git("rev-parse", "v1.0.1^{commit}") == git("rev-parse", "release-1.0.x")


def test_clean_tree_no_operation_in_progress():
    assert git("status", "--porcelain") == ""
    gitdir = Path(REPO) / ".git"
    for marker in ("CHERRY_PICK_HEAD", "MERGE_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply", "sequencer"):
        assert not (gitdir / marker).exists(), marker


def test_other_refs_untouched():
    assert git("log", "-1", "--format=%s", "develop") == "Bump version to 1.1.0"
    assert git("rev-list", "--count", "v1.0..develop") == "5"
    assert git("rev-parse", "v1.1^{commit}") == git("rev-parse", "develop")
    assert git("log", "-1", "--format=%s", "main") == "Add CI pipeline"
    assert git("rev-parse", "main~1") == git("rev-parse", "v1.0^{commit}")
    assert git("log", "-1", "--format=%s", "v1.0") == "Add pager module"
    assert sorted(git("tag", "--list").split()) == ["v1.0", "v1.0.1", "v1.1"]
