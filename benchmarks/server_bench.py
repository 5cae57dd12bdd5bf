"""Sandboxes through the control plane (``ale serve``) against embedded ones, in one run.

    python benchmarks/server_bench.py [--quick] [--out benchmarks/results/server.json]

The server is a real ``ale serve`` subprocess (its own interpreter, as in
production) on a free port with a throwaway database; the client is the remote
SDK (``Sandbox.create(spec, server=...)``). Three measurements, each taken on
both sides in the same run, trials alternating so drift on the shared engine
falls on both alike:

1. round trip of a trivial command (``true``) in a session, and with
   ``commands.run``; ``remote_exec_ratio`` = remote p50 / embedded p50 of the
   session round trip (goal <= 1.3). The remote session runs over the SDK's
   session WebSocket; the same session over the plain HTTP route is measured
   alongside (``remote_http``), trials interleaved;
2. create latency (``Sandbox.create`` until it returns a running sandbox) with
   1, 8 and 32 creates in flight at once;
3. sustained session commands per second with many client threads over
   several sandboxes.

Every container carries a per-run label and is swept at the end, errors
included. Writes the JSON results and a PNG of the p50s next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import openale
from openale.sandbox import Sandbox, SandboxSettings, SandboxSpec
from openale.sandbox.engine import docker_client
from openale.sandbox.remote import calls

BENCH_LABEL = "openale.bench"
RESULTS = Path(__file__).resolve().parent / "results"
GOALS = {"remote_exec_ratio": 1.3}


@dataclass(frozen=True)
class Plan:
    exec_trials: int  # trivial commands per side, sessions
    commands_trials: int  # trivial commands per side, commands.run
    create_rounds: dict[int, int]  # concurrency -> rounds per side
    clients: int  # client threads in the throughput run
    sandboxes: int  # sandboxes they share (clients / sandboxes sessions each)
    duration_s: float  # of each throughput run
    warmup: int


DEFAULT = Plan(
    exec_trials=400,
    commands_trials=60,
    create_rounds={1: 12, 8: 2, 32: 1},
    clients=16,
    sandboxes=8,
    duration_s=10.0,
    warmup=20,
)
QUICK = Plan(
    exec_trials=40,
    commands_trials=10,
    create_rounds={1: 2, 8: 1},
    clients=4,
    sandboxes=2,
    duration_s=2.0,
    warmup=3,
)


def stats(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0}
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[-1] if len(ms) > 1 else ms[0]
    out = {"n": len(ms), "p50": statistics.median(ms), "p95": p95, "mean": statistics.fmean(ms)}
    out.update(min=min(ms), max=max(ms))
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``ale serve`` in a subprocess with its own state directory."""

    def __init__(self, home: Path):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = f"sqlite:///{home / 'server.db'}"
        env = {**os.environ, "ALE_HOME": str(home)}
        env.pop("ALE_SERVER", None)  # the server itself runs sandboxes embedded
        ale = Path(sys.executable).with_name("ale")
        self.proc = subprocess.Popen(
            [str(ale), "serve", "--port", str(self.port), "--db", self.db, "--reap-interval", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(home / "server.log", "w"),  # noqa: SIM115 - lives as long as the server
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ale serve did not start: see {home / 'server.log'}")
            time.sleep(0.1)
        from openale.server.store import Store

        self.token = Store(self.db).create_token("bench").token

    def cpu_ms(self) -> float:
        """CPU time (user + system) the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1e3 / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Bench:
    def __init__(self, plan: Plan, image: str, server: Server, progress: Progress, home: Path):
        self.plan = plan
        self.server = server
        self.progress = progress
        self.run_id = secrets.token_hex(4)
        self.settings = SandboxSettings(home=home, reap_interval_s=0)
        self.spec = SandboxSpec(
            image=image, memory="256m", cpus=0.5, labels={BENCH_LABEL: self.run_id}
        )

    def create(self, side: str):
        if side == "remote":
            return Sandbox.create(self.spec, server=self.server.url, token=self.server.token)
        return Sandbox.create(self.spec, settings=self.settings)

    # -- 1. round trips -----------------------------------------------------------------

    def round_trips(self) -> tuple[dict[str, dict[str, list[float]]], dict[str, float]]:
        """Latencies per side and kind, and CPU ms per session command on each side."""
        sides = {side: self.create(side) for side in ("embedded", "remote")}
        shells = {side: sb.sessions.create() for side, sb in sides.items()}
        # The remote session once more, over the plain HTTP route instead of its socket.
        remote_shell = shells["remote"]
        session_run = {
            "embedded": shells["embedded"].run,
            "remote": remote_shell.run,
            "remote_http": lambda cmd: remote_shell._run_http(
                calls.session_run(remote_shell._sb.id, remote_shell.id, cmd, 120.0)
            ),
        }
        out: dict[str, dict[str, list[float]]] = {
            s: {"session": [], "commands": []} for s in session_run
        }
        client_cpu = {side: 0.0 for side in session_run}
        server_cpu = {side: 0.0 for side in session_run if side != "embedded"}
        plan = self.plan
        task = self.progress.add_task(
            "round trips", total=3 * plan.exec_trials + 2 * plan.commands_trials
        )
        try:
            for run in session_run.values():
                for _ in range(plan.warmup):
                    run("true")
            for i in range(plan.exec_trials + plan.commands_trials):
                kind = "session" if i < plan.exec_trials else "commands"
                order = list(session_run) if kind == "session" else ["embedded", "remote"]
                order = order[i % len(order) :] + order[: i % len(order)]  # rotate: no side first
                for side in order:
                    s0 = self.server.cpu_ms() if side in server_cpu else 0.0
                    t0, c0 = time.perf_counter(), time.thread_time()
                    if kind == "session":
                        r = session_run[side]("true")
                    else:
                        r = sides[side].commands.run("true")
                    out[side][kind].append((time.perf_counter() - t0) * 1e3)
                    if kind == "session":
                        client_cpu[side] += (time.thread_time() - c0) * 1e3
                        if side in server_cpu:
                            server_cpu[side] += self.server.cpu_ms() - s0
                    if r.exit_code != 0:
                        raise RuntimeError(f"{side} {kind} 'true' -> {r.exit_code}")
                    self.progress.advance(task)
        finally:
            for sb in sides.values():
                sb.close()
        n = plan.exec_trials
        cpu = {f"{side}_client": round(ms / n, 3) for side, ms in client_cpu.items()}
        cpu.update({f"{side}_server": round(ms / n, 3) for side, ms in server_cpu.items()})
        return out, cpu

    def http_floor(self) -> list[float]:
        """Round trips of ``GET /healthz`` on the same server: HTTP alone, no sandbox work."""
        client = httpx.Client(base_url=self.server.url)
        ms = []
        for i in range(self.plan.exec_trials // 2 + self.plan.warmup):
            t0 = time.perf_counter()
            client.get("/healthz").raise_for_status()
            if i >= self.plan.warmup:
                ms.append((time.perf_counter() - t0) * 1e3)
        client.close()
        return ms

    # -- 2. create latency ----------------------------------------------------------------

    def creates(self, concurrency: int, side: str) -> list[float]:
        start = threading.Barrier(concurrency)

        def one(_) -> tuple[float, object]:
            start.wait()
            t0 = time.perf_counter()
            sb = self.create(side)
            return (time.perf_counter() - t0) * 1e3, sb

        with ThreadPoolExecutor(concurrency) as pool:
            done = list(pool.map(one, range(concurrency)))
            list(pool.map(lambda pair: pair[1].close(), done))  # removal is not timed
        return [ms for ms, _ in done]

    def create_latency(self) -> dict[str, dict[str, list[float]]]:
        out: dict[str, dict[str, list[float]]] = {}
        total = sum(2 * rounds for rounds in self.plan.create_rounds.values())
        task = self.progress.add_task("creates", total=total)
        for concurrency, rounds in self.plan.create_rounds.items():
            got = out[str(concurrency)] = {"embedded": [], "remote": []}
            for r in range(rounds):
                order = ("embedded", "remote") if r % 2 == 0 else ("remote", "embedded")
                for side in order:
                    got[side] += self.creates(concurrency, side)
                    self.progress.advance(task)
        return out

    # -- 3. throughput --------------------------------------------------------------------

    def throughput(self, side: str) -> dict[str, float]:
        plan = self.plan
        with ThreadPoolExecutor(plan.sandboxes) as pool:
            boxes = list(pool.map(lambda _: self.create(side), range(plan.sandboxes)))
        try:
            shells = [boxes[i % len(boxes)].sessions.create() for i in range(plan.clients)]
            for shell in shells:
                shell.run("true")
            counts = [0] * plan.clients
            start = threading.Barrier(plan.clients + 1)
            stop = threading.Event()

            def client(i: int) -> None:
                start.wait()
                while not stop.is_set():
                    if shells[i].run("true").exit_code != 0:
                        raise RuntimeError(f"{side}: 'true' failed")
                    counts[i] += 1

            with ThreadPoolExecutor(plan.clients) as pool:
                futures = [pool.submit(client, i) for i in range(plan.clients)]
                start.wait()
                t0 = time.perf_counter()
                task = self.progress.add_task(f"throughput {side}", total=plan.duration_s)
                while (elapsed := time.perf_counter() - t0) < plan.duration_s:
                    time.sleep(0.1)
                    self.progress.update(task, completed=min(elapsed, plan.duration_s))
                stop.set()
                for f in futures:
                    f.result()
                elapsed = time.perf_counter() - t0
            return {
                "commands": sum(counts),
                "seconds": round(elapsed, 3),
                "commands_per_s": round(sum(counts) / elapsed, 1),
                "clients": plan.clients,
                "sandboxes": plan.sandboxes,
            }
        finally:
            with ThreadPoolExecutor(plan.sandboxes) as pool:
                list(pool.map(lambda sb: sb.close(), boxes))

    def sweep(self) -> None:
        client = docker_client(self.settings)
        for c in client.api.containers(all=True, filters={"label": f"{BENCH_LABEL}={self.run_id}"}):
            client.api.remove_container(c["Id"], force=True, v=True)


def ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else float("nan")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    lat = results["latency_ms"]
    labels = ["session run", "commands.run"]
    w = 0.28
    for i, side in enumerate(("embedded", "remote")):
        vals = [lat[side]["session_run"]["p50"], lat[side]["commands_run"]["p50"]]
        axes[0].bar([x + i * w for x in range(2)], vals, w, label=side)
    http = lat["remote_http"]["session_run"]["p50"]
    axes[0].bar([2 * w], [http], w, label="remote, HTTP route")
    axes[0].set_xticks([x + w for x in range(2)], labels)
    axes[0].set_ylabel("p50 ms")
    axes[0].set_yscale("log")
    axes[0].set_title("command round trip")
    axes[0].legend()
    conc = list(results["create_ms"])
    for i, side in enumerate(("embedded", "remote")):
        vals = [results["create_ms"][c][side]["p50"] for c in conc]
        axes[1].bar([x + i * 0.4 for x in range(len(conc))], vals, 0.4, label=side)
    axes[1].set_xticks([x + 0.2 for x in range(len(conc))], [f"{c} at once" for c in conc])
    axes[1].set_ylabel("p50 ms")
    axes[1].set_title("Sandbox.create")
    axes[1].legend()
    tp = results["throughput"]
    axes[2].bar(["embedded", "remote"], [tp[s]["commands_per_s"] for s in ("embedded", "remote")])
    axes[2].set_ylabel("session commands / s")
    axes[2].set_title(f"{tp['remote']['clients']} clients, {tp['remote']['sandboxes']} sandboxes")
    fig.suptitle(
        f"openale control plane vs embedded (remote_exec_ratio {results['remote_exec_ratio']})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--image", default="openale/debian:bookworm")
    parser.add_argument("--out", type=Path, default=RESULTS / "server.json")
    args = parser.parse_args()
    plan = QUICK if args.quick else DEFAULT
    console = Console()
    home = Path(tempfile.mkdtemp(prefix="ale-server-bench-"))
    server = Server(home / "server")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        bench = Bench(plan, args.image, server, progress, home / "client")
        try:
            trips, cpu = bench.round_trips()
            floor = bench.http_floor()
            creates = bench.create_latency()
            throughput = {side: bench.throughput(side) for side in ("embedded", "remote")}
        finally:
            bench.sweep()
            server.stop()
    latency = {
        side: {"session_run": stats(t["session"]), "commands_run": stats(t["commands"])}
        for side, t in trips.items()
    }
    del latency["remote_http"]["commands_run"]
    results = {
        "remote_exec_ratio": ratio(
            latency["remote"]["session_run"]["p50"], latency["embedded"]["session_run"]["p50"]
        ),
        "remote_http_exec_ratio": ratio(
            latency["remote_http"]["session_run"]["p50"],
            latency["embedded"]["session_run"]["p50"],
        ),
        "remote_commands_ratio": ratio(
            latency["remote"]["commands_run"]["p50"], latency["embedded"]["commands_run"]["p50"]
        ),
        "remote_throughput_ratio": ratio(
            throughput["remote"]["commands_per_s"], throughput["embedded"]["commands_per_s"]
        ),
        "goals": GOALS,
        "latency_ms": latency,
        "http_floor_ms": stats(floor),
        "cpu_ms_per_session_command": cpu,
        "create_ms": {
            c: {side: stats(ms) for side, ms in by_side.items()} for c, by_side in creates.items()
        },
        "throughput": throughput,
        "metadata": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "openale": getattr(openale, "__version__", "0"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "image": args.image,
            "plan": asdict(plan),
            "server": "ale serve subprocess (uvicorn, 1 worker, httptools + uvloop), SQLite store",
            "remote_session_transport": "session WebSocket (remote_http: POST .../run)",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out.with_suffix(".png"))

    table = Table("measure", "embedded", "remote", "ratio")
    for name in ("session_run", "commands_run"):
        e, r = latency["embedded"][name]["p50"], latency["remote"][name]["p50"]
        table.add_row(f"{name} p50 ms", f"{e:.2f}", f"{r:.2f}", f"{ratio(r, e):.2f}")
    e, r = latency["embedded"]["session_run"]["p50"], latency["remote_http"]["session_run"]["p50"]
    table.add_row("session_run HTTP p50 ms", f"{e:.2f}", f"{r:.2f}", f"{ratio(r, e):.2f}")
    for c, by_side in results["create_ms"].items():
        e, r = by_side["embedded"], by_side["remote"]
        table.add_row(
            f"create x{c} p50/p95 ms",
            f"{e['p50']:.0f}/{e['p95']:.0f}",
            f"{r['p50']:.0f}/{r['p95']:.0f}",
            f"{ratio(r['p50'], e['p50']):.2f}",
        )
    table.add_row("GET /healthz p50 ms", "", f"{results['http_floor_ms']['p50']:.2f}", "")
    for side in ("remote", "remote_http"):
        table.add_row(
            f"CPU ms / session cmd ({'socket' if side == 'remote' else 'HTTP'})",
            f"{cpu['embedded_client']:.2f}",
            f"{cpu[f'{side}_client']:.2f} + server {cpu[f'{side}_server']:.2f}",
            "",
        )
    e, r = throughput["embedded"]["commands_per_s"], throughput["remote"]["commands_per_s"]
    table.add_row("session commands/s", f"{e:.0f}", f"{r:.0f}", f"{ratio(r, e):.2f}")
    console.print(table)
    console.print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
