"""The trainer scores tokens as the behaviour policy sampled them: same temperature, no top-p.

A real tiny model generates with ``LocalPolicy`` at T != 1; the trainer, holding
the same weights, must find pi_old / mu = 1 on every fresh token, and IPA's
mismatch mask must drop a planted stale chunk and keep the fresh ones. Also:
the chunked log-prob function against a plain ``log_softmax``, and bf16
training with float32 master weights.
"""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch

from openale.agent.models.local import LocalPolicy
from openale.agent.models.smollm import smollm2_tokenizer, tiny_random_model
from openale.agent.trajectory import Chunk, Trajectory
from openale.rl import logprobs as logprobs_module
from openale.rl.logprobs import TemperedLogprob
from openale.rl.losses import mismatch_mask
from openale.rl.packing import Sample, pack, samples_from_trajectory
from openale.rl.trainer import Trainer, TrainerConfig

H = 5.0


@pytest.fixture(scope="module")
def tokenizer():
    return smollm2_tokenizer()


def peaked_model(tokenizer, seed: int = 3):
    """A tiny random Llama whose next-token distributions are peaked, as a trained LM's are
    (a random one is nearly uniform, which hides what temperature does)."""
    model, _ = tiny_random_model(seed=seed, tokenizer=tokenizer)
    with torch.no_grad():
        model.model.norm.weight.mul_(8.0)
    return model


def rollout(policy: LocalPolicy, turns: int = 3) -> Trajectory:
    """``turns`` chunks of one conversation, recorded as the agent loop records them."""
    traj = Trajectory(task_id="toy/t", instruction="List the files.", reward=1.0)
    messages = [{"role": "user", "content": traj.instruction}]
    for _ in range(turns):
        r = policy.complete(messages, conversation_id=traj.id)
        traj.chunks.append(
            Chunk(
                index=len(traj.chunks),
                text=r.text,
                prompt_token_ids=r.prompt_token_ids,
                token_ids=r.token_ids,
                logprobs=r.logprobs,
                policy_version=r.policy_version,
                logprob_temperature=r.logprob_temperature,
                prompt_continues=r.prompt_continues,
            )
        )
        messages += [
            {"role": "assistant", "content": r.text},
            {"role": "user", "content": "<observation>a.txt</observation>"},
        ]
    return traj


def generate_and_train(tokenizer, tmp_path, temperature: float, top_p: float):
    model = peaked_model(tokenizer)
    trainer = Trainer(
        copy.deepcopy(model), tokenizer, TrainerConfig(lr=1e-6), out_dir=tmp_path / "run"
    )
    policy = LocalPolicy(
        model, tokenizer, temperature=temperature, top_p=top_p, max_new_tokens=10, seed=5
    )
    with policy:
        traj = rollout(policy)
    return trainer, traj


@pytest.mark.parametrize(("temperature", "top_p"), [(0.5, 1.0), (0.7, 0.9), (2.0, 1.0)])
def test_pi_old_equals_mu_at_step_zero_for_tempered_sampling(
    tokenizer, tmp_path, temperature, top_p
):
    trainer, traj = generate_and_train(tokenizer, tmp_path, temperature, top_p)
    assert all(c.logprob_temperature == temperature for c in traj.chunks)
    samples = samples_from_trajectory(traj)
    assert samples[0].chunk_temperatures == [temperature] * 3
    batch = pack(samples, trainer.pad_id)
    old = trainer.token_logprobs(batch)
    mask = batch.loss_mask
    ratio = (old - batch.behaviour_logprobs)[mask].exp()
    assert ratio.numel() == 30
    assert (ratio - 1).abs().max() < 1e-3, f"pi_old / mu in [{ratio.min():.4f}, {ratio.max():.4f}]"

    stats = trainer.train_step(samples)  # the step reports the same agreement
    assert stats.mismatch["logprob_abs_diff_max"] < 1e-3
    assert stats.algo["mismatch_dropped_chunks"] == 0


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_mismatch_mask_fires_on_a_planted_stale_chunk_and_not_on_fresh_ones(
    tokenizer, tmp_path, temperature
):
    trainer, traj = generate_and_train(tokenizer, tmp_path, temperature, 1.0)
    # Chunk 1 as if an older policy had sampled it: its tokens were e^2 less likely
    # under the behaviour policy than under pi_old (ratio ~7.4 > H = 5).
    stale = traj.chunks[1]
    stale.logprobs = [lp - 2.0 for lp in stale.logprobs]
    stale.policy_version = -1
    batch = pack(samples_from_trajectory(traj), trainer.pad_id)
    old = trainer.token_logprobs(batch)
    keep = mismatch_mask(old, batch.behaviour_logprobs, batch.chunk_index, batch.loss_mask, H)
    kept = {k: bool(keep[batch.chunk_index == k].all()) for k in range(3)}
    dropped = {k: not bool(keep[batch.chunk_index == k].any()) for k in range(3)}
    assert dropped[1], "the stale chunk was kept"
    assert kept[0] and kept[2], "a fresh chunk was dropped"


