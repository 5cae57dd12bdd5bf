"""The bench harness against the raw engine doing the same trials, side by side in one run.

    python benchmarks/bench_harness.py [--quick] [--tasks core] [--out results/bench.json]

1. Overhead: for each sampled task, one oracle trial through ``run_trial``
   (build from cache, sandbox, solution, verifier, cleanup) and one through
   the docker SDK directly (cached ``docker build``, ``containers.run``,
   ``put_archive`` of the solution and tests, ``exec_run`` of both scripts,
   ``get_archive`` of the reward, removal). Pairs alternate which side goes
   first. Overhead = harness total / raw total - 1 (goal: <= 10%).
2. Throughput: ``BenchRun`` over the whole suite with the oracle at ``-n 4``;
   trials per hour = 3600 * trials / wall seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import docker
from rich.console import Console
from rich.progress import Progress

import openale
from openale.bench import BenchRun, EpisodeRunner, OracleAgent, load_agent, run_trial
from openale.tasks import Task, load_tasks

RESULTS = Path(__file__).resolve().parent / "results"
console = Console()


def _tar_dir(src: Path, prefix: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(src, arcname=prefix)
    return buf.getvalue()


def raw_trial(client: docker.DockerClient, task: Task) -> dict[str, float]:
    """The same oracle trial with nothing but the docker SDK."""
    env = task.config.environment
    t0 = time.perf_counter()
    image, _ = client.images.build(
        path=str(task.build_context), tag=f"openale/rawbench:{task.name}", rm=True, pull=False
    )
    t_build = time.perf_counter()
    workdir = image.attrs["Config"].get("WorkingDir") or "/"
    c = client.containers.run(
        image.id,
        ["sleep", "infinity"],
        detach=True,
        init=True,
        network_mode="none",
        mem_limit=f"{env.memory_mb}m",
        nano_cpus=int(min(env.cpus, 2) * 1e9),
        working_dir=workdir,
    )
    try:
        c.put_archive("/", _tar_dir(task.solution_dir, "solution"))
        c.exec_run(["bash", "/solution/solve.sh"], workdir=workdir)
        t_run = time.perf_counter()
        c.exec_run(["sh", "-c", "rm -rf /tests /logs/verifier; mkdir -p /logs/verifier"])
        c.put_archive("/", _tar_dir(task.tests_dir, "tests"))
        c.exec_run(["bash", "/tests/test.sh"], environment={"TEST_DIR": "/tests"})
        chunks, _ = c.get_archive("/logs/verifier/reward.txt")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            reward = float(tar.extractfile(tar.getmembers()[0]).read())
        t_verify = time.perf_counter()
    finally:
        c.remove(force=True)
    t_end = time.perf_counter()
    return {
        "build_s": t_build - t0,
        "run_s": t_run - t_build,
        "verify_s": t_verify - t_run,
        "total_s": t_end - t0,
        "reward": reward,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="core")
    parser.add_argument("--quick", action="store_true", help="a few tasks, for a smoke run")
    parser.add_argument("--pairs", type=int, default=2, help="paired trials per sampled task")
    parser.add_argument("--sample", type=int, default=12, help="tasks sampled for overhead")
    parser.add_argument("-n", type=int, default=4, help="concurrency of the throughput run")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench.json")
    args = parser.parse_args()
    if args.quick:
        args.sample, args.pairs = 3, 1

    tasks = load_tasks(args.tasks)
    step = max(1, len(tasks) // args.sample)
    sample = tasks[::step][: args.sample]
    client = docker.from_env()
    runner = EpisodeRunner()
    with tempfile.TemporaryDirectory() as tmp:
        # Warm both caches first: building is not what this measures.
        for task in sample:
            runner.image(task)
            raw_trial(client, task)

        pairs = []
        with Progress(console=console) as bar:
            job = bar.add_task("paired trials", total=len(sample) * args.pairs)
            for i in range(args.pairs):
                for j, task in enumerate(sample):
                    ours_first = (i + j) % 2 == 0
                    result = {}
                    for side in ("ours", "raw") if ours_first else ("raw", "ours"):
                        if side == "ours":
                            row = run_trial(task, OracleAgent(), i, Path(tmp), runner)
                            assert row.passed, f"{task.name}: {row.error}"
                            result["ours"] = {
                                "build_s": row.build_s,
                                "setup_s": row.setup_s,
                                "agent_s": row.agent_s,
                                "verify_s": row.verify_s,
                                "total_s": row.total_s,
                            }
                        else:
                            result["raw"] = raw_trial(client, task)
                    pairs.append({"task": task.name, **result})
                    bar.advance(job)

        ours_total = sum(p["ours"]["total_s"] for p in pairs)
        raw_total = sum(p["raw"]["total_s"] for p in pairs)
        per_pair = [p["ours"]["total_s"] / p["raw"]["total_s"] - 1 for p in pairs]

        n_tasks = len(tasks) if not args.quick else min(len(tasks), 8)
        console.print(f"throughput: {n_tasks} tasks with the oracle at -n {args.n}")
        started = time.perf_counter()
        rows = BenchRun(
            tasks[:n_tasks], lambda: load_agent("oracle"), Path(tmp) / "run", concurrency=args.n
        ).run()
        wall = time.perf_counter() - started

    for t in {f"openale/rawbench:{t.name}" for t in sample}:
        client.images.remove(t, force=True)

    results = {
        "benchmark": "bench_harness",
        "overhead": ours_total / raw_total - 1,
        "overhead_goal": 0.10,
        "overhead_median_per_trial": statistics.median(per_pair),
        # Without the image step: ours is a digest lookup, raw a cached `docker build`.
        "overhead_excluding_build": (ours_total - sum(p["ours"]["build_s"] for p in pairs))
        / (raw_total - sum(p["raw"]["build_s"] for p in pairs))
        - 1,
        "mean_trial_s": {"ours": ours_total / len(pairs), "raw": raw_total / len(pairs)},
        "mean_breakdown_s": {
            side: {
                k: statistics.mean(p[side][k] for p in pairs)
                for k in pairs[0][side]
                if k != "reward"
            }
            for side in ("ours", "raw")
        },
        "throughput": {
            "suite": args.tasks,
            "tasks": n_tasks,
            "concurrency": args.n,
            "wall_s": wall,
            "trials_per_hour": 3600 * len(rows) / wall,
            "passed": sum(r.passed for r in rows),
            "errors": sum(r.error is not None for r in rows),
        },
        "pairs": pairs,
        "meta": {
            "timestamp": datetime.now(UTC).isoformat(),
            "openale": openale.__version__,
            "python": platform.python_version(),
            "docker": client.version()["Version"],
            "cpus": client.info()["NCPU"],
            "sampled_tasks": [t.name for t in sample],
            "pairs_per_task": args.pairs,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    console.print(
        f"overhead {results['overhead']:+.1%} (goal <= +10%); "
        f"mean trial ours {results['mean_trial_s']['ours']:.2f}s vs raw "
        f"{results['mean_trial_s']['raw']:.2f}s; "
        f"{results['throughput']['trials_per_hour']:.0f} trials/hour at -n {args.n} "
        f"({results['throughput']['passed']}/{len(rows)} passed, "
        f"{results['throughput']['errors']} errors)"
    )
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
