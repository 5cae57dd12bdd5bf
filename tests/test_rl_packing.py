"""Packing trajectories into training rows: real LocalPolicy runs, and hand-built edge cases.

The policy is a tiny random Llama with SmolLM2's tokenizer, driven turn by
turn the way the agent loop drives it (same conversation id until a
compression starts a new one), so the chunks carry exactly what a rollout
records.
"""

from __future__ import annotations

import pytest
import torch

from openale.agent.models.local import LocalPolicy
from openale.agent.models.smollm import tiny_random_model
from openale.agent.trajectory import Chunk, ToolCall, ToolResult, Trajectory
from openale.rl.losses import chunk_returns, ipa_loss
from openale.rl.packing import (
    PackedBatch,
    Sample,
    TrajectoryTokensError,
    micro_batch_indices,
    micro_batches,
    pack,
    samples_from_trajectory,
)


@pytest.fixture(scope="module")
def policy():
    model, tokenizer = tiny_random_model(seed=1)
    with LocalPolicy(model, tokenizer, temperature=1.0, max_new_tokens=6, seed=0) as p:
        yield p


def _turn(policy: LocalPolicy, traj: Trajectory, messages: list[dict], conv: str, fail=False):
    """One agent step: the policy answers, a tool 'runs', its observation is appended."""
    r = policy.complete(messages, conversation_id=conv)
    call = ToolCall(name="shell", arguments={"command": "ls"})
    result = ToolResult(call_id=call.id, name="shell", output="a.txt", is_error=fail)
    traj.chunks.append(
        Chunk(
            index=len(traj.chunks),
            text=r.text,
            tool_calls=[call],
            tool_results=[result],
            prompt_token_ids=r.prompt_token_ids,
            token_ids=r.token_ids,
            logprobs=r.logprobs,
            policy_version=r.policy_version,
            prompt_continues=r.prompt_continues,
        )
    )
    messages += [
        {"role": "assistant", "content": r.text},
        {"role": "user", "content": f"<observation>{result.output}</observation>"},
    ]


@pytest.fixture(scope="module")
def rollout(policy):
    """Three turns, a compression (new token sequence), two more turns; a version bump and a
    failed tool call on the way."""
    traj = Trajectory(task_id="toy/list", instruction="List the files.", reward=0.5)
    head = [{"role": "user", "content": traj.instruction}]
    messages = list(head)
    _turn(policy, traj, messages, f"{traj.id}#0")
    policy.bump_version()
    _turn(policy, traj, messages, f"{traj.id}#0", fail=True)
    _turn(policy, traj, messages, f"{traj.id}#0")
    first = policy.context_ids(f"{traj.id}#0")
    messages = [*head, {"role": "user", "content": "Summary: listed the files."}]
    _turn(policy, traj, messages, f"{traj.id}#1")
    _turn(policy, traj, messages, f"{traj.id}#1")
    second = policy.context_ids(f"{traj.id}#1")
    return traj, [first, second]


def test_samples_are_the_policys_exact_token_sequences(rollout):
    traj, sequences = rollout
    assert [c.prompt_continues for c in traj.chunks] == [False, True, True, False, True]
    samples = samples_from_trajectory(traj)
    assert [s.input_ids for s in samples] == sequences
    for s, chunks in zip(samples, [traj.chunks[:3], traj.chunks[3:]], strict=True):
        assert (s.trajectory_id, s.task_id, s.group, s.reward) == (
            traj.id,
            "toy/list",
            "toy/list",
            0.5,
        )
        assert s.num_chunks == 5 and s.chunk_versions == [0, 1, 1, 1, 1]
        assert s.chunk_failed == [False, True, False, False, False]
        # Rebuild the expected per-token fields chunk by chunk.
        mask, index, mu = [], [], []
        for c in chunks:
            mask += [False] * len(c.prompt_token_ids) + [True] * len(c.token_ids)
            index += [-1] * len(c.prompt_token_ids) + [c.index] * len(c.token_ids)
            mu += [0.0] * len(c.prompt_token_ids) + c.logprobs
        assert s.loss_mask == mask and s.chunk_index == index and s.behaviour_logprobs == mu
        generated = [t for t, keep in zip(s.input_ids, s.loss_mask, strict=True) if keep]
        assert generated == [t for c in chunks for t in c.token_ids]
    assert [s.chunks for s in samples] == [[0, 1, 2], [3, 4]]  # chunk indices stay global
    assert [s.oldest_version for s in samples] == [0, 1]


