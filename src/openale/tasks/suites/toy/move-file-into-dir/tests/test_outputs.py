from pathlib import Path


def test_report_moved():
    assert Path("/app/archive/report.txt").read_text() == "Q1 revenue: 120\nQ2 revenue: 135\n"
    assert not Path("/app/report.txt").exists()
