import collections
import datetime as dt
import gzip
import re
from pathlib import Path

LOGS = Path("/app/logs")
NAMES = ["api-access.log", "api-access.log.1", "api-access.log.2.gz", "api-access.log.3.gz"]
LINE = re.compile(r'^\S+ \S+ \S+ \[([^\]]+)\] "(?:[^"\\]|\\.)*" (\d{3}) (\d+|-)$')


def lines(name):
    path = LOGS / name
    data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    return data.decode().splitlines()


def minute_counts(names=NAMES, utc=True):
    counts = collections.Counter()
    for name in names:
        for line in lines(name):
            m = LINE.match(line)
            assert m, line
            if 500 <= int(m.group(2)) <= 599:
                t = dt.datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S %z")
                if utc:
                    t = t.astimezone(dt.timezone.utc)
                counts[t.strftime("%Y-%m-%dT%H:%MZ")] += 1
    return counts


def peak(counts):
    minute, n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return f"{minute} {n}"


def test_logs_still_rotated_and_compressed():
    for name in NAMES:
        assert (LOGS / name).is_file(), name
    assert (LOGS / NAMES[2]).read_bytes()[:2] == b"\x1f\x8b"


def test_shortcuts_give_other_answers():
    right = peak(minute_counts())
    assert peak(minute_counts(NAMES[:2])) != right            # skipping the .gz files
    assert peak(minute_counts(utc=False)) != right            # ignoring the offsets
    for name in NAMES:                                         # one file at a time
        assert max(minute_counts([name]).values()) < int(right.split()[1])


def test_peak_answer():
    assert (Path("/app/peak_5xx.txt").read_text()) == peak(minute_counts()) + "\n"
