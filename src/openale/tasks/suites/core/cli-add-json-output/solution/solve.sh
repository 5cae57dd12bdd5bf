#!/bin/bash
set -euo pipefail
cd /app
python3 - <<'PY'
from pathlib import Path

p = Path("wordstat.py")
s = p.read_text()
s = s.replace("import argparse\n", "import argparse\nimport json\n", 1)
s = s.replace(
    '''    p.add_argument("--min-length", type=int, default=1, metavar="L", help="ignore words shorter than L")\n''',
    '''    p.add_argument("--min-length", type=int, default=1, metavar="L", help="ignore words shorter than L")\n'''
    '''    p.add_argument("--json", action="store_true", help="print the report as one JSON object")\n''')
s = s.replace(
    '''    counts = count_words(texts, args.ignore_case, args.min_length)\n''',
    '''    counts = count_words(texts, args.ignore_case, args.min_length)\n'''
    '''    if args.json:\n'''
    '''        report = {\n'''
    '''            "files": list(args.files),\n'''
    '''            "total_words": sum(counts.values()),\n'''
    '''            "unique_words": len(counts),\n'''
    '''            "top": [{"word": w, "count": n} for w, n in top_words(counts, args.top)],\n'''
    '''        }\n'''
    '''        print(json.dumps(report))\n'''
    '''        return 0\n''')
p.write_text(s)
PY
python3 -m pytest -q /app/tests
python3 /app/wordstat.py --json --top 2 /app/samples/fox.txt