def test_tempered_logprob_matches_log_softmax_in_value_and_gradient(monkeypatch):
    monkeypatch.setattr(logprobs_module, "CHUNK_ELEMENTS", 3 * 50)  # 3 rows a chunk: 4 chunks
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(10, 50, generator=gen) * 3).requires_grad_(True)
    targets = torch.randint(0, 50, (10,), generator=gen)
    temp = torch.tensor([0.5, 1.0, 2.0, 0.3, 1.0, 1.0, 0.7, 1.5, 1.0, 0.9])
    weights = torch.randn(10, generator=gen)

    ours = TemperedLogprob.apply(logits, targets, temp)
    (ours * weights).sum().backward()
    grad = logits.grad.clone()
    logits.grad = None
    plain = torch.log_softmax(logits / temp[:, None], -1).gather(-1, targets[:, None])[:, 0]
    (plain * weights).sum().backward()
    torch.testing.assert_close(ours, plain.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(grad, logits.grad, atol=1e-5, rtol=0)


def test_tempered_logprob_keeps_the_logits_dtype_for_the_gradient():
    logits = torch.randn(4, 30, dtype=torch.bfloat16, requires_grad=True)
    out = TemperedLogprob.apply(logits, torch.tensor([1, 2, 3, 4]), torch.ones(4))
    assert out.dtype == torch.float32
    out.sum().backward()
    assert logits.grad.dtype == torch.bfloat16


def _batch(vocab: int, n: int = 4, length: int = 24) -> list[Sample]:
    rng = random.Random(0)
    rows = []
    for i in range(n):
        ids = [rng.randrange(10, vocab) for _ in range(length)]
        mask = [False] * 8 + [True] * (length - 8)
        rows.append(
            Sample(
                trajectory_id=f"t{i}",
                task_id="t",
                group="g",
                reward=1.0 if i % 2 else -1.0,
                input_ids=ids,
                loss_mask=mask,
                chunk_index=[-1] * 8 + [0] * (length - 8),
                behaviour_logprobs=[0.0] * 8 + [-11.0] * (length - 8),
                chunk_versions=[0],
                chunk_failed=[False],
                num_chunks=1,
            )
        )
    return rows


def test_bf16_training_keeps_float32_master_weights_so_tiny_steps_land(tokenizer, tmp_path):
    """At lr 1e-6 a bf16 weight (8 bits of mantissa) would not move; a float32 master does."""
    deltas = {}
    for dtype in ("float32", "bfloat16"):
        model, _ = tiny_random_model(seed=0, tokenizer=tokenizer)
        cfg = TrainerConfig(algorithm="ipa", lr=1e-6, dtype=dtype)
        trainer = Trainer(model, tokenizer, cfg, out_dir=tmp_path / dtype)
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.train_step(_batch(len(tokenizer)))
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
        deltas[dtype] = torch.cat(
            [(p.detach() - before[n]).flatten() for n, p in trainer.model.named_parameters()]
        )
    ref, bf16 = deltas["float32"], deltas["bfloat16"]
    moved_ref = (ref != 0).float().mean()
    moved_bf16 = (bf16 != 0).float().mean()
    assert moved_ref > 0.5
    assert moved_bf16 >= 0.98 * moved_ref, f"{moved_bf16:.3f} of weights moved vs {moved_ref:.3f}"
    # Adam's first step is ~lr * sign(grad): bf16 gradients point the same way.
    both = (ref != 0) & (bf16 != 0)
    agree = (torch.sign(ref[both]) == torch.sign(bf16[both])).float().mean()
    assert agree > 0.9
    assert bf16.abs().max() <= 1.2e-6 and math.isclose(
        float(bf16[both].abs().mean()), float(ref[both].abs().mean()), rel_tol=0.1
    )


def test_tempered_logprob_overwriting_the_logits_gives_the_same_value_and_gradient(monkeypatch):
    """``overwrite=True`` keeps the gradient in the logits' storage: same numbers, once."""
    monkeypatch.setattr(logprobs_module, "CHUNK_ELEMENTS", 3 * 50)
    gen = torch.Generator().manual_seed(1)
    base = (torch.randn(10, 50, generator=gen) * 3).requires_grad_(True)
    targets = torch.randint(0, 50, (10,), generator=gen)
    temp = torch.tensor([0.5, 1.0, 2.0, 0.3, 1.0, 1.0, 0.7, 1.5, 1.0, 0.9])
    weights = torch.randn(10, generator=gen)

    plain = torch.log_softmax(base / temp[:, None], -1).gather(-1, targets[:, None])[:, 0]
    (expected,) = torch.autograd.grad((plain * weights).sum(), base)
    logits = base * 1.0  # a non-leaf the function may overwrite, as the model's output is
    ours = TemperedLogprob.apply(logits, targets, temp, True)
    loss = (ours * weights).sum()
    (grad,) = torch.autograd.grad(loss, base, retain_graph=True)
    torch.testing.assert_close(ours, plain.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(grad, expected, atol=1e-5, rtol=0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(loss, base)


def test_padded_rows_score_as_each_row_alone(tokenizer, tmp_path):
    """The model runs without an attention mask: right padding must not change a real token."""
    model, _ = tiny_random_model(seed=0, tokenizer=tokenizer)
    trainer = Trainer(model, tokenizer, TrainerConfig(), out_dir=tmp_path)
    rows = _batch(len(tokenizer))
    for i, length in enumerate((24, 17, 11, 9)):
        for name in ("input_ids", "loss_mask", "chunk_index", "behaviour_logprobs"):
            setattr(rows[i], name, getattr(rows[i], name)[:length])
    together = trainer.token_logprobs(pack(rows, trainer.pad_id))
    assert together.shape == (4, 24)
    for i, row in enumerate(rows):
        alone = trainer.token_logprobs(pack([row], trainer.pad_id))[0]
        torch.testing.assert_close(together[i, : len(row)], alone, atol=1e-5, rtol=0)
        assert (together[i, len(row) :] == 0).all()
