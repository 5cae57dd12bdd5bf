import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import make_crm_db  # noqa: E402

LIVE = "/app/crm.db"


@pytest.fixture(scope="module")
def old(tmp_path_factory):
    path = tmp_path_factory.mktemp("crm") / "crm.db"
    make_crm_db.build(str(path))
    db = sqlite3.connect(path)
    yield db
    db.close()


@pytest.fixture(scope="module")
def new():
    db = sqlite3.connect(LIVE)
    yield db
    db.close()


@pytest.fixture(scope="module")
def plan(old):
    groups = defaultdict(list)
    for cid, email, created in old.execute("SELECT id, email, created_at FROM customers"):
        groups[email.strip(" ").lower()].append((created, cid))
    mapping, report = {}, []
    for members in groups.values():
        members.sort()
        keep = members[0][1]
        for _, cid in members:
            mapping[cid] = keep
        if len(members) > 1:
            report.append((keep, sorted(cid for _, cid in members[1:])))
    report.sort()
    return mapping, report


def test_fixture_has_the_hard_cases(old, plan):
    mapping, report = plan
    assert len(report) > 30
    # some groups keep a row that is not the lowest id, and one group ties on created_at
    assert any(keep > min(removed) for keep, removed in report)
    created = dict(old.execute("SELECT id, created_at FROM customers"))
    assert any(created[keep] == created[r] for keep, removed in report for r in removed)


def test_customers(old, new, plan):
    mapping, _ = plan
    want = []
    for cid, email, name, created, ref in old.execute("SELECT * FROM customers ORDER BY id"):
        if mapping[cid] == cid:
            want.append((cid, email, name, created, mapping[ref] if ref is not None else None))
    assert new.execute("SELECT * FROM customers ORDER BY id").fetchall() == want


def test_orders_and_notes_repointed(old, new, plan):
    mapping, _ = plan
    for table in ("orders", "notes"):
        want = [(r[0], mapping[r[1]]) + tuple(r[2:]) for r in old.execute(f"SELECT * FROM {table} ORDER BY id")]
        assert new.execute(f"SELECT * FROM {table} ORDER BY id").fetchall() == want, table


def test_tags_unioned(old, new, plan):
    mapping, _ = plan
    want = {(mapping[c], t) for c, t in old.execute("SELECT customer_id, tag FROM customer_tags")}
    got = new.execute("SELECT customer_id, tag FROM customer_tags").fetchall()
    assert len(got) == len(set(got))
    assert set(got) == want


def test_schema_and_consistency(old, new):
    q = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    assert new.execute(q).fetchall() == old.execute(q).fetchall()
    assert new.execute("PRAGMA foreign_key_check").fetchall() == []
    assert new.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_report(plan):
    _, report = plan
    want = "kept_id,removed_ids\n" + "".join(f"{k},{';'.join(map(str, r))}\n" for k, r in report)
    assert Path("/app/dedupe_report.csv").read_text().replace("\r\n", "\n") == want
