"""Scoring a bench run: pass@1, pass@k, mean reward, errors, by category and difficulty."""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from math import comb
from pathlib import Path

from pydantic import BaseModel

from openale.bench.runner import read_results
from openale.bench.trial import TrialResult


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n attempts with c successes (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


class Score(BaseModel):
    tasks: int = 0
    trials: int = 0
    passed: int = 0
    errors: int = 0
    pass_at_1: float = 0.0
    pass_at_k: float = 0.0
    k: int = 1
    mean_reward: float = 0.0


class Summary(BaseModel):
    agent: str
    model: str | None
    overall: Score
    by_category: dict[str, Score]
    by_difficulty: dict[str, Score]
    errors: list[dict]
    mean_timings: dict[str, float]


def score(rows: list[TrialResult]) -> Score:
    per_task: dict[str, list[TrialResult]] = defaultdict(list)
    for r in rows:
        per_task[r.task].append(r)
    if not per_task:
        return Score()
    k = max(len(v) for v in per_task.values())
    p1 = [pass_at_k(len(v), sum(r.passed for r in v), 1) for v in per_task.values()]
    pk = [pass_at_k(len(v), sum(r.passed for r in v), min(k, len(v))) for v in per_task.values()]
    return Score(
        tasks=len(per_task),
        trials=len(rows),
        passed=sum(r.passed for r in rows),
        errors=sum(r.error is not None for r in rows),
        pass_at_1=sum(p1) / len(p1),
        pass_at_k=sum(pk) / len(pk),
        k=k,
        # An errored trial earned nothing: it counts as reward 0.
        mean_reward=sum((r.reward or 0.0) if r.error is None else 0.0 for r in rows) / len(rows),
    )


def summarize(rows: list[TrialResult]) -> Summary:
    by_cat: dict[str, list[TrialResult]] = defaultdict(list)
    by_diff: dict[str, list[TrialResult]] = defaultdict(list)
    for r in rows:
        by_cat[r.category].append(r)
        by_diff[r.difficulty].append(r)
    n = max(len(rows), 1)
    return Summary(
        agent=rows[0].agent if rows else "",
        model=rows[0].model if rows else None,
        overall=score(rows),
        by_category={c: score(v) for c, v in sorted(by_cat.items())},
        by_difficulty={d: score(v) for d, v in sorted(by_diff.items())},
        errors=[
            {"task": r.task, "attempt": r.attempt, "stage": r.error_stage, "error": r.error}
            for r in rows
            if r.error
        ],
        mean_timings={
            k: sum(getattr(r, k) for r in rows) / n
            for k in ("build_s", "setup_s", "agent_s", "verify_s", "total_s")
        },
    )


def _chart(summary: Summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = list(summary.by_category)
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(cats) + 2), 4))
    values = [summary.by_category[c].pass_at_1 for c in cats]
    ax.bar(cats, values, color="#3b82f6")
    ax.set_ylim(0, 1)
    ax.set_ylabel("pass@1")
    ax.set_title(
        f"{summary.agent}{' / ' + summary.model if summary.model else ''}: "
        f"pass@1 {summary.overall.pass_at_1:.2f} over {summary.overall.tasks} tasks"
    )
    ax.tick_params(axis="x", rotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(title: str, scores: dict[str, Score]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{s.tasks}</td><td>{s.trials}</td>"
        f"<td>{s.pass_at_1:.3f}</td><td>{s.pass_at_k:.3f}</td><td>{s.mean_reward:.3f}</td>"
        f"<td>{s.errors}</td></tr>"
        for name, s in scores.items()
    )
    return (
        f"<h2>{html.escape(title)}</h2><table><tr><th>{html.escape(title.split()[-1])}</th>"
        "<th>tasks</th><th>trials</th><th>pass@1</th><th>pass@k</th><th>mean reward</th>"
        f"<th>errors</th></tr>{rows}</table>"
    )


def write_report(out_dir: Path) -> tuple[Summary, Path]:
    """Write ``report.html`` and ``report.png`` next to ``results.jsonl``."""
    out_dir = Path(out_dir)
    rows = read_results(out_dir)
    if not rows:
        raise FileNotFoundError(f"no trial results in {out_dir / 'results.jsonl'}")
    summary = summarize(rows)
    png = out_dir / "report.png"
    _chart(summary, png)
    img = base64.b64encode(png.read_bytes()).decode()
    errors = "".join(
        f"<tr><td>{html.escape(e['task'])}</td><td>{e['attempt']}</td><td>{e['stage']}</td>"
        f"<td><pre>{html.escape(str(e['error'])[:500])}</pre></td></tr>"
        for e in summary.errors
    )
    o = summary.overall
    who = html.escape(summary.agent + (f" / {summary.model}" if summary.model else ""))
    timings = ", ".join(f"{k[:-2]} {v:.1f}" for k, v in summary.mean_timings.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>openale bench report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}pre{{margin:0;white-space:pre-wrap}}
</style></head><body>
<h1>Bench report: {who}</h1>
<p>{o.tasks} tasks, {o.trials} trials: pass@1 <b>{o.pass_at_1:.3f}</b>, pass@{o.k}
<b>{o.pass_at_k:.3f}</b>, mean reward {o.mean_reward:.3f}, errors {o.errors}.</p>
<p>Mean seconds per trial: {timings}</p>
<img src="data:image/png;base64,{img}" alt="pass@1 by category">
{_table("by category", summary.by_category)}
{_table("by difficulty", summary.by_difficulty)}
<h2>errors</h2><table><tr><th>task</th><th>attempt</th><th>stage</th><th>error</th></tr>{errors}</table>
</body></html>"""
    path = out_dir / "report.html"
    path.write_text(page)
    return summary, path
