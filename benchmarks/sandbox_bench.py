"""openale sandboxes against the raw Docker engine, side by side in one run.

    python benchmarks/sandbox_bench.py [--quick] [--out benchmarks/results/sandbox.json]

Three measurements, each pairing our embedded ``Sandbox`` with the same engine
driven directly through the docker SDK on a container with the same limits:

1. one trivial command (``true``) on an idle sandbox: ``session.run`` and
   ``sb.commands.run`` against ``container.exec_run(["true"])``;
2. create-to-first-command: ``Sandbox.create`` + first command (in a session,
   or with ``commands.run``) against ``containers.run(...)`` + first
   ``exec_run``;
3. load: N sandboxes created concurrently, each running M commands in its
   session, against N raw containers each doing M ``exec_run``.

Ours and raw trials alternate (the order rotates every trial; load rounds go
A B B A) so drift on a shared engine falls on both sides alike. Removal is
never timed. Every container carries a per-run label and is swept at exit,
Ctrl-C and errors included. Writes the JSON results and a PNG bar chart of
the p50s next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import docker
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import openale
from openale.sandbox import Sandbox, SandboxSettings, SandboxSpec
from openale.sandbox.runtime import CAPABILITIES

BENCH_LABEL = "openale.bench"
RESULTS = Path(__file__).resolve().parent / "results"
GOALS = {"session_exec_ratio": 0.5, "create_ratio": 1.2}


@dataclass(frozen=True)
class Plan:
    exec_trials: int  # trivial commands per variant on an idle sandbox
    create_trials: int  # create-to-first-command trials per variant
    sandboxes: int  # concurrent sandboxes under load
    commands_per_sandbox: int
    load_rounds: int  # each round is one ours and one raw load run
    warmup: int  # untimed repetitions before each measurement


DEFAULT = Plan(
    exec_trials=200,
    create_trials=15,
    sandboxes=32,
    commands_per_sandbox=50,
    load_rounds=2,
    warmup=5,
)
QUICK = Plan(
    exec_trials=20, create_trials=3, sandboxes=6, commands_per_sandbox=5, load_rounds=1, warmup=1
)


class BenchError(RuntimeError):
    """A measured command did not succeed, so its timing means nothing."""


def stats(ms: list[float]) -> dict[str, float]:
    """p50/p95 and friends of a list of milliseconds."""
    if not ms:
        return {"n": 0}
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[-1] if len(ms) > 1 else ms[0]
    out = {
        "n": len(ms),
        "p50": statistics.median(ms),
        "p95": p95,
        "mean": statistics.fmean(ms),
        "min": min(ms),
        "max": max(ms),
    }
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def since_ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def check(ok: bool, what: str) -> None:
    if not ok:
        raise BenchError(f"{what} failed; the benchmark would time an error")


class Bench:
    """Holds both sides' engine handles and everything that must be cleaned up."""

    def __init__(self, image: str, plan: Plan, progress: Progress, audit_home: Path):
        self.plan = plan
        self.progress = progress
        self.run_id = secrets.token_hex(4)
        labels = {BENCH_LABEL: self.run_id}
        # The reaper is off: it would run gc() against the whole engine, where
        # other people's sandboxes live, and its wake-ups would add noise.
        self.settings = SandboxSettings(home=audit_home, reap_interval_s=0)
        self.spec = SandboxSpec(image=image, memory="256m", cpus=0.5, labels=labels)
        # Same client configuration as openale's own pooled client, so the
        # raw side is not slowed by a smaller connection pool.
        self.client = docker.from_env(timeout=120, max_pool_size=64)
        self.raw_kwargs = dict(
            detach=True,
            mem_limit=self.spec.memory_bytes,
            memswap_limit=self.spec.memory_bytes,
            pids_limit=self.spec.pids,
            nano_cpus=int(self.spec.cpus * 1e9),
            network_mode=self.spec.network,
            cap_drop=["ALL"],
            cap_add=CAPABILITIES,
            security_opt=["no-new-privileges"],
            init=True,
            labels=labels,
        )
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._ours: list[Sandbox] = []
        self._raw: list = []

    # -- the two sides ----------------------------------------------------------------

    def new_sandbox(self) -> Sandbox:
        sb = Sandbox.create(self.spec, settings=self.settings)
        with self._lock:
            self._ours.append(sb)
        return sb

    def new_raw(self, *, as_openale: bool = False):
        # as_openale adds the two engine options openale's DockerRuntime also
        # sets; without them the engine builds a network sandbox at start.
        extra = {"network_disabled": True, "ipc_mode": "private"} if as_openale else {}
        c = self.client.containers.run(
            self.spec.image, "sleep infinity", **self.raw_kwargs, **extra
        )
        with self._lock:
            self._raw.append(c)
        return c

    def session_true(self, shell) -> None:
        r = shell.run("true")
        check(r.exit_code == 0, f"session.run('true') -> {r.exit_code}")

    def commands_true(self, sb: Sandbox) -> None:
        r = sb.commands.run("true")
        check(r.exit_code == 0, f"commands.run('true') -> {r.exit_code}")

    def raw_true(self, c) -> None:
        r = c.exec_run(["true"])
        check(r.exit_code == 0, f"exec_run(['true']) -> {r.exit_code}")

    def discard(self, thing) -> None:
        """Remove one container now (untimed) and forget it."""
        with self._lock:
            if thing in self._ours:
                self._ours.remove(thing)
            if thing in self._raw:
                self._raw.remove(thing)
        if isinstance(thing, Sandbox):
            thing.close()
        else:
            thing.remove(force=True, v=True)

    def cleanup(self) -> None:
        """Remove everything this run created, found by handle and then by label."""
        with self._lock:
            things = [*self._ours, *self._raw]
            self._ours.clear()
            self._raw.clear()

        def remove(thing) -> None:
            try:
                if isinstance(thing, Sandbox):
                    thing.close()
                else:
                    thing.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(remove, things))
            # A creation interrupted half-way leaves a container with no handle.
            left = self.client.containers.list(
                all=True, filters={"label": f"{BENCH_LABEL}={self.run_id}"}
            )
            list(pool.map(remove, left))

    # -- 1. one command on an idle sandbox --------------------------------------------

    def exec_latency(self) -> dict[str, list[float]]:
        sb, c = self.new_sandbox(), self.new_raw()
        shell = sb.sessions.create()
        variants: dict[str, Callable[[], None]] = {
            "ours.session_run": lambda: self.session_true(shell),
            "ours.commands_run": lambda: self.commands_true(sb),
            "raw.exec_run": lambda: self.raw_true(c),
        }
        for _ in range(self.plan.warmup):
            for fn in variants.values():
                fn()
        names = list(variants)
        samples: dict[str, list[float]] = {n: [] for n in names}
        task = self.progress.add_task("one command, idle", total=self.plan.exec_trials * len(names))
        for i in range(self.plan.exec_trials):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                t0 = time.perf_counter()
                variants[name]()
                samples[name].append(since_ms(t0))
                self.progress.advance(task)
        self.discard(sb)
        self.discard(c)
        return samples

    # -- 2. create-to-first-command ---------------------------------------------------

    def create_session_trial(self) -> dict[str, float]:
        t0 = time.perf_counter()
        sb = self.new_sandbox()
        t1 = time.perf_counter()
        shell = sb.sessions.create()
        t2 = time.perf_counter()
        self.session_true(shell)
        t3 = time.perf_counter()
        self.discard(sb)
        return {
            "ours.create_to_first_session_run": (t3 - t0) * 1e3,
            "ours.sandbox_create": (t1 - t0) * 1e3,
            "ours.session_create": (t2 - t1) * 1e3,
            "ours.first_session_run": (t3 - t2) * 1e3,
        }

    def create_commands_trial(self) -> dict[str, float]:
        t0 = time.perf_counter()
        sb = self.new_sandbox()
        t1 = time.perf_counter()
        self.commands_true(sb)
        t2 = time.perf_counter()
        self.discard(sb)
        return {
            "ours.create_to_first_commands_run": (t2 - t0) * 1e3,
            "ours.sandbox_create": (t1 - t0) * 1e3,
            "ours.first_commands_run": (t2 - t1) * 1e3,
        }

    def create_raw_trial(self, as_openale: bool = False) -> dict[str, float]:
        t0 = time.perf_counter()
        c = self.new_raw(as_openale=as_openale)
        t1 = time.perf_counter()
        self.raw_true(c)
        t2 = time.perf_counter()
        self.discard(c)
        suffix = "_openale_engine_options" if as_openale else ""
        return {
            f"raw.create_to_first_exec_run{suffix}": (t2 - t0) * 1e3,
            f"raw.containers_run{suffix}": (t1 - t0) * 1e3,
            f"raw.first_exec_run{suffix}": (t2 - t1) * 1e3,
        }

    def create_raw_as_openale_trial(self) -> dict[str, float]:
        return self.create_raw_trial(as_openale=True)

    def create_latency(self) -> dict[str, list[float]]:
        trials = [
            self.create_session_trial,
            self.create_raw_trial,
            self.create_commands_trial,
            self.create_raw_as_openale_trial,
        ]
        if self.plan.warmup:  # creation is slow: one warm-up pass of each is enough
            for trial in trials:
                trial()
        samples: dict[str, list[float]] = {}
        task = self.progress.add_task(
            "create → first command", total=self.plan.create_trials * len(trials)
        )
        for i in range(self.plan.create_trials):
            k = i % len(trials)
            for trial in trials[k:] + trials[:k]:
                for name, ms in trial().items():
                    samples.setdefault(name, []).append(ms)
                self.progress.advance(task)
        return samples

    # -- 3. load ----------------------------------------------------------------------

    def parallel(self, fn: Callable, items: Iterable, label: str, total: int) -> list:
        """``fn`` over ``items`` on one thread each; stops the others on the first error."""
        items = list(items)
        task = self.progress.add_task(label, total=total)
        results: list = [None] * len(items)
        with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
            futures = {pool.submit(fn, item, task): i for i, item in enumerate(items)}
            try:
                for f in as_completed(futures):
                    results[futures[f]] = f.result()
            except BaseException:
                self.stop.set()
                for f in futures:
                    f.cancel()
                raise
        return results

    def load_round(self, side: str) -> dict:
        n, m = self.plan.sandboxes, self.plan.commands_per_sandbox
        t_start = time.perf_counter()

        def make(_, task):
            if self.stop.is_set():
                return None
            t0 = time.perf_counter()
            if side == "ours":
                sb = self.new_sandbox()
                created, created_at = since_ms(t0), since_ms(t_start)
                target, handle = sb.sessions.create(), sb
            else:
                target = handle = self.new_raw()
                created, created_at = since_ms(t0), since_ms(t_start)
            self.progress.advance(task)
            return handle, target, created, since_ms(t0), created_at

        made = self.parallel(make, range(n), f"load {side}: create {n}", n)
        ready_wall_s = time.perf_counter() - t_start
        run = self.session_true if side == "ours" else self.raw_true

        def work(target, task) -> list[float]:
            lat = []
            for _ in range(m):
                if self.stop.is_set():
                    break
                t0 = time.perf_counter()
                run(target)
                lat.append(since_ms(t0))
                self.progress.advance(task)
            return lat

        t_run = time.perf_counter()
        lats = self.parallel(work, [t for _, t, *_ in made], f"load {side}: {n}×{m} cmds", n * m)
        run_wall_s = time.perf_counter() - t_run

        def remove(handle, task) -> None:
            self.discard(handle)
            self.progress.advance(task)

        self.parallel(remove, [h for h, *_ in made], f"load {side}: remove (untimed)", n)
        per_cmd = [x for lat in lats for x in lat]
        return {
            "create_wall_s": max(x[4] for x in made) / 1e3,
            "ready_wall_s": ready_wall_s,
            "per_sandbox_create_ms": [x[2] for x in made],
            "per_sandbox_ready_ms": [x[3] for x in made],
            "run_wall_s": run_wall_s,
            "commands": len(per_cmd),
            "commands_per_s": len(per_cmd) / run_wall_s,
            "per_command_ms": per_cmd,
        }

    def load(self) -> dict[str, list[dict]]:
        rounds: dict[str, list[dict]] = {"ours": [], "raw": []}
        for r in range(self.plan.load_rounds):
            for side in ("ours", "raw") if r % 2 == 0 else ("raw", "ours"):
                rounds[side].append(self.load_round(side))
        return rounds


