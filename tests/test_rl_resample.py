"""Initialized resampling on real Docker: forks of snapshots, prefix replay, training rows."""

from __future__ import annotations

import pytest

from openale.agent.models.base import ModelResponse
from openale.agent.models.local import LocalPolicy
from openale.agent.models.smollm import tiny_random_model
from openale.bench.oracle import solution_commands
from openale.rl.experts import (
    ResampleError,
    choose_anchors,
    oracle_trajectory,
    scripted_trajectory,
)
from openale.rl.resample import (
    ResampleConfig,
    Resampler,
    continuation_samples,
    imitation_samples,
)
from openale.rl.rollout import Rollout, RolloutConfig
from openale.tasks import load_tasks

HELLO = load_tasks("toy", include=["create-hello-file"])[0]
SCRIPT = load_tasks("toy", include=["create-script"])[0]
# The prefix appends to a trace file and draws a random nonce: a prefix run twice
# would leave two trace lines, and restarts that each ran it would differ in nonce.
PREFIX = "echo step >> /app/trace.txt; od -An -N8 -tx1 /dev/urandom > /app/nonce"
LOOK = "cat /app/nonce; cat /app/trace.txt"


class Inspector:
    """A scripted continuation (the policy is not under test): look around once, then stop."""

    name = "inspector"
    native_tools = False

    def complete(self, messages, *, tools=None, stop=None, conversation_id=None):
        looked = any(m["role"] == "assistant" and LOOK in m["content"] for m in messages)
        return ModelResponse(text="Done." if looked else f"```bash\n{LOOK}\n```")

    def count_tokens(self, messages):
        return sum(len(m["content"]) for m in messages) // 4


def _expert(rollout: Rollout):
    commands = [PREFIX, "printf 'hello world\\n' > /app/hello.txt"]
    prompt = rollout.agent(rollout.model).system_prompt()
    return scripted_trajectory(HELLO, commands, system_prompt=prompt)


def _looked(ep) -> tuple[str, list[str]]:
    k = ep.trajectory.metadata["expert_prefix_chunks"]
    out = ep.trajectory.chunks[k].tool_results[0].output.split()
    return out[0] + "".join(out[1:8]), [w for w in out[8:] if w == "step"]


@pytest.mark.slow
def test_fork_restarts_start_from_the_prefix_filesystem_state():
    rollout = Rollout(Inspector(), RolloutConfig(group_size=2, max_turns=4, concurrency=4))
    expert = _expert(rollout)
    batch = Resampler(rollout, ResampleConfig(mode="fork", anchors=[1, 2])).run(
        [(HELLO, expert)], round=1, progress=False
    )
    assert not batch.errors and batch.anchors == {"create-hello-file": [1, 2]}
    assert [r.exit_code for c in batch.experts[HELLO.name].chunks[:2] for r in c.tool_results] == [
        0,
        0,
    ]
    episodes = batch.episodes
    assert [(e.group, e.attempt) for e in episodes] == [
        ("r1/create-hello-file/a1", 0),
        ("r1/create-hello-file/a1", 1),
        ("r1/create-hello-file/a2", 0),
        ("r1/create-hello-file/a2", 1),
    ]
    nonces = set()
    for ep in episodes:
        assert ep.error is None, ep.traceback
        traj, k = ep.trajectory, ep.trajectory.metadata["anchor"]
        assert traj.metadata["expert_prefix_chunks"] == k
        assert traj.metadata["resample"]["mode"] == "fork"
        assert traj.parent_id == expert.id and traj.id != expert.id
        assert [c.text for c in traj.chunks[:k]] == [c.text for c in expert.chunks[:k]]
        assert traj.chunks[k].tool_calls[0].arguments["command"] == LOOK
        nonce, steps = _looked(ep)
        assert steps == ["step"]  # the prefix ran once, not again in the fork
        nonces.add(nonce)
        # The hello file exists only when the prefix wrote it before the anchor.
        assert ep.passed == (k == 2) and ep.reward == (1.0 if k == 2 else -1.0)
    assert len(nonces) == 1  # every restart sees the one prefix execution's file


@pytest.mark.slow
def test_replay_restarts_run_the_prefix_in_each_sandbox():
    rollout = Rollout(Inspector(), RolloutConfig(group_size=2, max_turns=4, concurrency=2))
    batch = Resampler(rollout, ResampleConfig(mode="replay", anchors=[2])).run(
        [(HELLO, _expert(rollout))], progress=False
    )
    nonces = set()
    for ep in batch.episodes:
        assert ep.error is None, ep.traceback
        assert ep.trajectory.metadata["resample"]["mode"] == "replay"
        assert ep.passed
        nonce, steps = _looked(ep)
        assert steps == ["step"]
        nonces.add(nonce)
        assert ep.trajectory.chunks[0].tool_results[0].exit_code == 0  # filled by the replay
    assert len(nonces) == 2  # each restart replayed the prefix itself


