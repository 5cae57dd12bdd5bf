import os
import subprocess
from pathlib import Path

SCRIPT = Path("/app/hi.sh")


def test_script_content():
    assert SCRIPT.is_file()
    assert SCRIPT.read_text().rstrip("\n").split("\n") == ["#!/bin/bash", "echo hi"]


def test_script_is_executable_and_runs():
    assert os.access(SCRIPT, os.X_OK)
    out = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout == "hi\n"
