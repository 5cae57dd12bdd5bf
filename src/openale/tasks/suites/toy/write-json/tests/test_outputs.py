import json
from pathlib import Path


def test_user_json():
    assert json.loads(Path("/app/user.json").read_text()) == {"name": "alice", "age": 30}
