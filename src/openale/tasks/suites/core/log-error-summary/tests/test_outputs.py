import json
from pathlib import Path

LOGS = Path("/app/logs")


def expected():
    counts = {}
    for log in LOGS.glob("*.log"):
        counts[log.stem] = sum(
            1 for line in log.read_text().splitlines() if line.split()[1:2] == ["ERROR"]
        )
    return counts


def test_report_exists_and_is_json():
    assert isinstance(json.loads(Path("/app/report.json").read_text()), dict)


def test_counts_match_levels_not_messages():
    report = json.loads(Path("/app/report.json").read_text())
    assert report == expected()
    assert report["db"] == 0
