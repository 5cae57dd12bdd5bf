"""Each RL loss against numbers worked out by hand (B=2, T=5 unless said), gradients included.

Layout used throughout: position 0 is a prompt token (never in the mask), so
``mask[:, 0]`` is False and values there may be anything, even NaN.
"""

from __future__ import annotations

import math

import pytest
import torch

from openale.rl.losses import (
    aggregate,
    chunk_mean,
    chunk_ratio,
    chunk_returns,
    finish_mismatch,
    group_advantages,
    grpo_loss,
    ipa_loss,
    kl_penalty,
    merge_mismatch,
    mismatch_mask,
    mismatch_stats,
    mismatch_sums,
    ppo_clip_loss,
    sft_loss,
    topr_loss,
)

F, T_ = False, True
nan, inf = float("nan"), float("inf")


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def m(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


def close(a, b, tol=1e-6) -> None:
    torch.testing.assert_close(
        torch.as_tensor(a).float(), torch.as_tensor(b).float(), atol=tol, rtol=0
    )


# -- aggregate ------------------------------------------------------------------------


def test_aggregate_token_mean_and_seq_mean_token_mean():
    values = t([[nan, 2, 3, 4, -inf], [1, 2, 3, 40, 50]])
    mask = m([[F, T_, T_, T_, F], [F, F, F, T_, T_]])
    # token-mean: (2 + 3 + 4 + 40 + 50) / 5 = 99 / 5
    close(aggregate(values, mask, "token-mean"), 99 / 5)
    # seq-mean-token-mean: ((2 + 3 + 4) / 3 + (40 + 50) / 2) / 2 = (3 + 45) / 2
    close(aggregate(values, mask, "seq-mean-token-mean"), 24.0)


def test_aggregate_ignores_rows_without_tokens_and_an_empty_mask_is_zero():
    values = t([[0, 2, 4, 0, 0], [7, 7, 7, 7, 7]])
    mask = m([[F, T_, T_, F, F], [F, F, F, F, F]])
    close(aggregate(values, mask, "seq-mean-token-mean"), 3.0)  # (2 + 4) / 2, row 1 not counted
    close(aggregate(values, torch.zeros_like(mask), "token-mean"), 0.0)
    close(aggregate(values, torch.zeros_like(mask), "seq-mean-token-mean"), 0.0)
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(values, mask, "sum")


# -- GRPO -----------------------------------------------------------------------------


def test_group_advantages_normalise_within_each_group():
    rewards = t([1, 0, 1, 0, 2, 2, 5])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    # group 0: mean 0.5, population std 0.5 -> (+-0.5) / 0.5 = +-1
    # group 1: equal rewards -> 0; group 2: a single sample -> 0
    close(group_advantages(rewards, groups), [1, -1, 1, -1, 0, 0, 0], tol=1e-5)
    close(
        group_advantages(rewards, groups, normalize_std=False),
        [0.5, -0.5, 0.5, -0.5, 0, 0, 0],
    )


def test_group_advantages_with_uneven_groups():
    rewards = t([3, 0, 0, -1, 1])
    groups = torch.tensor([1, 1, 1, 0, 0])
    # group 1: mean 1, deviations (2, -1, -1), var (4 + 1 + 1) / 3 = 2 -> std sqrt(2)
    # group 0: mean 0, deviations (-1, 1), std 1
    s = math.sqrt(2)
    close(group_advantages(rewards, groups, eps=0.0), [2 / s, -1 / s, -1 / s, -1, 1])


# ratios r = exp(logp - old_logp) chosen so each PPO case appears once
RATIOS = [[1.0, 1.1, 1.5, 0.5, 1.0], [1.0, 1.0, 0.9, 0.7, 1.3]]
PPO_MASK = m([[F, T_, T_, T_, F], [F, F, T_, T_, T_]])


def _ppo_inputs():
    old = torch.full((2, 5), -1.0)
    logp = (old + t(RATIOS).log()).requires_grad_(True)
    return logp, old


def test_ppo_clip_value_and_gradient_by_hand():
    logp, old = _ppo_inputs()
    adv = t([1.0, -2.0])
    loss, stats = ppo_clip_loss(logp, old, adv, PPO_MASK, clip_eps=0.2)
    # row 0, A = +1: r=1.1 -> 1.1; r=1.5 -> clipped 1.2; r=0.5 -> 0.5 (below 1-eps is not
    #   clipped for A > 0: min(0.5, 0.8) = 0.5)
    # row 1, A = -2: r=0.9 -> -1.8; r=0.7 -> min(-1.4, -1.6) = -1.6 (clipped);
    #   r=1.3 -> min(-2.6, -2.4) = -2.6 (not clipped)
    # loss = -(1.1 + 1.2 + 0.5 - 1.8 - 1.6 - 2.6) / 6 = 3.2 / 6
    close(loss, 3.2 / 6)
    assert stats["clip_frac"] == pytest.approx(2 / 6)
    loss.backward()
    # d/dlogp of -A*r/6 is -A*r/6 where unclipped; 0 where the clipped term is the minimum.
    expected = t([[0, -1.1 / 6, 0, -0.5 / 6, 0], [0, 0, 1.8 / 6, 0, 2.6 / 6]])
    close(logp.grad, expected)


def test_ppo_per_token_advantages_equal_broadcast_ones():
    logp, old = _ppo_inputs()
    adv = t([1.0, -2.0])
    a, _ = ppo_clip_loss(logp, old, adv, PPO_MASK, agg="seq-mean-token-mean")
    b, _ = ppo_clip_loss(logp, old, adv[:, None].expand(2, 5), PPO_MASK, agg="seq-mean-token-mean")
    # seq-mean-token-mean: -((1.1 + 1.2 + 0.5) / 3 + (-1.8 - 1.6 - 2.6) / 3) / 2
    close(a, -((2.8 / 3) + (-6.0 / 3)) / 2)
    close(a, b)


def test_ppo_off_mask_nan_does_not_leak():
    logp, old = _ppo_inputs()
    old = old.clone()
    old[:, 0] = nan
    loss, _ = ppo_clip_loss(logp, old, t([1.0, -2.0]), PPO_MASK)
    close(loss, 3.2 / 6)


def test_grpo_equal_rewards_give_zero_advantage_loss_and_gradient():
    logp, old = _ppo_inputs()
    adv = group_advantages(t([0.7, 0.7]), torch.tensor([0, 0]))
    close(adv, [0.0, 0.0])
    loss, _ = grpo_loss(logp, old, adv, PPO_MASK)
    loss.backward()
    close(loss, 0.0)
    close(logp.grad, torch.zeros(2, 5))


def test_grpo_is_ppo_clip_with_group_advantages():
    logp, old = _ppo_inputs()
    adv = group_advantages(t([1.0, 0.0]), torch.tensor([0, 0]))  # mean 0.5, std 0.5 -> +-1
    close(adv, [1.0, -1.0], tol=1e-5)
    loss, _ = grpo_loss(logp, old, adv, PPO_MASK)
    # row 0 as in the PPO test: 1.1 + 1.2 + 0.5; row 1, A = -1: r=0.9 -> -0.9,
    # r=0.7 -> min(-0.7, -0.8) = -0.8, r=1.3 -> min(-1.3, -1.2) = -1.3
    close(loss, -(2.8 - 0.9 - 0.8 - 1.3) / 6, tol=1e-5)
    with pytest.raises(ValueError, match="one advantage per sequence"):
        grpo_loss(logp, old, adv[:, None].expand(2, 5), PPO_MASK)


# -- TOPR -----------------------------------------------------------------------------


def test_topr_positive_is_weighted_nll_negative_uses_a_detached_truncated_ratio():
    mask = m([[F, T_, T_, F, F], [F, T_, T_, T_, F], [F, T_, F, F, F]])
    logp = t([[0, -0.5, -1.0, 0, 0], [0, -1.0, -2.0, -0.5, 0], [0, -1.0, 0, 0, 0]])
    mu = t([[0, -3.0, -3.0, 0, 0], [0, -0.5, -2.0, -0.5, 0], [0, -2.0, 0, 0, 0]])
    logp.requires_grad_(True)
    rewards = t([2.0, -1.0, -1.0])
    loss, stats = topr_loss(logp, mu, rewards, mask)
    # row 0, R = 2 > 0: weight 2, whatever pi/mu is.
    # row 1, R = -1: pi(y)/mu(y) = exp(-0.5 + 0 + 0) -> weight -exp(-0.5)
    # row 2, R = -1: pi(y)/mu(y) = exp(1) > 1, truncated to 1 -> weight -1
    w1 = -math.exp(-0.5)
    total = 2 * (-0.5 - 1.0) + w1 * (-1.0 - 2.0 - 0.5) + (-1) * (-1.0)
    close(loss, -total / 6)
    assert stats["negative_fraction"] == pytest.approx(2 / 3)
    loss.backward()
    # The ratio is detached: each token's gradient is just -weight / N.
    expected = t(
        [[0, -2 / 6, -2 / 6, 0, 0], [0, -w1 / 6, -w1 / 6, -w1 / 6, 0], [0, 1 / 6, 0, 0, 0]]
    )
    close(logp.grad, expected)


# -- IPA pieces -----------------------------------------------------------------------


def test_chunk_returns_discount_from_the_end_of_the_trajectory():
    rewards = t([1.0, -2.0])
    num_chunks = torch.tensor([3, 2])
    # row 1 is the second segment of its trajectory: it only holds chunk 1 (the last of K=2)
    index = torch.tensor([[-1, 0, 0, 1, 2], [-1, -1, 1, 1, -1]])
    # gamma = 0.5: chunk k gets 0.5 ** (K - 1 - k) * R
    expected = t([[0, 0.25, 0.25, 0.5, 1.0], [0, 0, -2.0, -2.0, 0]])
    close(chunk_returns(rewards, index, num_chunks, gamma=0.5), expected)


def test_chunk_mean_averages_over_the_masked_tokens_of_each_chunk():
    values = t([[9, 1, 3, 5, 7], [1, 2, 4, 9, 5]])
    index = torch.tensor([[-1, 0, 0, 1, 1], [-1, 2, 2, 2, -1]])
    mask = m([[F, T_, T_, T_, T_], [F, T_, T_, F, F]])  # row 1: the 9 is masked out
    values.requires_grad_(True)
    out = chunk_mean(values, index, mask)
    # row 0: chunk 0 = (1 + 3) / 2, chunk 1 = (5 + 7) / 2; row 1: chunk 2 = (2 + 4) / 2
    close(out, [[0, 2, 2, 6, 6], [0, 3, 3, 0, 0]])
    out.sum().backward()
    # Each masked token feeds n outputs of its n-token chunk with weight 1/n: gradient 1.
    close(values.grad, mask.float())


def test_chunk_mean_is_exact_for_long_bfloat16_chunks():
    # One chunk of 301 tokens: 256 ones, then 45 zeros. Accumulated in bfloat16 both the
    # sum and the count stop growing at 256 and the mean would come out as 1.
    values = torch.tensor([[0.0] + [1.0] * 256 + [0.0] * 45], dtype=torch.bfloat16)
    index = torch.tensor([[-1] + [0] * 301])
    mask = index >= 0
    close(chunk_mean(values, index, mask)[0, 1:], torch.full((301,), 256 / 301))
    close(aggregate(values, mask), 256 / 301)


def test_chunk_ratio_is_exp_of_the_chunk_mean_log_ratio():
    old = torch.zeros(2, 5)
    logp = t([[0, 0.2, 0.4, -1.0, 0], [0, 0.3, 0, 0, 0]])
    index = torch.tensor([[-1, 0, 0, 1, -1], [-1, 0, -1, -1, -1]])
    mask = m([[F, T_, T_, T_, F], [F, T_, F, F, F]])
    # row 0: chunk 0 mean (0.2 + 0.4) / 2 = 0.3, chunk 1 = -1; row 1: chunk 0 = 0.3; 1 elsewhere
    e = math.exp
    close(
        chunk_ratio(logp, old, index, mask), [[1, e(0.3), e(0.3), e(-1), 1], [1, e(0.3), 1, 1, 1]]
    )


def test_mismatch_mask_drops_chunks_whose_mean_ratio_exceeds_H():
    mu = torch.zeros(2, 5)
    old = t([[0, 2.0, 1.0, 1.7, 0], [0, 0, 0, 0, 0]])
    index = torch.tensor([[-1, 0, 0, 1, -1], [-1, 0, 0, 0, 0]])
    mask = m([[F, T_, T_, T_, F], [F, T_, T_, T_, T_]])
    # chunk 0 of row 0: exp((2 + 1) / 2) = 4.48 <= 5, kept; chunk 1: exp(1.7) = 5.47 > 5, dropped
    keep = mismatch_mask(old, mu, index, mask, H=5.0)
    assert keep.tolist() == [[F, T_, T_, F, F], [F, T_, T_, T_, T_]]
    assert mismatch_mask(old, mu, index, mask, H=6.0).tolist() == mask.tolist()


def _ipa_inputs():
    # row 0: R = +1, K = 2; row 1: R = -1, K = 3 (both start with one prompt token)
    rewards = t([1.0, -1.0])
    num_chunks = torch.tensor([2, 3])
    index = torch.tensor([[-1, 0, 0, 1, 1], [-1, 0, 1, 1, 2]])
    mask = m([[F, T_, T_, T_, T_], [F, T_, T_, T_, T_]])
    old = torch.full((2, 5), -1.0)
    # row 0 chunk 1: old - mu = 2 -> exp(2) = 7.39 > H = 5, dropped
    mu = t([[0, -1, -1, -3, -3], [-1, -1, -1, -1, -1]])
    # logp - old: row 0 chunk 0 = -1 (ignored: positive row); row 1 chunk 0 = +0.5 (rho 1.65,
    # clipped to 1), chunk 1 = (-0.2, -0.6), mean -0.4 (rho = exp(-0.4)), chunk 2 = 0 (rho 1)
    logp = t([[nan, -2, -2, -1, -1], [nan, -0.5, -1.2, -1.6, -1.0]]).requires_grad_(True)
    return logp, old, mu, rewards, index, num_chunks, mask


def test_ipa_loss_and_gradient_by_hand():
    logp, old, mu, rewards, index, num_chunks, mask = _ipa_inputs()
    loss, stats = ipa_loss(logp, old, mu, rewards, index, num_chunks, mask, gamma=0.5, H=5.0)
    rho1 = math.exp(-0.4)
    # coefficients G_k * w_k * keep_k per token (gamma = 0.5):
    #   row 0: chunk 0 G = 0.5 * 1, w = 1 (R > 0); chunk 1 dropped -> 0
    #   row 1: chunk 0 G = 0.25 * -1, w = clip(1.65) = 1; chunk 1 G = 0.5 * -1, w = rho1;
    #          chunk 2 G = -1, w = 1
    coef = [[0, 0.5, 0.5, 0, 0], [0, -0.25, -0.5 * rho1, -0.5 * rho1, -1.0]]
    weighted = (
        0.5 * -2
        + 0.5 * -2  # row 0
        + -0.25 * -0.5
        + -0.5 * rho1 * -1.2
        + -0.5 * rho1 * -1.6
        + -1.0 * -1.0  # row 1
    )
    close(loss, -weighted / 8)  # token-mean over the 8 masked tokens
    loss.backward()
    # Gradient -coef / 8: zero on the dropped chunk, and the ratio is not differentiated
    # (detached), so chunk 1 of row 1 gets exactly 0.5 * rho1 / 8.
    close(logp.grad, -t(coef) / 8)
    assert stats["mismatch_dropped_chunks"] == 1
    assert stats["chunks"] == 5
    assert stats["mismatch_max"] == pytest.approx(math.exp(2), rel=1e-5)
    assert stats["negative_fraction"] == 0.5


def test_ipa_seq_mean_and_the_clipped_ratio_of_a_negative_trajectory():
    logp, old, mu, rewards, index, num_chunks, mask = _ipa_inputs()
    loss, _ = ipa_loss(
        logp, old, mu, rewards, index, num_chunks, mask, gamma=0.5, agg="seq-mean-token-mean"
    )
    rho1 = math.exp(-0.4)
    row0 = (0.5 * -2 + 0.5 * -2) / 4
    row1 = (-0.25 * -0.5 + -0.5 * rho1 * (-1.2 - 1.6) + 1.0) / 4
    close(loss, -(row0 + row1) / 2)

    # Make row 1 positive: the same chunks now get the plain return weights (no ratio).
    loss_pos, _ = ipa_loss(logp, old, mu, t([1.0, 1.0]), index, num_chunks, mask, gamma=0.5)
    weighted = 0.5 * -4 + 0.25 * -0.5 + 0.5 * (-1.2 - 1.6) + 1.0 * -1.0
    close(loss_pos, -weighted / 8)


def test_ipa_on_fresh_samples_is_return_weighted_nll():
    # pi == pi_old == mu: every ratio is 1 and no chunk is dropped.
    lp = t([[0, -1, -2, -3, 0], [0, -1, -1, -1, -1]])
    index = torch.tensor([[-1, 0, 1, 1, -1], [-1, 0, 0, 0, 0]])
    mask = index >= 0
    loss, stats = ipa_loss(lp, lp, lp, t([-1.0, 2.0]), index, torch.tensor([2, 1]), mask)
    # row 0: G = 0.95 * -1 on chunk 0, -1 on chunk 1; row 1: G = 2 on its single chunk
    weighted = -0.95 * -1 + -1 * (-2 - 3) + 2 * -4
    close(loss, -weighted / 7)
    assert stats["mismatch_dropped_chunks"] == 0
    assert stats["ratio_mean"] == pytest.approx(1.0)


# -- KL, SFT, mismatch statistics -----------------------------------------------------


def test_kl_estimators():
    logp = t([[nan, -1.0, -2.0, 0, 0]])
    ref = t([[0, -1.5, -1.0, 0, 0]])
    mask = m([[F, T_, T_, F, F]])
    # log(pi / ref) = (0.5, -1)
    close(kl_penalty(logp, ref, mask, kind="k1"), [[0, 0.5, -1.0, 0, 0]])
    close(kl_penalty(logp, ref, mask, kind="k2"), [[0, 0.125, 0.5, 0, 0]])
    # k3 = exp(ref - logp) - (ref - logp) - 1
    k3 = [math.exp(-0.5) + 0.5 - 1, math.exp(1.0) - 1.0 - 1]
    close(kl_penalty(logp, ref, mask), [[0, k3[0], k3[1], 0, 0]])
    with pytest.raises(ValueError, match="unknown KL"):
        kl_penalty(logp, ref, mask, kind="k4")


def test_k3_gradient_pushes_towards_the_reference():
    logp = t([[0.0, -1.0]]).requires_grad_(True)
    ref = t([[0.0, -2.0]])
    kl_penalty(logp, ref, m([[F, T_]])).sum().backward()
    # d/dlogp [exp(ref - logp) + logp - ref - 1] = 1 - exp(ref - logp) = 1 - exp(-1) > 0
    close(logp.grad, [[0.0, 1 - math.exp(-1.0)]])


def test_sft_loss_masks_out_failed_chunks():
    logp = t([[nan, -1.0, -2.0, -4.0, 0], [0, 0, -0.5, -1.5, -3.0]]).requires_grad_(True)
    mask = m([[F, T_, T_, T_, F], [F, F, T_, T_, T_]])
    failed = m([[F, F, F, T_, F], [F, F, F, F, F]])
    loss, stats = sft_loss(logp, mask, failed)
    # kept tokens: -1, -2 (row 0) and -0.5, -1.5, -3 (row 1): NLL = 8 / 5
    close(loss, 8 / 5)
    assert stats["tokens"] == 5 and stats["failed_tokens_masked"] == 1
    loss.backward()
    assert logp.grad[0, 3] == 0  # the failed chunk's token is not trained on
    close(logp.grad[1, 2:], [-0.2, -0.2, -0.2])
    seq, _ = sft_loss(logp, mask, failed, agg="seq-mean-token-mean")
    close(seq, (3 / 2 + 5 / 3) / 2)


def test_mismatch_stats():
    old = t([[0, -1.0, -2.0, 0, 0], [0, -1.0, 0, 0, 0]])
    mu = t([[0, -1.5, -1.0, 0, 0], [0, -1.0, 0, 0, 0]])
    mask = m([[F, T_, T_, F, F], [F, T_, F, F, F]])
    stats = mismatch_stats(old, mu, mask)
    # old - mu over the mask: 0.5, -1, 0
    assert stats["tokens"] == 3
    assert stats["logprob_abs_diff_mean"] == pytest.approx(0.5)
    assert stats["logprob_abs_diff_max"] == pytest.approx(1.0)
    assert stats["ratio_mean"] == pytest.approx((math.exp(0.5) + math.exp(-1) + 1) / 3)
    assert stats["ratio_max"] == pytest.approx(math.exp(0.5))
    kl = ((math.exp(0.5) - 1 - 0.5) + (math.exp(-1) - 1 + 1) + 0) / 3
    assert stats["kl_k3"] == pytest.approx(kl)
    assert mismatch_stats(old, mu, torch.zeros_like(mask)) == {"tokens": 0.0}


def test_ipa_with_a_known_chunk_bound_matches_the_one_read_from_the_tensor():
    """``max_chunks`` (counted on the host by the trainer) changes nothing but the sync."""
    gen = torch.Generator().manual_seed(0)
    logp = -torch.rand(3, 8, generator=gen)
    old = logp + 0.1 * torch.randn(3, 8, generator=gen)
    mu = old - torch.tensor([[0.0] * 4 + [2.0] * 4] * 3)
    chunk_index = torch.tensor([[-1, 0, 0, -1, 1, 1, 2, 2]] * 3)
    mask = chunk_index >= 0
    args = (logp, old, mu, torch.tensor([1.0, -1.0, 0.0]), chunk_index, torch.tensor([3, 3, 3]))
    loss, stats = ipa_loss(*args, mask)
    loss_k, stats_k = ipa_loss(*args, mask, max_chunks=5)  # any bound >= 3
    torch.testing.assert_close(loss_k, loss)
    assert stats_k.keys() == stats.keys()
    for key, value in stats.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, key
        torch.testing.assert_close(stats_k[key], value)
    assert stats["mismatch_dropped_chunks"] == 6  # chunks 1 and 2 of every row: e^2 > H


def test_mismatch_sums_merge_to_the_whole_batch_stats():
    gen = torch.Generator().manual_seed(0)
    old, mu = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    mask = torch.rand(4, 6, generator=gen) > 0.4
    whole = mismatch_stats(old, mu, mask)
    parts = [mismatch_sums(old[i : i + 2], mu[i : i + 2], mask[i : i + 2]) for i in (0, 2)]
    merged = merge_mismatch(*parts)
    split = finish_mismatch({k: float(v) for k, v in merged.items()})
    assert split.keys() == whole.keys()
    for key, value in whole.items():
        assert split[key] == pytest.approx(value, rel=1e-6), key
