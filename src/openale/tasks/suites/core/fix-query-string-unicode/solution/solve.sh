#!/bin/bash
set -euo pipefail
cd /app
python3 - <<'PY'
from pathlib import Path

p = Path("qsparse/core.py")
s = p.read_text()

old_unquote = s[s.index("    out: list[str] = []\n    i = 0"):s.index('    return "".join(out)\n')]
new_unquote = '''    out: list[str] = []
    pending = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%" and i + 2 < len(text) and text[i + 1] in _HEX and text[i + 2] in _HEX:
            pending.append(int(text[i + 1 : i + 3], 16))
            i += 3
            continue
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
            pending.clear()
        if c == "+" and plus_as_space:
            out.append(" ")
        else:
            out.append(c)
        i += 1
    if pending:
        out.append(pending.decode("utf-8", errors="replace"))
'''
s = s.replace(old_unquote, new_unquote)
s = s.replace('            out.append("%%%02X" % ord(c))',
              '            out.extend("%%%02X" % b for b in c.encode("utf-8"))')
s = s.replace('''            parts = chunk.split("=")
            key, value = parts[0], parts[1]''', '''            key, _, value = chunk.partition("=")''')
p.write_text(s)
PY
python3 -m pytest -q /app/tests
