"""Builds /app/backups/site-backup-2024-06-30.tar.gz (deterministic)."""
import gzip
import io
import random
import tarfile
import zipfile

rnd = random.Random(630)
STAMP = (2024, 6, 30, 23, 15, 0)
MTIME = 1719789300


def csv_bytes(month, rows, stale=False):
    lines = ["date,region,orders,revenue_eur"]
    for day in range(1, rows + 1):
        for region in ("north", "south", "west"):
            lines.append(f"2024-{month:02d}-{day:02d},{region},{rnd.randint(5, 90)},{rnd.randint(100, 9000)}.{rnd.randint(0, 99):02d}")
    if stale:
        lines.append("# preliminary numbers, do not use")
    return ("\r\n".join(lines) + "\r\n").encode()


def make_zip(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, method in entries:
            info = zipfile.ZipInfo(name, STAMP)
            info.external_attr = (0o40755 << 16) | 0x10 if name.endswith("/") else 0o100644 << 16
            info.compress_type = method
            z.writestr(info, data)
    return buf.getvalue()


D, S = zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED
q1 = make_zip([(f"reports/2024/{m:02d}/summary.csv", csv_bytes(m, 20), D) for m in (1, 2, 3)])
q2_entries = [("reports/", b"", S), ("reports/2024/", b"", S)]
for m in (4, 5, 6):
    q2_entries.append((f"reports/2024/{m:02d}/", b"", S))
    q2_entries.append((f"reports/2024/{m:02d}/summary.csv", csv_bytes(m, 28), D))
q2_entries.append(("reports/2024/06/raw data (unfiltered).csv", csv_bytes(6, 30), D))
q2_entries.append(("reports/README.txt", b"Quarterly exports. Amounts in EUR, incl. VAT.\n", S))
q2_entries.append(("reports/2024/06/.checksum-pending", b"", S))
q2 = make_zip(q2_entries)
stale_q2 = make_zip([("reports/2024/06/summary.csv", csv_bytes(6, 12, stale=True), D),
                     ("reports/2024/05/summary.csv", csv_bytes(5, 12, stale=True), D)])

files = {
    "site/index.html": b"<!doctype html><title>Shop</title><h1>Shop</h1>\n",
    "site/assets/app.css": b"body { font-family: sans-serif; }\n",
    "site/exports/reports-2024-q1.zip": q1,
    "site/exports/reports-2024-q2.zip": q2,
    "site/exports/archive/reports-2024-q2.zip": stale_q2,
    "site/exports/summary.csv": b"this is not the report you are looking for\n",
}
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
    dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
    for dname in dirs:
        ti = tarfile.TarInfo(dname)
        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, MTIME
        tar.addfile(ti)
    for name in sorted(files):
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = len(files[name]), 0o644, MTIME
        tar.addfile(ti, io.BytesIO(files[name]))
with open("/app/backups/site-backup-2024-06-30.tar.gz", "wb") as f:
    f.write(gzip.compress(raw.getvalue(), mtime=0))
