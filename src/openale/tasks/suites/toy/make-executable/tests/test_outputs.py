import os
import subprocess
from pathlib import Path

SCRIPT = Path("/app/run.sh")


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)


def test_script_unchanged_and_runs():
    assert SCRIPT.read_text() == "#!/bin/bash\necho ready\n"
    out = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=10)
    assert out.stdout == "ready\n"
