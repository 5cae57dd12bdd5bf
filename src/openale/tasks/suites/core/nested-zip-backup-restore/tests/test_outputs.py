import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

BACKUP = Path("/app/backups/site-backup-2024-06-30.tar.gz")
RESTORE = Path("/app/restore")
MEMBER = "site/exports/reports-2024-q2.zip"


def inner_zip():
    with tarfile.open(BACKUP, "r:gz") as tar:
        return zipfile.ZipFile(io.BytesIO(tar.extractfile(MEMBER).read()))


def test_backup_still_intact():
    with tarfile.open(BACKUP, "r:gz") as tar:
        names = tar.getnames()
    assert MEMBER in names and "site/exports/archive/reports-2024-q2.zip" in names


def test_summary_restored_byte_for_byte():
    want = inner_zip().read("reports/2024/06/summary.csv")
    assert b"\r\n" in want
    assert (RESTORE / "summary.csv").read_bytes() == want


def test_manifest():
    z = inner_zip()
    files = sorted((i.filename for i in z.infolist() if not i.is_dir()), key=lambda s: s.encode())
    assert any(z.getinfo(f).file_size == 0 for f in files)
    want = "".join(f"{hashlib.sha256(z.read(f)).hexdigest()}  {f}\n" for f in files)
    assert (RESTORE / "MANIFEST.sha256").read_text() == want


def test_restore_dir_is_clean():
    assert sorted(p.name for p in RESTORE.iterdir()) == ["MANIFEST.sha256", "summary.csv"]
