"""The RL trainer on tiny random models: steps, gradients, LoRA, checkpoints, scalars."""

from __future__ import annotations

import random

import pytest
import torch

from openale.agent.models.local import LocalPolicy
from openale.agent.models.local_batching import Sampling
from openale.agent.models.smollm import smollm2_tokenizer, tiny_random_model
from openale.rl.lora import LoraSettings
from openale.rl.packing import Sample, pack
from openale.rl.scalars import ScalarLog, plot_reward_curve, read_metrics, training_progress
from openale.rl.trainer import Trainer, TrainerConfig, UntrainableModelError


@pytest.fixture(scope="module")
def tokenizer():
    return smollm2_tokenizer()


def make_trainer(tokenizer, tmp_path, seed: int = 0, **config) -> Trainer:
    model, _ = tiny_random_model(seed=seed, tokenizer=tokenizer)
    config.setdefault("lr", 1e-3)
    return Trainer(model, tokenizer, TrainerConfig(**config), out_dir=tmp_path / "run")


def make_sample(
    rng: random.Random, *, reward: float, group: str, chunks=(5, 4), prompt=6, name="t"
) -> Sample:
    """A trajectory of prompt tokens, then per chunk: generated tokens + a tool observation."""
    ids, mask, index = [], [], []
    ids += [rng.randrange(10, 2000) for _ in range(prompt)]
    mask += [False] * prompt
    index += [-1] * prompt
    for k, n in enumerate(chunks):
        ids += [rng.randrange(10, 2000) for _ in range(n)]
        mask += [True] * n
        index += [k] * n
        if k < len(chunks) - 1:  # the observation before the next chunk
            ids += [rng.randrange(10, 2000) for _ in range(3)]
            mask += [False] * 3
            index += [-1] * 3
    return Sample(
        trajectory_id=name,
        task_id="task",
        group=group,
        reward=reward,
        input_ids=ids,
        loss_mask=mask,
        chunk_index=index,
        behaviour_logprobs=[0.0] * len(ids),
        chunk_versions=[0] * len(chunks),
        chunk_failed=[False] * len(chunks),
        num_chunks=len(chunks),
    )


def with_behaviour(trainer: Trainer, samples: list[Sample], shift: float = 0.0) -> list[Sample]:
    """Record mu as the trainer's own log-probs (+ shift), as a matching generator would."""
    for s in samples:
        logp = trainer.token_logprobs(pack([s], trainer.pad_id))[0]
        s.behaviour_logprobs = [
            float(v) + shift if m else 0.0 for v, m in zip(logp, s.loss_mask, strict=True)
        ]
    return samples


def batch(trainer: Trainer, seed: int = 0, rewards=(1.0, -1.0, 1.0, 0.0)) -> list[Sample]:
    rng = random.Random(seed)
    samples = [
        make_sample(rng, reward=r, group=f"g{i // 2}", chunks=(5 + i, 4), name=f"t{i}")
        for i, r in enumerate(rewards)
    ]
    return with_behaviour(trainer, samples)


def params(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


@pytest.mark.parametrize("algorithm", ["ipa", "grpo", "ppo", "topr"])
def test_one_step_changes_weights_and_lowers_the_loss(tokenizer, tmp_path, algorithm):
    trainer = make_trainer(tokenizer, tmp_path, algorithm=algorithm, lr=1e-4)
    # Positive rewards: IPA/TOPR weigh negative ones by detached ratios, so their loss
    # value is not what the step descends; GRPO/PPO still see advantages of both signs.
    samples = batch(trainer, rewards=(1.0, 0.5, 1.0, 0.25))
    before = params(trainer)
    old = trainer.logprobs_of(samples)  # pi_old pinned to the weights before the step
    loss_before = trainer.objective(samples, old=old)

    stats = trainer.train_step(samples)

    assert trainer.version == stats.version == 1
    assert stats.grad_norm > 0 and stats.tokens == sum(s.num_generated for s in samples)
    assert stats.mismatch["logprob_abs_diff_max"] < 1e-4  # mu was recorded by these weights
    assert stats.loss == pytest.approx(loss_before, abs=1e-5)
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])]
    assert changed
    assert trainer.objective(samples, old=old) < loss_before


def test_ipa_with_every_chunk_mismatched_gives_zero_gradient(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path, algorithm="ipa")
    samples = batch(trainer)
    # mu 10 nats below pi_old: exp(mean(old - mu)) = e^10 > H = 5 in every chunk.
    with_behaviour(trainer, samples, shift=-10.0)
    before = params(trainer)

    stats = trainer.train_step(samples)

    assert stats.algo["mismatch_dropped_frac"] == 1.0
    assert stats.mismatch["logprob_abs_diff_mean"] == pytest.approx(10.0, abs=1e-4)
    assert stats.grad_norm == 0.0
    for n, p in trainer.model.named_parameters():
        assert torch.equal(p, before[n]), n


