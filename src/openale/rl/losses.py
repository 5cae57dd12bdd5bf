"""RL losses as small pure functions of packed per-token tensors.

Every per-token tensor is ``[B, T]``, aligned with ``PackedBatch.input_ids``:
``logp[b, t]`` is the log-prob of token ``input_ids[b, t]`` (predicted from
position t-1). ``mask`` is the loss mask (generated tokens, possibly narrowed
further); nothing off the mask contributes, even if it is NaN or -inf there.
Three log-probs appear: behaviour ``mu`` (recorded at generation), old
``pi_old`` (recomputed by the trainer before the update, no grad) and current
``pi_theta`` (``logp``, with grad). Every ``*_loss`` returns ``(loss, stats)``;
the stats are 0-d tensors on the loss's device, so computing them never waits
for the accelerator (the trainer reads a whole step's stats in one transfer).

Aggregation (``aggregate``): "token-mean" averages over all masked tokens of
the batch; "seq-mean-token-mean" averages each row over its tokens, then the
rows. With gradient accumulation over micro-batches, scale each micro-batch's
loss by its share of the tokens (or rows) so the sum equals the full-batch mean.

- GRPO: the advantage of a sequence is its reward normalised within its group
  (same task, same round): ``A = (R - mean_g) / (std_g + eps)`` (population
  std; a group whose rewards are equal gets A = 0). Every token of the
  sequence shares A, and the PPO-clip objective below is applied per token.
- PPO-clip: ``r_t = exp(logp - old_logp)``;
  ``loss = -agg(min(r_t * A, clip(r_t, 1-eps, 1+eps) * A))``. Outside the
  trust region (``r > 1+eps`` with A > 0, ``r < 1-eps`` with A < 0) the
  clipped term is the minimum and is constant, so the gradient is zero.
- TOPR (tapered off-policy REINFORCE): positive-reward sequences get the plain
  reward-weighted log-likelihood ``R * logp``; non-positive ones are weighted
  by the truncated sequence ratio ``clip(pi(y)/mu(y), 0, 1)``, detached, so
  pushing down an unlikely sample cannot blow up.
- IPA (chunk-level): chunk k of a trajectory with K chunks gets the return
  ``G_k = gamma**(K-1-k) * R`` (the last chunk gets R). Chunks of a
  non-positive trajectory are weighted by the chunk ratio
  ``rho_k = exp(mean_{t in k}(logp - old_logp))`` clipped to [0, 1] and
  detached; positive trajectories get the plain return-weighted
  log-likelihood. A chunk is dropped (weight 0) when the generator and the
  trainer disagree on it: ``exp(mean_{t in k}(old_logp - mu)) > H``.
  ``loss = -agg(G_k * w_k * keep_k * logp)``.
- KL to a reference policy, per token, estimated from samples of pi:
  k1 = ``logp - ref``, k2 = ``(logp - ref)**2 / 2``,
  k3 = ``exp(ref - logp) - (ref - logp) - 1`` (unbiased and non-negative).
- SFT with error masking: NLL ``-agg(logp)`` over generated tokens of chunks
  whose tool call did not fail.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

Algorithm = Literal["ipa", "grpo", "ppo", "topr"]  # the RL losses below, by name
Agg = Literal["token-mean", "seq-mean-token-mean"]
KLKind = Literal["k1", "k2", "k3"]


def _masked(values: Tensor, mask: Tensor) -> Tensor:
    # where(), not multiplication: values off the mask may be NaN or -inf.
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))


def aggregate(values: Tensor, mask: Tensor, mode: Agg = "token-mean") -> Tensor:
    """A scalar mean of ``values`` [B, T] over ``mask`` [B, T]; 0 when the mask is empty."""
    mask = mask.bool()
    v = _masked(values.float(), mask)  # sums in float32 even when values are bfloat16
    if mode == "token-mean":
        return v.sum() / mask.sum().clamp(min=1)
    if mode == "seq-mean-token-mean":
        counts = mask.sum(-1)  # [B]
        per_row = v.sum(-1) / counts.clamp(min=1)  # [B]
        rows = (counts > 0).sum().clamp(min=1)  # rows without tokens do not count
        return per_row.sum() / rows
    raise ValueError(f"unknown aggregation {mode!r}: use 'token-mean' or 'seq-mean-token-mean'")


def group_advantages(
    rewards: Tensor, group_index: Tensor, *, normalize_std: bool = True, eps: float = 1e-6
) -> Tensor:
    """GRPO advantages [B]: reward minus its group's mean, over the group's std if asked."""
    rewards = rewards.float()
    n_groups = int(group_index.max()) + 1 if group_index.numel() else 0
    counts = torch.bincount(group_index, minlength=n_groups).to(rewards)  # [G]
    zeros = torch.zeros(n_groups, dtype=rewards.dtype, device=rewards.device)
    mean = zeros.index_add(0, group_index, rewards) / counts
    centred = rewards - mean[group_index]  # [B]
    if not normalize_std:
        return centred
    var = zeros.index_add(0, group_index, centred**2)
    std = (var / counts).sqrt()  # [G], population std
    return centred / (std[group_index] + eps)


def _chunk_sums(
    values: Tensor, chunk_index: Tensor, mask: Tensor, max_chunks: int | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Per (row, chunk) sums and token counts [B, K], and each token's flat key [B, T].

    ``max_chunks``: a bound on ``chunk_index + 1`` the caller already knows (the
    trainer counts it while packing on the host); without it K is read from
    ``chunk_index``, which waits for the device. Accumulated in float32: a
    bfloat16 count is inexact past 256 tokens.
    """
    values = values.float()
    b, _ = values.shape
    keep = mask.bool() & (chunk_index >= 0)
    if max_chunks is None:
        max_chunks = int(chunk_index.max()) + 1 if chunk_index.numel() else 0
    k = max(max_chunks, 1)
    rows = torch.arange(b, device=values.device)[:, None]  # [B, 1]
    key = (rows * k + chunk_index.clamp(min=0)).reshape(-1)  # [B*T]
    v = _masked(values, keep).reshape(-1)
    sums = torch.zeros(b * k, dtype=values.dtype, device=values.device).index_add(0, key, v)
    counts = torch.zeros(b * k, dtype=values.dtype, device=values.device).index_add(
        0, key, keep.reshape(-1).to(values.dtype)
    )
    return sums.view(b, k), counts.view(b, k), key.view(values.shape)


