"""Before/after reports of a training run: success with Wilson intervals, plots, a results key.

Held-out success is a proportion over few episodes (tens, on a laptop), so it
is always shown with its 95% Wilson score interval, which stays inside [0, 1]
and is honest at 0 or n successes where the normal approximation is not.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

Z95 = 1.959963984540054


class Success(BaseModel):
    """``successes`` out of ``attempts``, with the 95% Wilson interval."""

    successes: int
    attempts: int
    rate: float
    low: float
    high: float

    @classmethod
    def of(cls, successes: int, attempts: int) -> Success:
        low, high = wilson_interval(successes, attempts)
        rate = successes / attempts if attempts else 0.0
        return cls(successes=successes, attempts=attempts, rate=rate, low=low, high=high)

    @classmethod
    def from_eval(cls, result: dict[str, Any]) -> Success:
        """From an evaluation summary (its ``episodes`` and ``pass_rate``)."""
        n = int(result["episodes"])
        return cls.of(round(float(result["pass_rate"]) * n), n)

    def __str__(self) -> str:
        return (
            f"{self.successes}/{self.attempts} = {self.rate:.1%} "
            f"(95% CI {self.low:.1%}-{self.high:.1%})"
        )


def wilson_interval(successes: int, attempts: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion; (0, 1) when there is no attempt."""
    if attempts <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= attempts:
        raise ValueError(f"{successes} successes out of {attempts} attempts")
    p = successes / attempts
    denom = 1 + z * z / attempts
    center = (p + z * z / (2 * attempts)) / denom
    half = z * math.sqrt(p * (1 - p) / attempts + z * z / (4 * attempts * attempts)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def update_results(path: str | Path, key: str, value: Any) -> Path:
    """Set ``key`` of the JSON object in ``path`` to ``value``, keeping every other key.

    Read-modify-write, then an atomic rename, so other writers' keys survive
    and a reader never sees half a file.
    """
    path = Path(path)
    data: dict[str, Any] = {}
    if path.is_file() and path.read_text().strip():
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a JSON object")
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def plot_before_after(
    bars: dict[str, Success], png: str | Path, *, title: str = "held-out success"
) -> Path:
    """Bars of success rates with their 95% Wilson intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(bars)
    rates = [bars[n].rate for n in names]
    errs = [
        [bars[n].rate - bars[n].low for n in names],
        [bars[n].high - bars[n].rate for n in names],
    ]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(names), 3.6))
    colors = ["#9aa5b1", "#2f80ed", "#27ae60", "#eb5757"][: len(names)]
    ax.bar(names, rates, yerr=errs, capsize=6, color=colors)
    for i, n in enumerate(names):
        b = bars[n]
        ax.text(i, b.high + 0.02, f"{b.successes}/{b.attempts}", ha="center", fontsize=9)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.set_title(title)
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def plot_curves(
    curves: dict[str, list[tuple[int, float]]],
    png: str | Path,
    *,
    ylabel: str = "mean rollout reward",
    title: str = "reward per RL step",
    smooth: int = 1,
) -> Path:
    """One line per named curve of ``(step, value)`` points (optionally a moving mean)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, points in curves.items():
        if not points:
            continue
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        ax.plot(xs, ys, alpha=0.35 if smooth > 1 else 1.0, marker="o", ms=3)
        if smooth > 1:
            ax.plot(xs, moving_mean(ys, smooth), color=ax.lines[-1].get_color(), label=name)
        else:
            ax.lines[-1].set_label(name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def moving_mean(values: list[float], window: int) -> list[float]:
    """The mean of each value and the ``window - 1`` before it (fewer at the start)."""
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1) : i + 1]
        out.append(sum(part) / len(part))
    return out


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub markdown table of ``rows`` (keys of the first row are the columns)."""
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
