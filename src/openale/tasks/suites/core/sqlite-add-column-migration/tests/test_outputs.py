import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import make_app_db  # noqa: E402

LIVE = Path("/app/app.db")
SCRIPT = Path("/app/migrate.sh")
OLD_COLS = ["id", "email", "full_name", "created_at"]


def domain(email):
    if email is None:
        return None
    t = email.strip(" ")
    if "@" not in t:
        return None
    d = t.split("@", 1)[1]
    return d.lower() or None


@pytest.fixture(scope="module")
def pristine_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("v1") / "app.db"
    make_app_db.build(str(path))
    return path


def fresh_copy(pristine_path, tmp_path, name="copy.db"):
    dst = tmp_path / name
    shutil.copy(pristine_path, dst)
    return dst


def migrate(path):
    return subprocess.run([str(SCRIPT), str(path)], capture_output=True, text=True, timeout=60)


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_migrated(path, pristine_path):
    db = sqlite3.connect(path)
    old = sqlite3.connect(pristine_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    cols = [r[1] for r in db.execute("PRAGMA table_info(users)")]
    assert cols == OLD_COLS + ["email_domain"]
    got = db.execute("SELECT id, email, full_name, created_at, email_domain FROM users ORDER BY id").fetchall()
    want = old.execute("SELECT id, email, full_name, created_at FROM users ORDER BY id").fetchall()
    assert [g[:4] for g in got] == want
    for row in got:
        assert row[4] == domain(row[1]), row
    assert db.execute("SELECT * FROM sessions ORDER BY id").fetchall() == \
        old.execute("SELECT * FROM sessions ORDER BY id").fetchall()
    # other schema objects survive unchanged
    q = "SELECT type, name, sql FROM sqlite_master WHERE name != 'users' AND type IN ('table','view','index') AND name NOT LIKE 'sqlite_%' ORDER BY name"
    new_objects = [r for r in db.execute(q) if r[1] != "idx_users_email_domain"]
    assert new_objects == old.execute(q).fetchall()
    idx = {r[1]: r for r in db.execute("PRAGMA index_list(users)")}
    assert "idx_users_email_domain" in idx
    assert [r[2] for r in db.execute("PRAGMA index_info(idx_users_email_domain)")] == ["email_domain"]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()
    old.close()


def test_live_database_migrated(pristine_path):
    check_migrated(LIVE, pristine_path)


def test_script_migrates_a_fresh_copy_and_is_idempotent(pristine_path, tmp_path):
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK)
    path = fresh_copy(pristine_path, tmp_path)
    res = migrate(path)
    assert res.returncode == 0, res.stderr
    check_migrated(path, pristine_path)
    dump = "\n".join(sqlite3.connect(path).iterdump())
    res = migrate(path)
    assert res.returncode == 0, res.stderr
    assert "\n".join(sqlite3.connect(path).iterdump()) == dump


def test_future_writes_stay_in_sync(pristine_path, tmp_path):
    path = fresh_copy(pristine_path, tmp_path)
    assert migrate(path).returncode == 0
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("INSERT INTO users (id, email, full_name, created_at) VALUES (5001, ' Zed@Mail.Example.ORG ', 'Zed', '2024-07-01')")
    db.execute("INSERT INTO users (id, email, full_name, created_at, email_domain) VALUES (5002, 'amy@Corp.io', 'Amy', '2024-07-01', 'wrong.example')")
    db.execute("INSERT INTO users (id, email, full_name, created_at) VALUES (5003, 'no-at-sign', NULL, '2024-07-01')")
    db.execute("UPDATE users SET email = 'Moved@NEW-Domain.net' WHERE id = 3")
    db.execute("UPDATE users SET email = 'broken' WHERE id = 4")
    db.commit()
    got = dict(db.execute("SELECT id, email_domain FROM users WHERE id IN (3, 4, 5001, 5002, 5003)"))
    assert got == {3: "new-domain.net", 4: None, 5001: "mail.example.org", 5002: "corp.io", 5003: None}


def test_other_versions_refused(pristine_path, tmp_path):
    path = fresh_copy(pristine_path, tmp_path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()
    before = sha(path)
    assert migrate(path).returncode != 0
    assert sha(path) == before


def test_failed_upgrade_is_rolled_back(pristine_path, tmp_path):
    # A table squatting on the index name makes the index step fail midway.
    path = fresh_copy(pristine_path, tmp_path)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE idx_users_email_domain (note TEXT)")
    db.commit()
    db.close()
    before = sha(path)
    assert migrate(path).returncode != 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert [r[1] for r in db.execute("PRAGMA table_info(users)")] == OLD_COLS
    db.close()
    assert sha(path) == before