# -- reporting --------------------------------------------------------------------------


def summarize_load(rounds: list[dict]) -> dict:
    per_cmd = [x for r in rounds for x in r["per_command_ms"]]
    return {
        "rounds": len(rounds),
        "create_wall_s": round(statistics.median(r["create_wall_s"] for r in rounds), 3),
        "ready_wall_s": round(statistics.median(r["ready_wall_s"] for r in rounds), 3),
        "ready_wall_s_by_round": [round(r["ready_wall_s"], 3) for r in rounds],
        "per_sandbox_create_ms": stats([x for r in rounds for x in r["per_sandbox_create_ms"]]),
        "per_sandbox_ready_ms": stats([x for r in rounds for x in r["per_sandbox_ready_ms"]]),
        "commands_per_s": round(
            sum(r["commands"] for r in rounds) / sum(r["run_wall_s"] for r in rounds), 2
        ),
        "commands_per_s_by_round": [round(r["commands_per_s"], 2) for r in rounds],
        "per_command_ms": stats(per_cmd),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 4)


def engine_metadata(client: docker.DockerClient) -> dict:
    version, info = client.version(), client.info()
    return {
        "docker_version": version.get("Version"),
        "docker_api_version": version.get("ApiVersion"),
        "docker_sdk_version": docker.__version__,
        "engine_cpus": info.get("NCPU"),
        "engine_memory_bytes": info.get("MemTotal"),
        "storage_driver": info.get("Driver"),
        "cgroup_version": info.get("CgroupVersion"),
        "kernel": info.get("KernelVersion"),
        "containers_running_at_start": info.get("ContainersRunning"),
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=RESULTS, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat, load = results["latency_ms"], results["load"]
    n = load["sandboxes"]
    panels = [
        (
            "one command, idle sandbox",
            [
                ("session.run", lat["ours"]["session_run"]["p50"], "ours"),
                ("commands.run", lat["ours"]["commands_run"]["p50"], "ours"),
                ("exec_run", lat["raw"]["exec_run"]["p50"], "raw"),
            ],
            "p50 latency (ms, log scale)",
            True,
        ),
        (
            "create → first command",
            [
                ("create\n+session", lat["ours"]["create_to_first_session_run"]["p50"], "ours"),
                ("create\n+commands", lat["ours"]["create_to_first_commands_run"]["p50"], "ours"),
                ("run\n+exec_run", lat["raw"]["create_to_first_exec_run"]["p50"], "raw"),
                (
                    "run+exec_run\nwith openale's\nengine options",
                    lat["raw"]["create_to_first_exec_run_openale_engine_options"]["p50"],
                    "raw",
                ),
            ],
            "p50 (ms)",
            False,
        ),
        (
            f"{n} concurrent: one command",
            [
                ("session.run", load["ours"]["per_command_ms"]["p50"], "ours"),
                ("exec_run", load["raw"]["per_command_ms"]["p50"], "raw"),
            ],
            "p50 latency (ms, log scale)",
            True,
        ),
        (
            f"{n} concurrent: create until ready",
            [
                ("sandboxes", load["ours"]["ready_wall_s"], "ours"),
                ("containers", load["raw"]["ready_wall_s"], "raw"),
            ],
            "wall time (s)",
            False,
        ),
    ]
    colors = {"ours": "#2b6cb0", "raw": "#a0aec0"}
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.2))
    for ax, (title, bars, ylabel, log) in zip(axes, panels, strict=True):
        names = [b[0] for b in bars]
        values = [b[1] for b in bars]
        ax.bar(names, values, color=[colors[b[2]] for b in bars])
        for x, v in enumerate(values):
            ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=9)
        if log:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelsize=8)
        ax.margins(y=0.15)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    fig.legend(handles, ["openale sandbox", "raw docker SDK"], loc="upper right", ncol=2)
    fig.suptitle("openale sandbox vs raw Docker (p50)", x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_summary(console: Console, results: dict) -> None:
    ratios = Table(title="openale sandbox ÷ raw docker (p50s)")
    ratios.add_column("ratio")
    ratios.add_column("value", justify="right")
    ratios.add_column("goal", justify="right")
    for key, value in results.items():
        if key.endswith("ratio") or "_ratio_" in key:
            goal = GOALS.get(key)
            ratios.add_row(key, f"{value:.3f}", f"≤ {goal}" if goal else "")
    for key, value in results["load"]["ratios"].items():
        ratios.add_row(f"load.{key}", f"{value:.3f}", "")
    latency = Table(title="latencies (ms)")
    latency.add_column("operation")
    latency.add_column("p50", justify="right")
    latency.add_column("p95", justify="right")
    for side in ("ours", "raw"):
        for op, s in results["latency_ms"][side].items():
            latency.add_row(f"{side}.{op}", f"{s['p50']:.1f}", f"{s['p95']:.1f}")
    for side in ("ours", "raw"):
        s = results["load"][side]["per_command_ms"]
        latency.add_row(f"load.{side}.per_command", f"{s['p50']:.1f}", f"{s['p95']:.1f}")
    console.print(ratios, latency)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small trial counts (smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS / "sandbox.json")
    parser.add_argument("--plot", type=Path, help="PNG path (default: --out with .png)")
    parser.add_argument("--image", default="openale/debian:bookworm")
    parser.add_argument("--sandboxes", type=int, help="concurrent sandboxes under load")
    parser.add_argument("--commands", type=int, help="commands per sandbox under load")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else DEFAULT
    overrides = {"sandboxes": args.sandboxes, "commands_per_sandbox": args.commands}
    plan = Plan(**{**asdict(plan), **{k: v for k, v in overrides.items() if v}})

    console = Console()
    # Ctrl-C and SIGTERM both clean up; SIGINT is re-armed because shells
    # start background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with tempfile.TemporaryDirectory(prefix="ale-bench-") as home, progress:
        bench = Bench(args.image, plan, progress, Path(home))
        try:
            bench.client.images.get(args.image)
        except docker.errors.ImageNotFound:
            console.print(f"[red]image {args.image} is missing; run `ale images bootstrap`[/]")
            return 2
        meta_engine = engine_metadata(bench.client)
        try:
            exec_samples = bench.exec_latency()
            create_samples = bench.create_latency()
            load_rounds = bench.load()
        except KeyboardInterrupt:
            console.print("[yellow]interrupted; removing this run's containers[/]")
            return 130
        finally:
            bench.stop.set()
            bench.cleanup()
    wall_s = (datetime.now(UTC) - started).total_seconds()

    samples = {**exec_samples, **create_samples}
    latency: dict[str, dict] = {"ours": {}, "raw": {}}
    for name, ms in samples.items():
        side, op = name.split(".", 1)
        latency[side][op] = stats(ms)
    ours_load, raw_load = summarize_load(load_rounds["ours"]), summarize_load(load_rounds["raw"])
    p50 = {side: {op: s["p50"] for op, s in ops.items()} for side, ops in latency.items()}
    results = {
        "session_exec_ratio": ratio(p50["ours"]["session_run"], p50["raw"]["exec_run"]),
        "commands_exec_ratio": ratio(p50["ours"]["commands_run"], p50["raw"]["exec_run"]),
        "create_ratio": ratio(
            p50["ours"]["create_to_first_session_run"], p50["raw"]["create_to_first_exec_run"]
        ),
        "create_ratio_commands": ratio(
            p50["ours"]["create_to_first_commands_run"], p50["raw"]["create_to_first_exec_run"]
        ),
        # The same ratio against a raw container given openale's two extra
        # engine options (network_disabled, ipc private): how much of the
        # create_ratio is the library rather than the engine configuration.
        "create_ratio_vs_raw_with_openale_engine_options": ratio(
            p50["ours"]["create_to_first_session_run"],
            p50["raw"]["create_to_first_exec_run_openale_engine_options"],
        ),
        "goals": GOALS,
        "latency_ms": latency,
        "load": {
            "sandboxes": plan.sandboxes,
            "commands_per_sandbox": plan.commands_per_sandbox,
            "command": "true",
            "ours": ours_load,
            "raw": raw_load,
            "ratios": {
                "create_wall": ratio(ours_load["create_wall_s"], raw_load["create_wall_s"]),
                "ready_wall": ratio(ours_load["ready_wall_s"], raw_load["ready_wall_s"]),
                "commands_per_s": ratio(ours_load["commands_per_s"], raw_load["commands_per_s"]),
                "per_command_p50": ratio(
                    ours_load["per_command_ms"]["p50"], raw_load["per_command_ms"]["p50"]
                ),
                "per_command_p95": ratio(
                    ours_load["per_command_ms"]["p95"], raw_load["per_command_ms"]["p95"]
                ),
            },
        },
        "metadata": {
            "timestamp": started.isoformat(timespec="seconds"),
            "wall_s": round(wall_s, 1),
            "quick": args.quick,
            "plan": asdict(plan),
            "image": args.image,
            "limits": {
                "memory": bench.spec.memory,
                "cpus": bench.spec.cpus,
                "pids": bench.spec.pids,
                "network": bench.spec.network,
            },
            "host_cpus": os.cpu_count(),
            "host_loadavg_before": [round(x, 2) for x in load_before],
            "host_loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "python_version": platform.python_version(),
            "platform": platform.platform(),
            "openale_version": openale.__version__,
            "git_commit": git_commit(),
            **meta_engine,
            "method": (
                "median of wall-clock round trips (time.perf_counter) around public calls; "
                "ours and raw alternate with rotating order; removal untimed; raw side is the "
                "docker SDK (containers.run + exec_run) with the same limits, cap set, "
                "no-new-privileges, init and pooled client as openale (the *_openale_engine_"
                "options variant also sets network_disabled and ipc_mode=private, as openale "
                "does); ours includes its "
                "audit-log writes. Under load, create_wall is until the last Sandbox.create / "
                "containers.run returned; ready_wall also includes ours' sessions.create."
            ),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    plot_path = args.plot or args.out.with_suffix(".png")
    plot(results, plot_path)
    print_summary(console, results)
    console.print(f"wrote {args.out} and {plot_path} in {wall_s:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
