import subprocess

REPO = "/app/notes"


def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, check=True).stdout.strip()


def test_recovered_branch_points_at_lost_commit():
    sha = git("rev-parse", "--verify", "refs/heads/recovered")
    assert git("log", "-1", "--format=%s", sha) == "Add quarterly report generator"
    # the original commit: its own dates, and recorded in the reflog when it was made
    assert git("log", "-1", "--format=%cI|%aI", sha) == "2024-06-03T08:00:00+00:00|2024-06-03T08:00:00+00:00"
    assert sha in git("log", "-g", "--format=%H", "HEAD").split()


def test_recovered_content_and_parent():
    assert "report-token: 7f3a9c" in git("show", "recovered:report.py")
    assert git("log", "-1", "--format=%s", "recovered~1") == "Add data loader"
    assert git("rev-list", "--count", "recovered") == "3"


def test_main_untouched():
    assert git("symbolic-ref", "--short", "HEAD") == "main"
    assert git("log", "--format=%s", "main").splitlines() == ["Add CSV export", "Add data loader", "Initial commit"]
    assert git("log", "--format=%s", "docs").splitlines()[0] == "Add notes"
    assert git("status", "--porcelain") == ""
    assert sorted(git("for-each-ref", "--format=%(refname:short)", "refs/heads").split()) == ["docs", "main", "recovered"]