@pytest.mark.parametrize(
    ("algorithm", "agg"), [("ipa", "token-mean"), ("grpo", "seq-mean-token-mean")]
)
def test_gradient_accumulation_equals_one_big_batch(tokenizer, tmp_path, algorithm, agg):
    whole = make_trainer(tokenizer, tmp_path / "a", algorithm=algorithm, agg=agg)
    split = make_trainer(
        tokenizer, tmp_path / "b", algorithm=algorithm, agg=agg, micro_batch_tokens=40
    )
    samples = batch(whole, rewards=(1.0, -1.0, 0.5, -0.5, 1.0, 0.0))

    s1 = whole.accumulate_gradients(samples)
    s2 = split.accumulate_gradients(samples)

    assert s1.micro_batches == 1 and s2.micro_batches >= 3
    assert s1.loss == pytest.approx(s2.loss, abs=1e-5)
    grads = dict(split.model.named_parameters())
    for n, p in whole.model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n].grad, atol=1e-5, rtol=0)


def test_pi_old_from_the_gradient_pass_matches_the_recomputed_one(tokenizer, tmp_path):
    recompute = make_trainer(
        tokenizer, tmp_path / "a", micro_batch_tokens=60, recompute_old_logprobs=True
    )
    reuse = make_trainer(
        tokenizer, tmp_path / "b", micro_batch_tokens=60, recompute_old_logprobs=False
    )
    samples = with_behaviour(recompute, batch(recompute), shift=-1.0)
    samples[1].behaviour_logprobs = [v - 5.0 for v in samples[1].behaviour_logprobs]

    s1 = recompute.accumulate_gradients(samples)
    s2 = reuse.accumulate_gradients(samples)

    assert s1.algo["mismatch_dropped_chunks"] == s2.algo["mismatch_dropped_chunks"] == 2
    for key, value in s1.mismatch.items():
        assert s2.mismatch[key] == pytest.approx(value, rel=1e-5), key
    grads = dict(reuse.model.named_parameters())
    for n, p in recompute.model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n].grad, atol=1e-6, rtol=0)


def test_lora_trains_only_the_adapter_and_its_merged_weights_drive_a_local_policy(
    tokenizer, tmp_path
):
    lora = LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    trainer = make_trainer(tokenizer, tmp_path, lora=lora, lr=1e-2)
    samples = batch(trainer)
    assert all("lora_" in n for n, p in trainer.model.named_parameters() if p.requires_grad)
    before = params(trainer)

    trainer.train_step(samples)
    trainer.train_step(samples)

    for n, p in trainer.model.named_parameters():
        assert torch.equal(p, before[n]) != ("lora_" in n), n  # adapters move, the rest not

    state = trainer.policy_state_dict()
    plain, _ = tiny_random_model(seed=0, tokenizer=tokenizer)
    assert set(state) == set(plain.state_dict())
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(state[q], plain.state_dict()[q])  # the adapter is merged in

    with LocalPolicy(plain, tokenizer) as policy:
        assert policy.load_weights(state) == 1
        context = samples[0].input_ids[:8]
        gen = policy.generate(context, Sampling(temperature=0, max_new_tokens=6))
    n = len(context)
    row = Sample(
        trajectory_id="gen",
        task_id="task",
        group="g",
        reward=0.0,
        input_ids=context + gen.token_ids,
        loss_mask=[False] * n + [True] * len(gen.token_ids),
        chunk_index=[-1] * n + [0] * len(gen.token_ids),
        behaviour_logprobs=[0.0] * n + gen.logprobs,
        chunk_versions=[gen.policy_version],
        chunk_failed=[False],
        num_chunks=1,
    )
    logp = trainer.token_logprobs(pack([row], trainer.pad_id))[0, n:]
    torch.testing.assert_close(logp, torch.tensor(gen.logprobs), atol=1e-4, rtol=0)


@pytest.mark.parametrize("lora", [None, LoraSettings(r=2, alpha=4)])
def test_resume_from_checkpoint_is_bit_identical(tokenizer, tmp_path, lora):
    cfg = {"algorithm": "grpo", "lora": lora}
    a = make_trainer(tokenizer, tmp_path / "a", **cfg)
    first, second = batch(a, seed=1), batch(a, seed=2)
    a.train_step(first)
    a.save_checkpoint(tmp_path / "ckpt", extra={"buffer_position": 7})
    stats_a = a.train_step(second)
    draw_a = torch.rand(4)

    # A fresh process-like start: another trainer, other RNG states, then resume.
    b = make_trainer(tokenizer, tmp_path / "b", seed=0, **cfg)
    torch.manual_seed(123)
    extra = b.load_checkpoint(tmp_path / "ckpt")
    assert extra == {"buffer_position": 7} and b.version == 1
    stats_b = b.train_step(second)

    assert stats_b.version == 2 and stats_b.loss == stats_a.loss
    assert stats_b.grad_norm == stats_a.grad_norm
    other = dict(b.model.named_parameters())
    for n, p in a.model.named_parameters():
        assert torch.equal(p, other[n]), n
    assert torch.equal(torch.rand(4), draw_a)


