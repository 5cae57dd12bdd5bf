"""Safety detectors: precision/recall on the labelled corpus, and the cost per command.

    python benchmarks/safety_bench.py [--rounds 20] [--out benchmarks/results/safety.json]

1. Precision and recall per category and overall on ``tests/data/safety``, for
   the tuning part and the held-out fifth separately (see
   ``openale.safety.evaluate`` for how multi-category commands count).
2. The cost of ``scan_command`` with the default rules on every corpus command
   (what live enforcement would add before each command), measured side by
   side in one run with a no-op baseline (a call that returns an empty list):
   rounds alternate the two, the order rotating, and each sample is one
   command's wall time from ``perf_counter_ns``.

Writes the JSON results and a PNG bar chart of per-category precision/recall.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from openale.safety import ScanContext, default_rules, scan_command
from openale.safety.evaluate import evaluate, load_corpus

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "safety"


def no_op(command: str, context: ScanContext | None = None, rules=None) -> list:
    """Enforcement off: the call a hook makes when no policy is set."""
    return []


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def cost(commands: list[str], rounds: int) -> dict:
    ctx = ScanContext()
    rules = default_rules()
    scan_command("true", ctx, rules)  # compile the rules outside the timing
    samples: dict[str, list[float]] = {"scan_command": [], "no_op": []}
    funcs = {"scan_command": scan_command, "no_op": no_op}
    for r in range(rounds):
        order = list(funcs) if r % 2 == 0 else list(reversed(funcs))
        for name in order:
            f = funcs[name]
            for cmd in commands:
                t = time.perf_counter_ns()
                f(cmd, ctx, rules)
                samples[name].append((time.perf_counter_ns() - t) / 1e6)
    out = {}
    for name, xs in samples.items():
        out[name] = {
            "n": len(xs),
            "p50_ms": round(statistics.median(xs), 4),
            "p90_ms": round(percentile(xs, 0.9), 4),
            "p99_ms": round(percentile(xs, 0.99), 4),
            "mean_ms": round(statistics.fmean(xs), 4),
        }
    out["overhead_p50_ms"] = round(out["scan_command"]["p50_ms"] - out["no_op"]["p50_ms"], 4)
    out["goal_p50_ms"] = 0.2
    return out


def scores(samples) -> dict:
    ev = evaluate(samples)
    return {
        "n_benign": sum(s.category is None for s in samples),
        "n_risky": sum(s.category is not None for s in samples),
        "overall": ev.overall.as_dict(),
        "per_category": {c: s.as_dict() for c, s in ev.per_category.items() if s.tp + s.fp + s.fn},
        "misses": [f"[{m.category}] {m.command}" for m in ev.misses],
        "false_alarms": [f"{rules} {s.command}" for s, rules in ev.false_alarms],
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = results["detectors"]["all"]["per_category"]
    cats = list(per)
    xs = range(len(cats))
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar([x - 0.2 for x in xs], [per[c]["precision"] for c in cats], 0.4, label="precision")
    ax.bar([x + 0.2 for x in xs], [per[c]["recall"] for c in cats], 0.4, label="recall")
    ax.set_xticks(list(xs), [c.replace("_", "\n") for c in cats], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.axhline(0.95, color="grey", lw=0.6, ls="--")
    ax.set_title("openale.safety default rules on the labelled corpus (all commands)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "safety.json")
    args = p.parse_args()
    corpus = load_corpus(CORPUS / "benign.txt", CORPUS / "risky.tsv")
    results = {
        "benchmark": "safety",
        "detectors": {
            "all": scores(corpus),
            "tuning": scores([s for s in corpus if not s.held_out]),
            "held_out": scores([s for s in corpus if s.held_out]),
        },
        "rules": len(default_rules().rules),
        "per_command_cost": cost([s.command for s in corpus], args.rounds),
        "meta": {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "commands_timed": len(corpus),
            "rounds": args.rounds,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out.with_suffix(".png"))
    c = results["per_command_cost"]
    for split, s in results["detectors"].items():
        o = s["overall"]
        print(f"{split:9} precision {o['precision']:.3f} recall {o['recall']:.3f}")
    print(f"scan_command p50 {c['scan_command']['p50_ms']} ms, no-op p50 {c['no_op']['p50_ms']} ms")


if __name__ == "__main__":
    main()
