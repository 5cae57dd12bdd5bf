"""`make demo`: the embedded sandbox end to end.

Later layers (the agent, RL) extend this demo; for now it shows what they
stand on: a safe sandbox, a shell that keeps its state, files, snapshot and
fork, the audit trail of all of it, and verifiable tasks scored by the bench.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from openale.bench import BenchRun, load_agent, write_report
from openale.sandbox import Sandbox, SandboxSpec
from openale.tasks import load_tasks

console = Console()


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def main() -> None:
    spec = SandboxSpec(image="openale/toolbox:bookworm", memory="512m", cpus=1, pids=256)
    step("1. create an offline, unprivileged sandbox")
    started = time.perf_counter()
    sb = Sandbox.create(spec)
    console.print(f"sandbox [bold]{sb.id}[/] ready in {time.perf_counter() - started:.2f}s")
    try:
        nets = sb.commands.run("ls /sys/class/net").stdout.split()
        caps = sb.commands.run("grep CapEff /proc/self/status").stdout.split()[1]
        console.print(f"network interfaces: {nets}   effective capabilities: 0x{caps}")
        r = sb.commands.run("curl -sS --max-time 3 https://pypi.org >/dev/null")
        console.print(f"reaching the internet: exit {r.exit_code} ({r.stderr.strip()})")

        step("2. a persistent shell")
        shell = sb.sessions.create()
        shell.run("mkdir -p /workspace/app && cd /workspace/app && export GREETING=hello")
        shell.run('greet() { echo "$GREETING, $1 (from $(pwd))"; }')
        console.print(shell.run("greet world").output.strip())
        r = shell.run("sleep 600", timeout=1)
        console.print(
            f"a 600 s command with a 1 s timeout: timed_out={r.timed_out}, "
            f"exit {r.exit_code}; the shell lives on: "
            f"{shell.run('echo $GREETING').output.strip()}"
        )

        step("3. files in and out, byte for byte")
        blob = os.urandom(5 * 1024 * 1024)
        sb.files.write("/workspace/app/blob.bin", blob)
        inside = sb.commands.run("sha256sum /workspace/app/blob.bin").stdout.split()[0]
        console.print(
            f"5 MiB upload: sha256 matches inside = {inside == hashlib.sha256(blob).hexdigest()}"
        )
        sb.files.write(
            "/workspace/app/fib.py",
            "import sys\na, b = 0, 1\nfor _ in range(int(sys.argv[1])):\n"
            "    a, b = b, a + b\nprint(a)\n",
        )
        console.print(f"python3 fib.py 90 -> {shell.run('python3 fib.py 90').output.strip()}")

        step("4. snapshot once, fork three times")
        snap = sb.snapshot()
        forks = Sandbox.fork(snap, 3)
        try:
            for i, f in enumerate(forks):
                f.commands.run(f"cd /workspace/app && python3 fib.py {10 * (i + 1)} > out.txt")
            for f in forks:
                console.print(
                    f"{f.id}: fib.py present, out.txt = "
                    f"{f.files.read('/workspace/app/out.txt').decode().strip()}"
                )
        finally:
            for f in forks:
                f.close()
            sb.runtime.client.images.remove(snap.image, force=True)

        step("5. the audit log")
        table = Table("time", "kind", "action", "exit", "detail")
        for e in list(sb.audit.read(sb.id))[-8:]:
            detail = e.detail.get("cmd") or e.detail.get("path") or ""
            table.add_row(
                e.ts.strftime("%H:%M:%S.%f")[:-3],
                e.kind,
                e.action,
                "" if e.exit_code is None else str(e.exit_code),
                detail[:60],
            )
        console.print(table)
        console.print(f"full log: {sb.audit.path(sb.id)}")
    finally:
        sb.close()

    step("6. verifiable tasks: the reference solutions against doing nothing")
    tasks = load_tasks("core", limit=6)
    with tempfile.TemporaryDirectory() as tmp:
        for agent in ("oracle", "nop"):
            out = Path(tmp) / agent
            BenchRun(tasks, lambda agent=agent: load_agent(agent), out, concurrency=3).run()
            summary, report = write_report(out)
            o = summary.overall
            console.print(
                f"{agent}: {o.tasks} core tasks, pass@1 {o.pass_at_1:.2f}, errors {o.errors}"
            )
        shutil.copy(report, "demo-report.html")
    console.print("report of the nop run: demo-report.html (`ale bench run` for your own)")
    console.print("[bold green]demo finished: every sandbox was removed")


if __name__ == "__main__":
    main()
