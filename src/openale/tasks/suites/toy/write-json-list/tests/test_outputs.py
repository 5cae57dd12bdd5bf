import json
from pathlib import Path


def test_colors_json():
    assert json.loads(Path("/app/colors.json").read_text()) == ["red", "green", "blue"]
