import re
from collections import Counter, defaultdict
from pathlib import Path

LOG = Path("/app/logs/access.log")
REPORT = Path("/app/report")
Q = r'"((?:[^"\\]|\\.)*)"'
LINE = re.compile(rf"^(\S+) \S+ \S+ \[([^\]]+)\] {Q} (\d{{3}}) (\d+) {Q} {Q} (\d+)\.(\d{{3}})$")
REQUEST = re.compile(r"^[A-Z]+ (\S+) HTTP/[0-9.]+$")


def parsed():
    rows = []
    for line in LOG.read_text().splitlines():
        m = LINE.match(line)
        assert m, line
        rows.append((m.group(1), m.group(3), int(m.group(8)) * 1000 + int(m.group(9))))
    return rows


def expected_top():
    counts = Counter(ip for ip, _, _ in parsed())
    order = sorted(counts.items(), key=lambda kv: (-kv[1], tuple(int(o) for o in kv[0].split("."))))
    return [f"{n} {ip}" for ip, n in order[:5]]


def expected_p95():
    times = defaultdict(list)
    for _, request, ms in parsed():
        m = REQUEST.match(request)
        if m:
            times[m.group(1).split("?", 1)[0]].append(ms)
    lines = ["endpoint,requests,p95_ms"]
    for ep in sorted(times, key=lambda s: s.encode()):
        v = sorted(times[ep])
        rank = (95 * len(v) + 99) // 100
        lines.append(f"{ep},{len(v)},{v[rank - 1]}")
    return lines


def test_log_has_traps():
    counts = Counter(ip for ip, _, _ in parsed())
    assert counts["10.0.0.9"] == counts["10.0.0.10"]
    assert counts["192.168.1.20"] == counts["192.168.1.100"]
    assert any(not REQUEST.match(r) for _, r, _ in parsed())


def test_top_ips():
    data = (REPORT / "top_ips.txt").read_text()
    assert data.endswith("\n")
    assert data.splitlines() == expected_top()


def test_endpoint_p95():
    data = (REPORT / "endpoint_p95.csv").read_text()
    assert data.endswith("\n")
    assert [l.rstrip("\r") for l in data.splitlines()] == expected_p95()
