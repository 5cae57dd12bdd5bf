"""Reference converter for the checks (the spec in instruction.md, written out)."""
import json
import re

NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
SPECIAL = set(';#="\\,')


def is_scalar(v):
    return not isinstance(v, (dict, list))


def fmt_str(s):
    needs = (
        s == ""
        or s != s.strip(" \t\r\n")
        or any(c in SPECIAL or ord(c) < 0x20 for c in s)
        or s in ("true", "false")
        or NUMBER.fullmatch(s)
    )
    if not needs:
        return s
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return '"' + out + '"'


def fmt_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return fmt_str(v)


def convert(obj):
    blocks = []

    def walk(node, path):
        lines = []
        for k in sorted(node):
            v = node[k]
            if v is None or v == []:
                continue
            if is_scalar(v):
                lines.append(f"{k} = {fmt_scalar(v)}")
            elif isinstance(v, list) and all(is_scalar(x) for x in v):
                lines.append(f"{k} = " + ", ".join(fmt_scalar(x) for x in v))
        if lines:
            blocks.append(([f"[{path}]"] if path else []) + lines)
        for k in sorted(node):
            v = node[k]
            sub = f"{path}.{k}" if path else k
            if isinstance(v, dict):
                walk(v, sub)
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                for i, x in enumerate(v):
                    walk(x, f"{sub}.{i}")

    walk(obj, "")
    return "\n\n".join("\n".join(b) for b in blocks) + "\n"


if __name__ == "__main__":
    import sys

    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(convert(json.load(f)))