def test_behaviour_logprobs_line_up_with_a_forward_pass_over_the_packed_batch(policy, rollout):
    traj, _ = rollout
    samples = samples_from_trajectory(traj)
    batch = pack(samples, pad_id=policy.pad_id)
    with torch.no_grad():
        logits = policy.model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask.long()
        ).logits.float()  # [B, T, V]
    logp = torch.log_softmax(logits[:, :-1], -1)  # position t-1 predicts token t
    token_logp = logp.gather(-1, batch.input_ids[:, 1:, None])[..., 0]  # [B, T-1]
    mask = batch.loss_mask[:, 1:]
    assert not batch.loss_mask[:, 0].any()
    diff = (token_logp - batch.behaviour_logprobs[:, 1:])[mask].abs()
    assert diff.numel() == batch.num_tokens > 0
    assert diff.max() <= 1e-3, f"max |delta logprob| {diff.max():.2e}"


def test_ipa_over_a_packed_rollout_sees_no_mismatch_and_reaches_the_weights(policy, rollout):
    traj, _ = rollout
    batch = pack(samples_from_trajectory(traj), pad_id=policy.pad_id)
    model = policy.model
    model.zero_grad()
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask.long()).logits
    logp = torch.log_softmax(logits[:, :-1].float(), -1)
    logp = logp.gather(-1, batch.input_ids[:, 1:, None])[..., 0]  # [B, T-1]
    logp = torch.nn.functional.pad(logp, (1, 0))  # [B, T]: position 0 has no log-prob
    args = (batch.rewards, batch.chunk_index, batch.num_chunks, batch.loss_mask)
    loss, stats = ipa_loss(logp, logp.detach(), batch.behaviour_logprobs, *args)
    # Generator and trainer agree (same weights): nothing is dropped, every ratio is 1.
    assert stats["mismatch_dropped_chunks"] == 0 and stats["chunks"] == 5
    assert stats["mismatch_max"] == pytest.approx(1.0, abs=1e-3)
    assert stats["ratio_mean"] == pytest.approx(1.0)
    returns = chunk_returns(batch.rewards, batch.chunk_index, batch.num_chunks)
    expected = -(returns * logp)[batch.loss_mask].sum() / batch.num_tokens
    torch.testing.assert_close(loss, expected)
    loss.backward()
    grad = model.get_input_embeddings().weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model.zero_grad()


def test_pack_pads_right_and_carries_chunk_fields(policy, rollout):
    traj, sequences = rollout
    other = traj.model_copy(update={"id": "traj-other", "task_id": "toy/other", "reward": -1.0})
    samples = samples_from_trajectory(traj) + samples_from_trajectory(other, group="g2")
    batch = pack(samples, pad_id=policy.pad_id)
    lengths = [len(s) for s in samples]
    b, t = batch.shape
    assert (b, t) == (4, max(lengths))
    for i, s in enumerate(samples):
        n = lengths[i]
        assert batch.input_ids[i, :n].tolist() == s.input_ids
        assert (batch.input_ids[i, n:] == policy.pad_id).all()
        assert batch.attention_mask[i].tolist() == [True] * n + [False] * (t - n)
        assert batch.loss_mask[i, :n].tolist() == s.loss_mask and not batch.loss_mask[i, n:].any()
        index = batch.chunk_index[i]
        assert index[:n].tolist() == s.chunk_index and (index[n:] == -1).all()
        expected_versions = [s.chunk_versions[k] if k >= 0 else -1 for k in s.chunk_index]
        assert batch.versions[i, :n].tolist() == expected_versions
        # Only the generated tokens of chunk 1 (its tool call failed) are marked.
        assert batch.token_failed[i].tolist() == (index == 1).tolist()
    assert batch.rewards.tolist() == [0.5, 0.5, -1.0, -1.0]
    assert batch.num_chunks.tolist() == [5, 5, 5, 5]
    assert batch.group_index.tolist() == [0, 0, 1, 1]
    assert batch.num_tokens == sum(s.num_generated for s in samples)
    moved = batch.to("cpu")
    assert isinstance(moved, PackedBatch) and torch.equal(moved.input_ids, batch.input_ids)


# -- hand-built trajectories ----------------------------------------------------------


def _chunk(k, prompt, gen, *, cont=True, version=0, fail=False) -> Chunk:
    results = [ToolResult(call_id="c", name="shell", output="x", is_error=fail)]
    return Chunk(
        index=k,
        prompt_token_ids=prompt,
        token_ids=gen,
        logprobs=[-0.1 * (i + 1) for i in range(len(gen))],
        policy_version=version,
        prompt_continues=cont,
        tool_results=results,
    )