def chunk_mean(
    values: Tensor, chunk_index: Tensor, mask: Tensor, max_chunks: int | None = None
) -> Tensor:
    """[B, T]: each masked token gets the mean of ``values`` over its chunk's masked tokens.

    Tokens off the mask (or with no chunk) get 0. Differentiable in ``values``.
    ``max_chunks``: see ``_chunk_sums``.
    """
    sums, counts, key = _chunk_sums(values, chunk_index, mask, max_chunks)
    means = (sums / counts.clamp(min=1)).reshape(-1)  # [B*K]
    keep = mask.bool() & (chunk_index >= 0)
    return _masked(means[key], keep)


def ppo_clip_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps: float = 0.2,
    agg: Agg = "token-mean",
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO-clip surrogate; ``advantages`` per sequence [B] or per token [B, T]."""
    mask = mask.bool()
    adv = advantages[:, None] if advantages.dim() == 1 else advantages  # [B, 1] or [B, T]
    log_ratio = _masked(logp - old_logp, mask)  # [B, T]; 0 off the mask keeps exp() finite
    ratio = log_ratio.exp()
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv
    loss = -aggregate(torch.minimum(unclipped, clipped), mask, agg)
    with torch.no_grad():
        n = mask.sum().clamp(min=1)
        clipped_frac = ((clipped < unclipped) & mask).sum() / n
        stats = {
            "loss": loss.detach(),
            "ratio_mean": _masked(ratio, mask).sum() / n,
            "clip_frac": clipped_frac,
            "advantage_mean": _masked(adv.expand_as(mask), mask).sum() / n,
            "tokens": mask.sum().float(),
        }
    return loss, stats


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps: float = 0.2,
    agg: Agg = "token-mean",
) -> tuple[Tensor, dict[str, Tensor]]:
    """GRPO: PPO-clip with one group-normalised advantage per sequence (``advantages`` [B])."""
    if advantages.dim() != 1:
        shape = tuple(advantages.shape)
        raise ValueError(f"GRPO takes one advantage per sequence [B], got {shape}")
    return ppo_clip_loss(logp, old_logp, advantages, mask, clip_eps=clip_eps, agg=agg)


def topr_loss(
    logp: Tensor,
    behaviour_logp: Tensor,
    rewards: Tensor,
    mask: Tensor,
    *,
    agg: Agg = "token-mean",
) -> tuple[Tensor, dict[str, Tensor]]:
    """TOPR: ``R * logp`` for R > 0; ``clip(pi(y)/mu(y), 0, 1).detach() * R * logp`` otherwise."""
    mask = mask.bool()
    rewards = rewards.float()
    # Sequence ratio pi(y)/mu(y) = exp(sum_t (logp - mu)), clipped to <= 1 in log space.
    seq_log_ratio = _masked(logp - behaviour_logp, mask).sum(-1).detach()  # [B]
    truncated = seq_log_ratio.clamp(max=0.0).exp()  # [B], clip(ratio, 0, 1)
    weight = torch.where(rewards > 0, torch.ones_like(rewards), truncated) * rewards  # [B]
    loss = -aggregate(weight[:, None] * logp, mask, agg)
    with torch.no_grad():
        negative = rewards <= 0
        n_negative = negative.sum()
        truncated_mean = _masked(truncated, negative).sum() / n_negative.clamp(min=1)
        stats = {
            "loss": loss.detach(),
            "negative_fraction": negative.float().mean(),
            "truncated_ratio_mean": torch.where(n_negative > 0, truncated_mean, 1.0),
            "tokens": mask.sum().float(),
        }
    return loss, stats


def chunk_returns(
    rewards: Tensor, chunk_index: Tensor, num_chunks: Tensor, gamma: float = 0.95
) -> Tensor:
    """[B, T]: ``gamma**(K-1-k) * R`` on tokens of chunk k (the last chunk gets R), 0 elsewhere."""
    steps_to_end = (num_chunks[:, None] - 1 - chunk_index).clamp(min=0).float()  # [B, T]
    g = rewards.float()[:, None] * gamma**steps_to_end
    return torch.where(chunk_index >= 0, g, torch.zeros_like(g))


def chunk_ratio(
    logp: Tensor,
    old_logp: Tensor,
    chunk_index: Tensor,
    mask: Tensor,
    max_chunks: int | None = None,
) -> Tensor:
    """[B, T]: ``exp(mean over the chunk of (logp - old_logp))`` per token; 1 off the mask."""
    return chunk_mean(logp - old_logp, chunk_index, mask, max_chunks).exp()


def mismatch_mask(
    old_logp: Tensor,
    behaviour_logp: Tensor,
    chunk_index: Tensor,
    mask: Tensor,
    H: float = 5.0,
    max_chunks: int | None = None,
) -> Tensor:
    """[B, T] bool: masked tokens of chunks kept, i.e. ``exp(chunk mean(old - mu)) <= H``."""
    mean = chunk_mean(old_logp - behaviour_logp, chunk_index, mask, max_chunks)  # [B, T]
    return mask.bool() & (chunk_index >= 0) & ~(mean > math.log(H))


def ipa_loss(
    logp: Tensor,
    old_logp: Tensor,
    behaviour_logp: Tensor,
    rewards: Tensor,
    chunk_index: Tensor,
    num_chunks: Tensor,
    mask: Tensor,
    *,
    gamma: float = 0.95,
    H: float = 5.0,
    agg: Agg = "token-mean",
    max_chunks: int | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """IPA: ``-agg(G_k * w_k * keep_k * logp)`` with chunk returns, ratios and mismatch mask.

    ``w_k = clip(rho_k, 0, 1).detach()`` on trajectories with R <= 0, else 1.
    Dropped chunks weigh 0 but stay in the aggregation's denominator (``mask``),
    so scaling micro-batches by their loss-mask token counts stays exact.
    ``max_chunks``: a known bound on ``chunk_index + 1`` (spares a device sync).
    """
    mask = mask.bool()
    returns = chunk_returns(rewards, chunk_index, num_chunks, gamma)  # [B, T]
    rho = chunk_ratio(logp, old_logp, chunk_index, mask, max_chunks).detach()  # [B, T]
    negative = (rewards <= 0)[:, None]  # [B, 1]
    weight = torch.where(negative, rho.clamp(0.0, 1.0), torch.ones_like(rho))  # [B, T]
    keep = mismatch_mask(old_logp, behaviour_logp, chunk_index, mask, H, max_chunks)  # [B, T]
    coef = returns * weight * keep  # [B, T], no grad
    loss = -aggregate(coef * logp, mask, agg)
    with torch.no_grad():
        diff = _masked(old_logp - behaviour_logp, mask)
        sums, counts, _ = _chunk_sums(diff, chunk_index, mask, max_chunks)
        present = counts > 0  # [B, K]; reductions over it, not indexing: no device sync
        n_chunks = present.sum()
        per_chunk = n_chunks.clamp(min=1)
        chunk_mismatch = (sums / counts.clamp(min=1)).exp()  # [B, K]
        ratio_sums, _, _ = _chunk_sums(logp - old_logp, chunk_index, mask, max_chunks)
        chunk_rho = (ratio_sums / counts.clamp(min=1)).exp()  # [B, K]
        dropped = ((chunk_mismatch > H) & present).sum()
        any_chunk = n_chunks > 0
        stats = {
            "loss": loss.detach(),
            "chunks": n_chunks.float(),
            "mismatch_dropped_chunks": dropped.float(),
            "mismatch_dropped_frac": dropped / per_chunk,
            "mismatch_mean": torch.where(
                any_chunk, _masked(chunk_mismatch, present).sum() / per_chunk, 1.0
            ),
            "mismatch_max": torch.where(
                any_chunk, chunk_mismatch.masked_fill(~present, -math.inf).max(), 1.0
            ),
            "ratio_mean": torch.where(
                any_chunk, _masked(chunk_rho, present).sum() / per_chunk, 1.0
            ),
            "return_mean": _masked(returns, mask).sum() / mask.sum().clamp(min=1),
            "negative_fraction": negative.float().mean(),
            "tokens": mask.sum().float(),
        }
    return loss, stats


def kl_penalty(logp: Tensor, ref_logp: Tensor, mask: Tensor, *, kind: KLKind = "k3") -> Tensor:
    """Per-token KL(pi || ref) estimate [B, T] from tokens sampled by pi; 0 off the mask."""
    diff = logp - ref_logp  # log(pi / ref)
    if kind == "k1":
        kl = diff
    elif kind == "k2":
        kl = 0.5 * diff**2
    elif kind == "k3":
        kl = torch.expm1(-diff) + diff  # exp(ref - logp) - 1 - (ref - logp)
    else:
        raise ValueError(f"unknown KL estimator {kind!r}: use 'k1', 'k2' or 'k3'")
    return _masked(kl, mask.bool())


def sft_loss(
    logp: Tensor, mask: Tensor, token_failed: Tensor, *, agg: Agg = "token-mean"
) -> tuple[Tensor, dict[str, Tensor]]:
    """Error-masked NLL: ``-agg(logp)`` over masked tokens of chunks whose tool call succeeded."""
    mask = mask.bool()
    kept = mask & ~token_failed.bool()
    loss = -aggregate(logp, kept, agg)
    with torch.no_grad():
        stats = {
            "loss": loss.detach(),
            "tokens": kept.sum().float(),
            "failed_tokens_masked": (mask & token_failed.bool()).sum().float(),
        }
    return loss, stats


# How ``mismatch_sums`` of two micro-batches combine: the rest are sums.
_MISMATCH_MAX = {"logprob_abs_diff_max", "ratio_max"}
_MISMATCH_MIN = {"ratio_min"}


def mismatch_sums(old_logp: Tensor, behaviour_logp: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """The mergeable parts of ``mismatch_stats`` as 0-d device tensors (no device sync):
    token count, sums, min and max over masked tokens. ``merge_mismatch`` adds two up."""
    mask = mask.bool()
    with torch.no_grad():
        diff = (old_logp - behaviour_logp).float()
        ratio = _masked(diff, mask).exp()
        abs_diff = _masked(diff.abs(), mask)
        return {
            "tokens": mask.sum().float(),
            "logprob_abs_diff_sum": abs_diff.sum(),
            "logprob_abs_diff_max": abs_diff.max() if mask.numel() else diff.new_zeros(()),
            "ratio_sum": _masked(ratio, mask).sum(),
            "ratio_min": ratio.masked_fill(~mask, math.inf).min()
            if mask.numel()
            else diff.new_full((), math.inf),
            "ratio_max": ratio.masked_fill(~mask, -math.inf).max()
            if mask.numel()
            else diff.new_full((), -math.inf),
            # KL(mu || pi_old) from tokens sampled by mu: r - 1 - log r, r = pi_old / mu.
            "kl_k3_sum": _masked(torch.expm1(diff) - diff, mask).sum(),
        }


def merge_mismatch(a: dict[str, Tensor], b: dict[str, Tensor]) -> dict[str, Tensor]:
    """``mismatch_sums`` of the union of two token sets."""
    out = {}
    for k, v in a.items():
        if k in _MISMATCH_MAX:
            out[k] = torch.maximum(v, b[k])
        elif k in _MISMATCH_MIN:
            out[k] = torch.minimum(v, b[k])
        else:
            out[k] = v + b[k]
    return out


def finish_mismatch(sums: dict[str, float]) -> dict[str, float]:
    """``mismatch_stats`` from ``mismatch_sums`` read back as numbers."""
    n = sums["tokens"]
    if n == 0:
        return {"tokens": 0.0}
    return {
        "tokens": n,
        "logprob_abs_diff_mean": sums["logprob_abs_diff_sum"] / n,
        "logprob_abs_diff_max": sums["logprob_abs_diff_max"],
        "ratio_mean": sums["ratio_sum"] / n,
        "ratio_min": sums["ratio_min"],
        "ratio_max": sums["ratio_max"],
        "kl_k3": sums["kl_k3_sum"] / n,
    }


def mismatch_stats(old_logp: Tensor, behaviour_logp: Tensor, mask: Tensor) -> dict[str, float]:
    """How far the trainer's log-probs are from the generator's, over masked tokens."""
    sums = mismatch_sums(old_logp, behaviour_logp, mask)
    values = torch.stack(list(sums.values())).tolist()  # one transfer from the device
    return finish_mismatch(dict(zip(sums, values, strict=True)))
