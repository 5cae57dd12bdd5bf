"""The agent with SmolLM2-135M-Instruct: as a local policy, and behind `ale serve-model`."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch
from typer.testing import CliRunner

from openale.agent.trajectory import load
from openale.cli.main import app
from openale.tasks import load_tasks

runner = CliRunner()
TOY = load_tasks("toy", include=["create-hello-file"])[0].path


def _trajectory(output: str) -> Path:
    row = json.loads(output.strip().splitlines()[-1])
    assert row["error"] is None, row["error"]  # a harness error would be a bug; 0 reward is not
    return Path(row["trajectory"])


@pytest.mark.slow
def test_local_policy_runs_a_toy_task_and_its_logprobs_are_exact(monkeypatch, tmp_path):
    monkeypatch.setenv("ALE_HOME", str(tmp_path))
    result = runner.invoke(
        app,
        [
            "run",
            "--task",
            str(TOY),
            "--model",
            "local:smollm2",
            "--action-format",
            "bash_block",
            "--max-turns",
            "2",
            "--output-format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    traj = next(load(_trajectory(result.stdout)))
    assert traj.chunks and all(c.token_ids and c.logprobs for c in traj.chunks)
    # The loop records the temperature the log-probs were taken at (1 here, as checked below).
    assert all(c.logprob_temperature == 1.0 for c in traj.chunks)

    from openale.agent.models.smollm import resolve_model

    model, _ = resolve_model("smollm2")
    ids, positions, recorded = [], [], []
    for chunk in traj.chunks:
        ids += chunk.prompt_token_ids
        positions += range(len(ids), len(ids) + len(chunk.token_ids))
        ids += chunk.token_ids
        recorded += chunk.logprobs
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    fresh = [logp[p - 1, ids[p]].item() for p in positions]
    diff = sum(abs(a - b) for a, b in zip(fresh, recorded, strict=True)) / len(fresh)
    assert diff <= 1e-3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_agent_runs_a_task_against_ale_serve_model(monkeypatch, tmp_path):
    port, token = _free_port(), "test-token"
    record = tmp_path / "served.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openale.cli.serve_model",
            "--model",
            "smollm2",
            "--port",
            str(port),
            "--token",
            token,
            "--record",
            str(record),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        monkeypatch.setenv("ALE_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("ALE_API_KEY", token)
        result = runner.invoke(
            app,
            [
                "run",
                "--task",
                str(TOY),
                "--model",
                "smollm2",
                "--base-url",
                f"http://127.0.0.1:{port}/v1",
                "--max-turns",
                "2",
                "--output-format",
                "json",
            ],
        )
        assert result.exit_code == 0, result.output
        traj = next(load(_trajectory(result.stdout)))
        assert traj.chunks and traj.usage.completion_tokens > 0
        rows = [json.loads(line) for line in record.read_text().splitlines()]
        assert len(rows) == len(traj.chunks)  # every model call went over HTTP

        from openale.agent.models.openai_model import OpenAIModel

        streamed: list[str] = []
        model = OpenAIModel(
            "smollm2",
            base_url=f"http://127.0.0.1:{port}/v1",
            api_key=token,
            max_tokens=16,
            prices={"smollm2": (1.0, 2.0)},
            on_text=streamed.append,
        )
        response = model.complete([{"role": "user", "content": "Say hello."}])
        assert "".join(streamed) == response.text and len(streamed) > 1
        u = response.usage
        assert u.completion_tokens > 0
        assert u.cost_usd == pytest.approx((u.prompt_tokens + 2 * u.completion_tokens) / 1e6)
        assert all(r["token_ids"] and len(r["logprobs"]) == len(r["token_ids"]) for r in rows)
    finally:
        server.terminate()
        server.wait(timeout=30)
