"""Per-token log-probs of a causal LM, tempered as the behaviour policy sampled, chunked.

``token_logprobs`` scores ``input_ids[:, t]`` under ``log_softmax(logits[:, t-1] / T_t)``
where ``T_t`` is the temperature the behaviour log-prob mu of that token was
taken at (``PackedBatch.temperature``). Top-p is not applied: like verl and
OpenRLHF, the trainer divides the logits by the temperature and does not
renormalise over the nucleus; ``LocalPolicy`` records mu the same way, so
pi_old / mu is 1 for a fresh sample whatever the top-p.

The log-softmax over the vocabulary is never materialised for the whole batch:
``TemperedLogprob`` takes the model's logits (bf16 under autocast) and works
through them a few thousand rows at a time, in float32, saving only the
log-normaliser per token for the backward pass. A plain ``log_softmax`` keeps a
float32 ``[B, T, V]`` copy alive for backward and writes two more.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from openale.rl.packing import PackedBatch

CHUNK_ELEMENTS = 1 << 26  # float32 elements of one chunk's temporaries (256 MiB)


class TemperedLogprob(torch.autograd.Function):
    """``log_softmax(logits / temp)[targets]`` row by row, in float32, chunked over rows.

    ``logits`` [N, V] (any float dtype), ``targets`` [N] long, ``temp`` [N] float.
    The gradient w.r.t. ``logits`` is ``(onehot - softmax) * grad / temp``, in
    ``logits``' dtype.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor, temp: torch.Tensor):
        n, v = logits.shape
        rows = max(1, CHUNK_ELEMENTS // max(v, 1))
        lse = torch.empty(n, dtype=torch.float32, device=logits.device)
        picked = torch.empty(n, dtype=torch.float32, device=logits.device)
        inv = temp.float().reciprocal()
        for s in range(0, n, rows):
            scaled = logits[s : s + rows].float() * inv[s : s + rows, None]  # [rows, V]
            lse[s : s + rows] = scaled.logsumexp(-1)
            picked[s : s + rows] = scaled.gather(-1, targets[s : s + rows, None]).squeeze(-1)
        ctx.save_for_backward(logits, targets, inv, lse)
        ctx.rows = rows
        return picked - lse

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        logits, targets, inv, lse = ctx.saved_tensors
        out = torch.empty_like(logits)
        g = grad.float()
        for s in range(0, logits.shape[0], ctx.rows):
            e = slice(s, s + ctx.rows)
            scaled = logits[e].float() * inv[e, None]
            probs = (scaled - lse[e, None]).exp_()  # softmax, [rows, V]
            gi = (g[e] * inv[e])[:, None]  # d logp / d logits carries 1/T
            chunk = probs.mul_(-gi)
            chunk.scatter_add_(-1, targets[e, None], gi)
            out[e] = chunk.to(out.dtype)
        return out, None, None


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision for forward passes: ``dtype`` matmuls over float32 master weights."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def token_logprobs(
    model: Any, batch: PackedBatch, *, compute_dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """[B, T]: log-prob of ``input_ids[:, t]`` given the tokens before it, at the token's
    temperature (0 at t=0 and on padding). Differentiable when grad is enabled."""
    with autocast(batch.input_ids.device, compute_dtype):
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    b, t, v = logits.shape
    # Position t predicts token t+1: shift the targets, not the [B, T, V] logits (no copy).
    targets = torch.nn.functional.pad(batch.input_ids[:, 1:], (0, 1))  # [B, T]
    temp = torch.nn.functional.pad(batch.temperature[:, 1:], (0, 1), value=1.0)  # [B, T]
    picked = TemperedLogprob.apply(logits.reshape(b * t, v), targets.reshape(-1), temp.reshape(-1))
    logp = torch.nn.functional.pad(picked.view(b, t)[:, :-1], (1, 0))  # [B, T]
    return logp.masked_fill(~batch.attention_mask, 0.0)
