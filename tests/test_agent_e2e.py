"""The openale agent end to end: built-in tasks through the bench, and `ale run`."""

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openale.bench import read_results
from openale.cli.main import app
from openale.tasks import load_tasks

REPLAY = Path(__file__).parent / "data" / "replay"
runner = CliRunner()


@pytest.mark.slow
def test_the_agent_solves_core_tasks_through_the_bench(tmp_path):
    names = sorted(p.stem for p in REPLAY.glob("*.jsonl"))
    assert len(names) >= 5
    args = [
        "bench",
        "run",
        "-t",
        "core",
        "-a",
        "openale",
        "--model",
        f"replay:{REPLAY}",
        "-o",
        str(tmp_path),
        "-n",
        "3",
    ]
    for name in names:
        args += ["-f", name]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = read_results(tmp_path)
    assert {r.task for r in rows} == set(names)
    assert [(r.task, r.error) for r in rows if r.error] == []
    assert all(r.reward == 1.0 and r.agent == "openale" for r in rows)
    from openale.agent.trajectory import load

    traj = next(load(rows[0].trajectory))
    assert traj.outcome == "completed" and traj.task_id == rows[0].task
    assert "SOLVED" in traj.chunks[2].tool_results[0].output


def test_headless_run_json_output_and_exit_codes(tmp_path):
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        json.dumps({"tool_calls": [{"name": "shell", "arguments": {"command": "echo $((6*7))"}}]})
        + "\n"
        + json.dumps({"text": "The answer is 42."})
        + "\n"
    )
    result = runner.invoke(
        app,
        [
            "run",
            "--output-file",
            str(tmp_path / "result.json"),
            "-p",
            "compute",
            "--model",
            f"replay:{replay}",
            "--output-format",
            "json",
            "--image",
            "openale/debian:bookworm",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["outcome"] == "completed" and out["answer"] == "The answer is 42."
    assert out["turns"] == 2
    assert json.loads((tmp_path / "result.json").read_text()) == out

    denied = tmp_path / "d.jsonl"
    denied.write_text(
        json.dumps({"tool_calls": [{"name": "shell", "arguments": {"command": "rm -rf /x"}}]})
        + "\n"
        + json.dumps({"text": "gave up"})
        + "\n"
    )
    result = runner.invoke(
        app,
        [
            "run",
            "-p",
            "delete",
            "--model",
            f"replay:{denied}",
            "--approval-mode",
            "plan",
            "--output-format",
            "json",
            "--image",
            "openale/debian:bookworm",
        ],
    )
    assert result.exit_code == 3  # never a silent success
    assert json.loads(result.stdout.strip().splitlines()[-1])["denied"][0]["tool"] == "shell"


def test_run_task_prints_the_reward(tmp_path):
    result = runner.invoke(
        app,
        [
            "run",
            "--task",
            str(load_tasks("core", include=["log-error-summary"])[0].path),
            "--model",
            f"replay:{REPLAY / 'log-error-summary.jsonl'}",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "reward 1.0" in result.output


def test_ale_run_help_documents_the_options():
    out = subprocess.run(
        [".venv/bin/ale", "run", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    ).stdout
    for flag in (
        "--prompt",
        "--output-format",
        "--max-turns",
        "--timeout",
        "--resume",
        "--task",
        "--model",
        "--base-url",
        "--workspace",
        "--approval-mode",
        "--record",
    ):
        assert flag in out


def test_settings_layers_and_project_memory(tmp_path, monkeypatch):
    from openale.agent.settings import load_settings, project_memory

    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.toml").write_text(
        '[agent]\nmodel = "user-model"\nmax_turns = 7\nbase_url = "http://user"\n'
    )
    project = tmp_path / "proj"
    (project / ".ale").mkdir(parents=True)
    (project / ".ale" / "settings.toml").write_text('[agent]\nmodel = "project-model"\n')
    (project / "AGENTS.md").write_text("Always run make lint.\n")
    monkeypatch.setenv("ALE_HOME", str(home))
    monkeypatch.delenv("ALE_MODEL", raising=False)
    s = load_settings(project)
    assert (s.model, s.max_turns, s.base_url) == ("project-model", 7, "http://user")
    monkeypatch.setenv("ALE_MODEL", "env-model")
    monkeypatch.setenv("ALE_MAX_TURNS", "9")
    s = load_settings(project)
    assert (s.model, s.max_turns) == ("env-model", 9)
    s = load_settings(project, model="flag-model", max_turns=None)
    assert (s.model, s.max_turns) == ("flag-model", 9)
    assert "Always run make lint." in project_memory(project)


def test_stream_json_and_resume_from_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("ALE_HOME", str(tmp_path / "home"))
    first = tmp_path / "a.jsonl"
    first.write_text(
        json.dumps({"tool_calls": [{"name": "shell", "arguments": {"command": "echo one"}}]})
        + "\n"
        + json.dumps({"text": "first done"})
        + "\n"
    )
    result = runner.invoke(
        app,
        [
            "run",
            "-p",
            "step one",
            "--model",
            f"replay:{first}",
            "--output-format",
            "stream-json",
            "--image",
            "openale/debian:bookworm",
        ],
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [e["type"] for e in events][:1] == ["start"]
    assert "chunk" in {e["type"] for e in events} and events[-1]["type"] == "end"
    session = events[-1]["trajectory"]
    second = tmp_path / "b.jsonl"
    second.write_text(json.dumps({"text": "second done"}) + "\n")
    result = runner.invoke(
        app,
        [
            "run",
            "-p",
            "step two",
            "--resume",
            session,
            "--model",
            f"replay:{second}",
            "--output-format",
            "json",
            "--image",
            "openale/debian:bookworm",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["session"] == session and out["turns"] == 3 and out["answer"] == "second done"
    bad = runner.invoke(app, ["run", "-p", "x", "--resume", "nope", "--model", f"replay:{second}"])
    assert bad.exit_code == 2 and "no saved session" in bad.output


def _replay_file(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mcp_servers_from_project_settings_reach_the_agent(tmp_path, monkeypatch):
    import sys

    calc = Path(__file__).parent / "mcp_servers" / "calc_server.py"
    project = tmp_path / "proj"
    (project / ".ale").mkdir(parents=True)
    (project / ".ale" / "settings.toml").write_text(
        f'[agent.mcp.servers.calc]\ncommand = "{sys.executable}"\nargs = ["{calc}"]\n'
    )
    monkeypatch.setenv("ALE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(project)
    replay = _replay_file(
        tmp_path / "r.jsonl",
        {"tool_calls": [{"name": "mcp__calc__add", "arguments": {"a": 2, "b": 40}}]},
        {"text": "2 + 40 = 42"},
    )
    result = runner.invoke(
        app,
        [
            "run",
            "-p",
            "add",
            "--model",
            f"replay:{replay}",
            "--output-format",
            "json",
            "--image",
            "openale/debian:bookworm",
        ],
    )
    assert result.exit_code == 0, result.output
    session = json.loads(result.stdout.strip().splitlines()[-1])["session"]
    from openale.agent.trajectory import load

    traj = next(load(tmp_path / "home" / "trajectories" / f"{session}.jsonl"))
    assert traj.chunks[0].tool_results[0].output.strip() == "42"


def test_host_workspace_is_opt_in_and_goes_through_approval(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    write = {
        "tool_calls": [
            {"name": "write_file", "arguments": {"path": "notes.txt", "content": "hi\n"}}
        ]
    }
    replay = _replay_file(tmp_path / "w.jsonl", write, {"text": "wrote it"})
    denied = runner.invoke(
        app,
        [
            "run",
            "-p",
            "write",
            "--workspace",
            str(work),
            "--model",
            f"replay:{replay}",
            "--output-format",
            "json",
        ],
    )
    assert denied.exit_code == 3 and not (work / "notes.txt").exists()
    allowed = runner.invoke(
        app,
        [
            "run",
            "-p",
            "write",
            "--workspace",
            str(work),
            "--model",
            f"replay:{replay}",
            "--approval-mode",
            "auto",
            "--output-format",
            "json",
        ],
    )
    assert allowed.exit_code == 0, allowed.output
    assert (work / "notes.txt").read_text() == "hi\n"


def test_interactive_session_in_a_terminal(tmp_path):
    import os
    import pty
    import select
    import time

    ale = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "ale")
    replay = _replay_file(
        tmp_path / "i.jsonl",
        {"tool_calls": [{"name": "shell", "arguments": {"command": "echo hi"}}]},
        {"text": "said hi"},
        {"tool_calls": [{"name": "shell", "arguments": {"command": "sleep 300"}}]},
        {"text": "second answer"},
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: `ale run` on a real terminal
        import signal

        # Run from a background job, we inherit SIGINT ignored; a terminal user does not.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(
            ale,
            [
                ale,
                "run",
                "--model",
                f"replay:{replay}",
                "--image",
                "openale/debian:bookworm",
            ],
        )
    seen = b""

    def read_until(marker: bytes, timeout: float = 60) -> None:
        nonlocal seen
        end = time.monotonic() + timeout
        while marker not in seen and time.monotonic() < end:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    return

    read_until(b"> ")
    os.write(fd, b"say hi\r")
    read_until(b"said hi")
    read_until(b"session traj-")
    os.write(fd, b"wait a long time\r")
    read_until(b"sleep 300")
    time.sleep(1)
    os.write(fd, b"\x03")  # Ctrl-C: stops this step, not the session
    read_until(b"interrupted by the user")
    os.write(fd, b"and again\r")
    read_until(b"second answer", timeout=30)
    os.write(fd, b"/exit\r")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = seen.decode(errors="replace")
    assert "said hi" in text and "second answer" in text and "tokens" in text
    assert "interrupted by the user" in text
    assert os.waitstatus_to_exitcode(status) == 0


def test_openai_client_retries_streams_and_costs(tmp_path):
    import http.server
    import threading

    from openale.agent.models.openai_model import OpenAIModel

    hits = []
    completion = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "hello there"},
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
    }

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            hits.append(self.path)
            if len(hits) <= 2:  # two overloaded answers before a good one
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps(completion).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        model = OpenAIModel(
            "m",
            base_url=f"http://127.0.0.1:{server.server_port}/v1",
            api_key="k",
            max_retries=3,
            prices={"m": (2.0, 8.0)},
        )
        response = model.complete([{"role": "user", "content": "hi"}])
    finally:
        server.shutdown()
    assert response.text == "hello there" and len(hits) == 3
    assert response.usage.cost_usd == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
    assert model.count_tokens([{"role": "user", "content": "hi"}]) == 1000
