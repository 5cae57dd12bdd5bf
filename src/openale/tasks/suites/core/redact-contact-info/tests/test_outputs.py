import os
import re
import stat
from pathlib import Path

DOCS = Path("/app/docs")
ORIG = Path(__file__).parent / "originals"

EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(
    rb"(?<![A-Za-z0-9])(?:\+1[ -])?"
    rb"(?:\([0-9]{3}\) [0-9]{3}-[0-9]{4}|[0-9]{3}-[0-9]{3}-[0-9]{4}|[0-9]{3}\.[0-9]{3}\.[0-9]{4})"
    rb"(?![A-Za-z0-9])"
)


def redact(data: bytes) -> bytes:
    return PHONE.sub(b"[PHONE]", EMAIL.sub(b"[EMAIL]", data))


def rel_files(root: Path):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_no_files_added_or_removed():
    assert rel_files(DOCS) == rel_files(ORIG)


def test_txt_files_redacted_exactly():
    for rel in rel_files(ORIG):
        if not rel.endswith(".txt"):
            continue
        original = (ORIG / rel).read_bytes()
        expected = redact(original)
        assert expected != original, rel  # every .txt file has something to redact
        assert (DOCS / rel).read_bytes() == expected, rel


def test_nothing_sensitive_left():
    for rel in rel_files(ORIG):
        if rel.endswith(".txt"):
            data = (DOCS / rel).read_bytes()
            assert not EMAIL.search(data) and not PHONE.search(data), rel


def test_decoys_survive():
    notes = (DOCS / "meeting-notes.txt").read_text()
    assert "PO number 555-123-45678 pending" in notes
    assert "Budget code 2024-118-7730 approved" in notes
    assert "628 555 0188" in notes
    ticket = (DOCS / "tickets/48217.txt").read_text()
    assert "user@localhost and admin@intranet" in ticket
    assert "serial 1234-567-8901" in ticket
    contacts = (DOCS / "exports/contacts.txt").read_text()
    assert "[PHONE]x12" not in contacts and "305-555-0139x12" in contacts


def test_other_files_untouched():
    for rel in rel_files(ORIG):
        if not rel.endswith(".txt"):
            assert (DOCS / rel).read_bytes() == (ORIG / rel).read_bytes(), rel


def test_permissions_kept():
    mode = stat.S_IMODE(os.stat(DOCS / "tickets/48213.txt").st_mode)
    assert mode == 0o640
