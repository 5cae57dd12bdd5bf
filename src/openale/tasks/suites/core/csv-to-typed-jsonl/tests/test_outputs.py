import json
import re
from pathlib import Path

SRC = Path("/app/data/vendors.csv")
OUT = Path("/app/data/vendors.jsonl")
INT = re.compile(r"-?(0|[1-9][0-9]*)")
FLOAT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")


def parse_csv(text):
    """A small RFC 4180 reader written out on its own."""
    records, row, field, i, quoted = [], [], [], 0, False
    while i < len(text):
        c = text[i]
        if quoted:
            if c == '"':
                if text[i + 1 : i + 2] == '"':
                    field.append('"')
                    i += 1
                else:
                    quoted = False
            else:
                field.append(c)
        elif c == '"':
            quoted = True
        elif c == ",":
            row.append("".join(field))
            field = []
        elif text.startswith("\r\n", i):
            row.append("".join(field))
            records.append(row)
            row, field = [], []
            i += 1
        else:
            field.append(c)
        i += 1
    assert not row and not field
    return records


def typed(v):
    if v == "":
        return None
    if v in ("true", "false"):
        return v == "true"
    if INT.fullmatch(v):
        return int(v)
    if FLOAT.fullmatch(v):
        return float(v)
    return v


def expected():
    header, *rows = parse_csv(SRC.read_bytes().decode("utf-8"))
    return header, [[(h, typed(v)) for h, v in zip(header, row)] for row in rows]


def test_output_is_one_object_per_line():
    data = OUT.read_bytes()
    assert data.endswith(b"\n") and b"\r\n" not in data
    _, rows = expected()
    lines = data.decode("utf-8").split("\n")[:-1]
    assert len(lines) == len(rows)
    for line in lines:
        assert isinstance(json.loads(line), dict)


def test_values_and_types():
    header, rows = expected()
    lines = OUT.read_text(encoding="utf-8").split("\n")[:-1]
    for line, want in zip(lines, rows):
        got = json.loads(line)
        assert list(got) == header
        for key, value in want:
            assert type(got[key]) is type(value), (key, got[key], value)
            assert got[key] == value, (key, got[key], value)


def test_tricky_cells():
    rows = [json.loads(l) for l in OUT.read_text(encoding="utf-8").splitlines() if l.strip()]
    by_id = {r["id"]: r for r in rows}
    assert by_id[1]["zip"] == "02139"
    assert by_id[3]["notes"].count("\n") == 3 and "\r" not in by_id[3]["notes"]
    assert by_id[3]["balance"] == 0.0 and type(by_id[3]["balance"]) is float
    assert by_id[5]["vendor"] == "  Padded Name  " and by_id[5]["zip"] == " 42"
    assert by_id[6]["active"] == "TRUE" and by_id[6]["notes"] is None
    assert by_id[7]["vendor"] == 'Echo "Labs"' and by_id[7]["contact"] is None