class ShellLooker:
    """A scripted continuation that prints the shell's directory and a variable, then stops."""

    name = "shell-looker"
    native_tools = False
    look = "pwd; echo var=$PREFIX_VAR"

    def complete(self, messages, *, tools=None, stop=None, conversation_id=None):
        looked = any(m["role"] == "assistant" and self.look in m["content"] for m in messages)
        return ModelResponse(text="Done." if looked else f"```bash\n{self.look}\n```")

    def count_tokens(self, messages):
        return sum(len(m["content"]) for m in messages) // 4


@pytest.mark.slow
def test_replay_restarts_inherit_the_prefix_shell_state():
    rollout = Rollout(ShellLooker(), RolloutConfig(group_size=1, max_turns=3, concurrency=1))
    prompt = rollout.agent(rollout.model).system_prompt()
    expert = scripted_trajectory(
        HELLO, ["cd /tmp && export PREFIX_VAR=42", "true"], system_prompt=prompt
    )
    batch = Resampler(rollout, ResampleConfig(mode="replay", anchors=[1])).run(
        [(HELLO, expert)], progress=False
    )
    (ep,) = batch.episodes
    assert ep.error is None, ep.traceback
    looked = ep.trajectory.chunks[1].tool_results[0].output.split()
    assert looked[:2] == ["/tmp", "var=42"]  # the agent's shell is the one the prefix ran in


def test_oracle_experts_and_anchors():
    rollout = Rollout(Inspector(), RolloutConfig())
    expert = oracle_trajectory(SCRIPT, rollout)
    assert [c.tool_calls[0].arguments["command"] for c in expert.chunks[:2]] == [
        "printf '#!/bin/bash\\necho hi\\n' > /app/hi.sh",
        "chmod +x /app/hi.sh",
    ]
    assert expert.chunks[0].text.startswith("```bash\n") and not expert.chunks[2].tool_calls
    assert expert.system_prompt == rollout.agent(rollout.model).system_prompt()

    script = "#!/bin/bash\nset -euo pipefail\n# c\nfor f in *; do echo $f; done\nls\n"
    assert solution_commands(script) == ["for f in *; do echo $f; done", "ls"]
    multi = "set -e\nif true; then\n  echo a\nfi\necho b\n"
    assert solution_commands(multi) == ["if true; then\n  echo a\nfi\necho b"]

    assert choose_anchors(expert, 1) == [2]
    assert choose_anchors(expert, 5) == [1, 2]
    six = scripted_trajectory(HELLO, ["a", "b", "c", "d", "e"], system_prompt="")
    assert choose_anchors(six, 3) == [1, 3, 5]
    with pytest.raises(ResampleError, match="no anchor"):
        choose_anchors(scripted_trajectory(HELLO, [], system_prompt=""), 1)
    batch = Resampler(rollout, ResampleConfig(anchors=[7])).run([(HELLO, expert)], progress=False)
    assert "outside" in batch.errors[HELLO.name] and not batch.episodes


@pytest.mark.slow
def test_training_rows_separate_the_expert_prefix_from_the_policy():
    model, tokenizer = tiny_random_model()
    with LocalPolicy(model, tokenizer) as policy:
        rollout = Rollout(policy, RolloutConfig(group_size=1, max_turns=3, max_new_tokens=8))
        expert = oracle_trajectory(HELLO, rollout)
        batch = Resampler(rollout, ResampleConfig(anchors=[1])).run(
            [(HELLO, expert)], progress=False
        )
        (ep,) = batch.episodes
        assert ep.error is None, ep.traceback
        assert ep.trainable  # the expert's chunk has no ids, the policy's do
        traj = ep.trajectory
        assert traj.chunks[0].token_ids is None and traj.chunks[1].token_ids
        assert not traj.chunks[1].prompt_continues  # the restart tokenized the whole prompt

        rows = continuation_samples(traj)
        assert rows and not any(r.imitation for r in rows)
        assert sum(r.num_generated for r in rows) == sum(len(c.token_ids) for c in traj.chunks[1:])
        context = tokenizer.decode(rows[0].input_ids)
        assert "printf 'hello world" in context  # the expert's action is context, not target

        imitation = imitation_samples(batch.experts[HELLO.name], upto=1, policy=policy)
        assert [r.imitation for r in imitation] == [True]
        row = imitation[0]
        target = [t for t, m in zip(row.input_ids, row.loss_mask, strict=True) if m]
        assert tokenizer.decode(target).startswith(expert.chunks[0].text)
        assert imitation[0].reward == 1.0
    with pytest.raises(ResampleError, match="token ids"):
        imitation_samples(expert, upto=1)
