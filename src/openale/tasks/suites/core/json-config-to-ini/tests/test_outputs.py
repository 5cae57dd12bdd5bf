import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from json2ini_ref import convert  # noqa: E402

TOOL = Path("/app/bin/json2ini")
CASES = Path(__file__).parent / "cases"
EXAMPLE = '{"b": "x y", "a": [1, "q;r"], "s": {"t": {"u": true}, "n": null}}'


def expected(path):
    return convert(json.loads(Path(path).read_text(encoding="utf-8"))).encode("utf-8")


def run_tool(path):
    proc = subprocess.run([str(TOOL), str(path)], capture_output=True, timeout=30, cwd="/tmp")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def test_reference_matches_the_documented_example():
    assert convert(json.loads(EXAMPLE)) == 'a = 1, "q;r"\nb = x y\n\n[s.t]\nu = true\n'


def test_service_ini_written():
    got = Path("/app/config/service.ini").read_bytes()
    assert got == expected("/app/config/service.json")


def test_tool_is_executable():
    assert TOOL.is_file() and os.access(TOOL, os.X_OK)


def test_tool_on_service_json():
    assert run_tool("/app/config/service.json") == expected("/app/config/service.json")


def test_tool_on_example(tmp_path):
    src = tmp_path / "example.json"
    src.write_text(EXAMPLE)
    assert run_tool(src) == expected(src)


def test_tool_on_unseen_configs():
    for case in sorted(CASES.glob("*.json")):
        assert run_tool(case) == expected(case), case.name
