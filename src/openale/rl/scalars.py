"""Training scalars: TensorBoard events, a ``metrics.jsonl`` mirror, and a reward-curve PNG.

The JSONL mirror exists so that plots, reports and tests can read the numbers
back without TensorBoard's event-file reader; both are written from the same
call, so they never disagree.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


class ScalarLog:
    """Scalars per step, to TensorBoard (``SummaryWriter``) and ``<log_dir>/metrics.jsonl``.

    ``log(step, reward=..., loss=..., grad_norm=...)`` takes whatever scalars the
    caller has (nested dicts are flattened with ``/``); non-numeric and
    non-finite values are kept in the JSONL record but not sent to TensorBoard.
    """

    def __init__(self, log_dir: str | Path, *, tensorboard: bool = True, flush_secs: int = 10):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.log_dir / METRICS_FILE
        self._jsonl = self.path.open("a", encoding="utf-8")
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=flush_secs)

    def log(self, step: int, scalars: Mapping[str, Any] | None = None, **more: Any) -> dict:
        """Record the scalars of ``step``; returns the flat record written to the JSONL file."""
        flat = _flatten({**(scalars or {}), **more})
        record = {"step": int(step), "time": time.time(), **flat}
        self._jsonl.write(json.dumps(record, default=_jsonable) + "\n")
        self._jsonl.flush()
        if self._writer is not None:
            for key, value in flat.items():
                if _is_number(value) and math.isfinite(float(value)):
                    self._writer.add_scalar(key, float(value), global_step=int(step))
        return record

    def flush(self) -> None:
        self._jsonl.flush()
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if not self._jsonl.closed:
            self._jsonl.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> ScalarLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (or of the one inside a log folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_reward_curve(
    metrics: Iterable[Mapping[str, Any]] | str | Path,
    png: str | Path,
    *,
    keys: tuple[str, ...] = ("reward", "success"),
    smooth: int = 1,
    title: str = "reward vs step",
) -> Path:
    """Plot ``keys`` (default reward and success rate) against step into ``png``.

    ``metrics`` is a list of records (as ``ScalarLog.log`` returns them) or a
    metrics.jsonl path. ``smooth`` > 1 adds a trailing moving average. Keys
    absent from every record are skipped; at least one must be present.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics) if isinstance(metrics, str | Path) else list(metrics)
    series = {}
    for key in keys:
        points = [(r["step"], float(r[key])) for r in records if _is_number(r.get(key))]
        if points:
            series[key] = points
    if not series:
        raise ValueError(f"no records carry any of {keys}; nothing to plot")

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, points in series.items():
        steps, values = zip(*points, strict=True)
        line = ax.plot(steps, values, marker="." if len(steps) < 50 else None, alpha=0.5, label=key)
        if smooth > 1 and len(values) >= smooth:
            avg = [
                sum(values[i - smooth + 1 : i + 1]) / smooth for i in range(smooth - 1, len(values))
            ]
            ax.plot(
                steps[smooth - 1 :], avg, color=line[0].get_color(), label=f"{key} (avg {smooth})"
            )
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


@contextmanager
def training_progress(total: int, description: str = "training") -> Iterator[Any]:
    """A rich progress bar for a training loop; yields ``update(**scalars)`` to advance it by one.

    The scalars given to ``update`` (e.g. reward, loss) are shown after the bar.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
    ) as progress:
        task = progress.add_task(description, total=total, info="")

        def update(**scalars: Any) -> None:
            info = "  ".join(
                f"{k}={v:.4g}" if _is_number(v) else f"{k}={v}" for k, v in scalars.items()
            )
            progress.update(task, advance=1, info=info)

        yield update


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}/"))
        else:
            flat[name] = _scalar(value)
    return flat


def _scalar(value: Any) -> Any:
    # Tensors and numpy scalars become plain Python numbers.
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, RuntimeError):
            return value
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _jsonable(value: Any) -> Any:
    return str(value)
