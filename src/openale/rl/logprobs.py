"""Per-token log-probs of a causal LM, tempered as the behaviour policy sampled, chunked.

``token_logprobs`` scores ``input_ids[:, t]`` under ``log_softmax(logits[:, t-1] / T_t)``
where ``T_t`` is the temperature the behaviour log-prob mu of that token was
taken at (``PackedBatch.temperature``). Top-p is not applied: like verl and
OpenRLHF, the trainer divides the logits by the temperature and does not
renormalise over the nucleus; ``LocalPolicy`` records mu the same way, so
pi_old / mu is 1 for a fresh sample whatever the top-p.

The log-softmax over the vocabulary is never materialised for the whole batch:
``TemperedLogprob`` takes the model's logits (bf16 under autocast) and works
through them a few thousand rows at a time, in float32. When a gradient is
wanted it computes it in the same pass -- ``d logp / d logits = (onehot -
softmax) / T`` does not depend on the upstream gradient, only its per-row
scale does -- and keeps it, in the logits' dtype, in the logits' own storage
(``token_logprobs`` owns them, nothing else reads them). The backward pass is
then one multiplication. A plain ``log_softmax`` keeps a float32 ``[B, T, V]``
copy alive for backward and writes several more.

The model runs without an attention mask: rows are right-padded and attention
is causal, so no real token attends to padding (it only follows) and positions
count from 0 either way; the log-probs of real tokens are unchanged and SDPA
takes its causal (flash) path instead of a masked one. Padding positions get
log-prob 0.
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
    ``logits``' dtype; its ``(onehot - softmax) / temp`` part is computed in the
    forward pass. ``overwrite=True`` stores that part in ``logits``' storage
    (the caller must not read the logits afterwards; they cost no extra memory),
    and the graph can then be backpropagated through once.
    """

    @staticmethod
    def forward(
        ctx: Any,
        logits: torch.Tensor,
        targets: torch.Tensor,
        temp: torch.Tensor,
        overwrite: bool = False,
    ):
        n, v = logits.shape
        rows = max(1, CHUNK_ELEMENTS // max(v, 1))
        picked = torch.empty(n, dtype=torch.float32, device=logits.device)
        inv = temp.float().reciprocal()
        grad_part = None
        if ctx.needs_input_grad[0]:
            # detach(): written in place below, outside autograd's view of the graph
            grad_part = logits.detach() if overwrite else torch.empty_like(logits)
        for s in range(0, n, rows):
            e = slice(s, s + rows)
            t = targets[e, None]
            # bf16 * float32 -> float32 in one kernel: the upcast and the 1/T scaling fused
            logp = torch.log_softmax(logits[e] * inv[e, None], -1)  # [rows, V]
            picked[e] = logp.gather(-1, t).squeeze(-1)
            if grad_part is not None:
                chunk = grad_part[e]
                torch.mul(logp.exp_(), -inv[e, None], out=chunk)  # -softmax / T
                # The target's (1 - p) / T in float32: 1 - p cancels when p is near 1.
                target = -torch.expm1(picked[e]) * inv[e]
                chunk.scatter_(-1, t, target[:, None].to(chunk.dtype))
        ctx.overwrite = overwrite
        if grad_part is not None:
            ctx.save_for_backward(grad_part)
        return picked

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        (grad_part,) = ctx.saved_tensors
        g = grad.float()[:, None]
        if not ctx.overwrite:
            out = torch.empty_like(grad_part)
            return torch.mul(grad_part, g, out=out), None, None, None
        # In place: a second backward through the graph fails autograd's version check.
        return grad_part.mul_(g), None, None, None


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
        logits = model(input_ids=batch.input_ids).logits  # causal, right-padded: no mask
    b, t, v = logits.shape
    # Position t predicts token t+1: shift the targets, not the [B, T, V] logits (no copy).
    targets = torch.nn.functional.pad(batch.input_ids[:, 1:], (0, 1))  # [B, T]
    temp = torch.nn.functional.pad(batch.temperature[:, 1:], (0, 1), value=1.0)  # [B, T]
    picked = TemperedLogprob.apply(
        logits.reshape(b * t, v), targets.reshape(-1), temp.reshape(-1), True
    )
    logp = torch.nn.functional.pad(picked.view(b, t)[:, :-1], (1, 0))  # [B, T]
    return logp.masked_fill(~batch.attention_mask, 0.0)