def test_a_chunk_that_does_not_continue_starts_a_new_segment():
    traj = Trajectory(
        task_id="t",
        reward=1.0,
        chunks=[
            _chunk(0, [1, 2], [3, 4], cont=False, version=3),
            _chunk(1, [5], [6], version=4),
            _chunk(2, [1, 9], [7, 8, 9], cont=False, version=5),  # compression: whole prompt
            _chunk(3, [], [10], version=5),
        ],
    )
    first, second = samples_from_trajectory(traj)
    assert first.input_ids == [1, 2, 3, 4, 5, 6]
    assert first.chunk_index == [-1, -1, 0, 0, -1, 1]
    assert first.behaviour_logprobs == [0.0, 0.0, -0.1, -0.2, 0.0, -0.1]
    assert second.input_ids == [1, 9, 7, 8, 9, 10]
    assert second.loss_mask == [False, False, True, True, True, True]
    assert second.chunk_index == [-1, -1, 2, 2, 2, 3]
    assert first.num_chunks == second.num_chunks == 4
    assert (first.oldest_version, second.oldest_version) == (3, 5)


def test_the_first_chunk_always_starts_a_segment_and_an_empty_trajectory_has_none():
    traj = Trajectory(reward=0.0, chunks=[_chunk(0, [1], [2], cont=True)])
    (only,) = samples_from_trajectory(traj)
    assert only.input_ids == [1, 2]
    assert only.group == traj.id  # no task id, no group metadata
    assert samples_from_trajectory(Trajectory(reward=1.0)) == []


def test_missing_token_ids_or_logprobs_are_a_clear_error():
    http_chunk = Chunk(index=1, text="from an HTTP model")
    traj = Trajectory(reward=1.0, chunks=[_chunk(0, [1], [2]), http_chunk])
    with pytest.raises(TrajectoryTokensError, match=r"chunk 1: no prompt_token_ids, token_ids"):
        samples_from_trajectory(traj)
    bad = _chunk(0, [1], [2, 3])
    bad.logprobs = [-0.5]
    with pytest.raises(TrajectoryTokensError, match="1 log-probs for 2 generated tokens"):
        samples_from_trajectory(Trajectory(reward=1.0, chunks=[bad]))


def test_reward_and_group_come_from_the_trajectory_unless_given():
    traj = Trajectory(task_id="t", chunks=[_chunk(0, [1], [2])], metadata={"group": "round3"})
    with pytest.raises(ValueError, match="has no reward"):
        samples_from_trajectory(traj)
    (s,) = samples_from_trajectory(traj, reward=-1)
    assert (s.reward, s.group) == (-1.0, "round3")
    (s,) = samples_from_trajectory(traj, reward=2.0, group="mine", imitation=True)
    assert (s.reward, s.group, s.imitation) == (2.0, "mine", True)
    assert pack([s, _sample(3)], pad_id=0).imitation.tolist() == [True, False]


def test_failed_chunks_are_marked_per_token():
    traj = Trajectory(
        reward=1.0,
        chunks=[_chunk(0, [1], [2, 3], cont=False), _chunk(1, [4], [5, 6], fail=True)],
    )
    (s,) = samples_from_trajectory(traj)
    assert s.chunk_failed == [False, True]
    batch = pack([s], pad_id=0)
    assert batch.token_failed[0].tolist() == [False, False, False, False, True, True]
    assert batch.loss_mask[0].tolist() == [False, True, True, False, True, True]


def _sample(n: int, name: str = "s") -> Sample:
    return Sample(name, "t", "g", 0.0, [1] * n, [True] * n, [0] * n, [0.0] * n, [0], [False], 1)


def test_micro_batches_keep_the_padded_size_within_budget():
    samples = [_sample(n, f"s{n}") for n in (3, 9, 4, 8, 2, 30)]
    batches = micro_batches(samples, max_tokens=20)
    assert sorted(s.trajectory_id for b in batches for s in b) == sorted(
        s.trajectory_id for s in samples
    )
    for b in batches:
        padded = len(b) * max(len(s) for s in b)
        assert padded <= 20 or len(b) == 1  # a 30-token sample alone exceeds any batch
    # longest first: [30], [9, 8], [4, 3, 2]
    assert [[len(s) for s in b] for b in batches] == [[30], [9, 8], [4, 3, 2]]
    indices = micro_batch_indices(samples, max_tokens=20)
    assert [[samples[i] for i in b] for b in indices] == batches
    with pytest.raises(ValueError, match="positive"):
        micro_batches(samples, 0)
    with pytest.raises(ValueError, match="at least one"):
        pack([], pad_id=0)