def test_sft_step_masks_failed_chunks(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path)
    samples = batch(trainer)
    for s in samples:
        s.chunk_failed = [True] * s.num_chunks
    assert trainer.sft_step(samples).grad_norm == 0.0  # every chunk failed: nothing to learn

    for s in samples:
        s.chunk_failed = [False, True]
    old = trainer.logprobs_of(samples)
    stats = trainer.sft_step(samples)
    assert stats.grad_norm > 0 and trainer.version == 2
    kept = [p.loss_mask & ~p.token_failed for p in trainer._prepare(samples).packs]
    new = trainer.logprobs_of(samples)
    gain = sum(float((n - o)[m].mean()) for n, o, m in zip(new, old, kept, strict=True))
    assert gain > 0  # the successful chunks became more likely


def test_imitation_term_trains_on_expert_samples(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path, imitation_coef=0.5)
    samples = with_behaviour(trainer, batch(trainer), shift=-10.0)  # RL part: all dropped
    expert = batch(trainer, seed=5, rewards=(1.0,))
    expert[0].imitation = True

    stats = trainer.train_step(samples + expert)

    assert stats.grad_norm > 0 and stats.imitation_loss > 0
    assert stats.loss == pytest.approx(0.5 * stats.imitation_loss, rel=1e-5)


def test_kl_to_the_reference_starts_at_zero_and_grows(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path, kl_coef=0.1, algorithm="topr")
    samples = batch(trainer)
    assert trainer.train_step(samples).kl == pytest.approx(0.0, abs=1e-6)
    assert trainer.train_step(samples).kl > 0


def test_a_quantized_model_is_refused(tokenizer, tmp_path):
    model, _ = tiny_random_model(tokenizer=tokenizer)
    model.hf_quantizer = object()  # what a GGUF load leaves behind
    with pytest.raises(UntrainableModelError, match="resolve_model"):
        Trainer(model, tokenizer, out_dir=tmp_path)


@pytest.mark.slow
def test_lora_on_smollm2_from_the_packaged_gguf(tmp_path):
    from openale.agent.models.smollm import resolve_model

    model, tok = resolve_model("smollm2")
    keys = set(model.state_dict())  # peft rewrites the model in place below
    cfg = TrainerConfig(lr=1e-3, lora=LoraSettings(r=4, alpha=8))
    trainer = Trainer(model, tok, cfg, out_dir=tmp_path)
    samples = batch(trainer, rewards=(1.0, -1.0))
    before = params(trainer)
    stats = trainer.train_step(samples)
    assert stats.grad_norm > 0
    moved = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all("lora_" in n for n in moved)
    assert set(trainer.policy_state_dict()) == keys


def test_scalar_log_writes_tensorboard_jsonl_and_a_reward_plot(tokenizer, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_trainer(tokenizer, tmp_path)
    samples = batch(trainer)
    with ScalarLog(tmp_path / "tb") as log, training_progress(3, "test") as advance:
        for step in range(3):
            stats = trainer.train_step(samples)
            log.log(step, stats.scalars(), sandbox_s=1.5 + step, note="text is kept")
            advance(reward=stats.reward_mean, loss=stats.loss)

    records = read_metrics(tmp_path / "tb")
    assert [r["step"] for r in records] == [0, 1, 2]
    assert records[0]["reward"] == pytest.approx(0.25) and records[0]["note"] == "text is kept"
    assert "mismatch/logprob_abs_diff_mean" in records[0]

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"reward", "loss", "grad_norm", "sandbox_s", "tokens_per_s"} <= set(tags)
    assert [e.value for e in events.Scalars("sandbox_s")] == [1.5, 2.5, 3.5]

    png = plot_reward_curve(records, tmp_path / "reward.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_compiled_forward_trains_like_the_eager_one(tokenizer, tmp_path):
    """``compile`` routes every scoring pass through torch.compile (a counting backend
    here, so the test needs no C compiler) and changes no gradient."""
    graphs: list[int] = []

    @torch._dynamo.register_backend(name="openale_counting")
    def counting(gm, example_inputs):
        graphs.append(len(example_inputs))
        return gm.forward

    eager = make_trainer(tokenizer, tmp_path / "a", micro_batch_tokens=60)
    compiled = make_trainer(
        tokenizer, tmp_path / "b", micro_batch_tokens=60, compile="openale_counting"
    )
    samples = with_behaviour(eager, batch(eager))

    s1 = eager.accumulate_gradients(samples)
    s2 = compiled.accumulate_gradients(samples)

    assert graphs, "the compiled trainer never ran its forward through torch.compile"
    assert s2.loss == pytest.approx(s1.loss, rel=1e-5)
    grads = dict(compiled.model.named_parameters())
    for n, p in eager.model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n].grad, atol=1e-6, rtol=1e-5)
    # Checkpoints and weight syncs see the plain module's names, not torch.compile's wrapper.
    assert set(compiled.policy_state_dict()) == set(eager.policy_state_dict())


def test_host_threads_sets_torchs_intra_op_threads(tokenizer, tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        make_trainer(tokenizer, tmp_path / "a")  # CPU, None: torch's setting is left alone
        assert torch.get_num_threads() == 2
        make_trainer(tokenizer, tmp_path / "b", host_threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
