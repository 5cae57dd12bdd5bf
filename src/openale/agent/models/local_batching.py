"""The batching worker of a local policy: concurrent requests decoded as one batch.

Many agents call the policy from their own threads at once. One worker thread
gathers the requests that arrive within a short window and decodes them as
one left-padded batch, with its own loop over ``model(..., past_key_values)``
so the log-prob of every sampled token is recorded exactly.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from openale.agent.models.base import ModelError
from openale.agent.models.local_weights import PolicyWeights


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = None


@dataclass
class Generation:
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" (end of turn or a stop string) or "length"
    policy_version: int
    # The T of ``log_softmax(logits / T)`` that ``logprobs`` come from: the sampling
    # temperature, or 1 for greedy decoding and teacher forcing. A trainer scores
    # the tokens at the same T so that pi_old / mu is 1 for a fresh sample.
    logprob_temperature: float = 1.0


@dataclass
class Request:
    """One generation to decode: ``context`` ids, how to sample, when to stop."""

    context: list[int]
    sampling: Sampling
    stop: tuple[str, ...] = ()
    generator: torch.Generator | None = None
    on_text: Callable[[str], None] | None = None  # streaming: called with each new piece
    future: Future = field(default_factory=Future)
    # Filled in while decoding.
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""  # decoded so far (kept only to look for stop strings or to stream)
    streamed: int = 0  # characters already passed to on_text
    finish: str | None = None


class Batcher:
    """A worker thread that decodes queued requests in batches of up to ``max_batch``."""

    def __init__(
        self,
        weights: PolicyWeights,
        tokenizer: Any,
        *,
        eos_ids: frozenset[int],
        pad_id: int,
        max_batch: int = 8,
        batch_window_s: float = 0.02,
    ):
        self.weights = weights
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.pad_id = pad_id
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.batch_sizes: Counter[int] = Counter()  # how many requests each batch decoded
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def generate(self, request: Request) -> Generation:
        """Queue ``request`` and wait for its generation (batched with whatever is in flight)."""
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._serve, name="local-policy-batcher", daemon=True
                )
                self._worker.start()
        self._queue.put(request)
        return request.future.result()

    def close(self) -> None:
        """Stop the worker (requests already queued are answered first)."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stopping = [first], False
            deadline = time.monotonic() + self.batch_window_s
            while len(batch) < self.max_batch:
                try:
                    timeout = max(0.0, deadline - time.monotonic())
                    nxt = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self.batch_sizes[len(batch)] += 1
            try:
                results = self._decode(batch)
            except Exception as e:  # every caller learns why; the worker lives on
                for r in batch:
                    r.future.set_exception(ModelError(f"generation failed: {e}"))
            else:
                for r, g in zip(batch, results, strict=True):
                    r.future.set_result(g)
            if stopping:
                return

    @torch.inference_mode()
    def _decode(self, batch: list[Request]) -> list[Generation]:
        """Decode a batch of requests together; each row stops on its own."""
        from transformers import DynamicCache

        model = self.weights.model
        device = model.device
        n = len(batch)
        width = max(len(r.context) for r in batch)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, r in enumerate(batch):  # left padding: every row's last token is at -1
            ids[i, width - len(r.context) :] = torch.tensor(r.context)
            mask[i, width - len(r.context) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (n, width)
        with self.weights.lock:
            version = self.weights.version
            cache = DynamicCache(config=model.config)
            out = model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            active = list(batch)  # shrinks as requests finish
            last_pos = positions[:, -1]  # (active,)
            while True:
                logits = out.logits[:, -1, :].float()  # (active, vocab)
                toks, lps = sample_batch(
                    logits, [r.sampling for r in active], [r.generator for r in active]
                )
                for r, tok, lp in zip(active, toks, lps, strict=True):
                    r.tokens.append(tok)
                    r.logprobs.append(lp)
                    r.finish = self._finish_reason(r)
                step = torch.tensor([r.tokens[-1] for r in active], device=device)[:, None]
                keep = [b for b, r in enumerate(active) if r.finish is None]
                if not keep:
                    break
                if len(keep) < len(active):  # drop finished rows from the batch and the cache
                    idx = torch.tensor(keep, device=device)
                    cache.batch_select_indices(idx)
                    mask, last_pos, step = mask[idx], last_pos[idx], step[idx]
                    active = [active[b] for b in keep]
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)  # (active, t+1)
                last_pos = last_pos + 1
                out = model(
                    input_ids=step,
                    attention_mask=mask,
                    position_ids=last_pos[:, None],
                    past_key_values=cache,
                    use_cache=True,
                )
        return [
            Generation(r.tokens, r.logprobs, r.finish, version, logprob_temperature(r.sampling))
            for r in batch
        ]

    def _finish_reason(self, r: Request) -> str | None:
        """Why ``r`` stops after its newest token, or None to go on."""
        reason = None
        if r.stop or r.on_text:
            before = r.text
            r.text = self.tokenizer.decode(r.tokens, skip_special_tokens=True)
            # A stop string can only end in what the newest token added.
            start = max(0, len(before) - max((len(s) for s in r.stop), default=0))
            if any(s in r.text[start:] for s in r.stop):
                reason = "stop"
            if r.on_text and not r.text.endswith("\ufffd"):  # hold back half a character
                if len(r.text) > r.streamed:
                    r.on_text(r.text[r.streamed :])
                r.streamed = len(r.text)
        if r.tokens[-1] in self.eos_ids:
            reason = "stop"
        if reason is None and len(r.tokens) >= r.sampling.max_new_tokens:
            reason = "length"
        return reason


def logprob_temperature(sampling: Sampling) -> float:
    """The temperature the recorded log-probs are taken at (greedy: the model's own, 1)."""
    return sampling.temperature if sampling.temperature > 0 else 1.0


def sample_batch(
    logits: torch.Tensor,
    samplings: list[Sampling],
    generators: list[torch.Generator | None],
) -> tuple[list[int], list[float]]:
    """One token per row of ``logits`` (rows, vocab) and its behaviour log-prob
    ``log_softmax(logits / T)``, with one host synchronisation for the whole batch.

    Top-p restricts which tokens can be drawn, but the recorded log-prob is not
    renormalised over the nucleus: it is the tempered distribution's, which is
    what the trainer computes (as verl and OpenRLHF do: logits divided by the
    temperature, no top-p mask), so pi_old / mu is 1 for a fresh sample. Greedy
    rows (T = 0) record the model's own log-prob (temperature 1), since the
    distribution they "sample" from puts all mass on the argmax.
    """
    device = logits.device
    temps = torch.tensor([logprob_temperature(s) for s in samplings], device=device)
    logp = torch.log_softmax(logits / temps[:, None], -1)  # (rows, vocab)
    toks = logits.argmax(-1)  # greedy rows keep it
    for b, (s, gen) in enumerate(zip(samplings, generators, strict=True)):
        if s.temperature <= 0:
            continue
        probs = logp[b].exp()
        if s.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            # Drop a token when the ones before it already reach top_p (the first stays).
            drop = (sorted_probs.cumsum(-1) - sorted_probs) >= s.top_p
            probs = probs.scatter(0, order[drop], 0.0)
        toks[b] = torch.multinomial(probs, 1, generator=gen)[0]
    picked = logp.gather(-1, toks[:, None])[:, 0]
    return toks.tolist(), picked.tolist()


def _sample(
    logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None
) -> tuple[int, float]:
    """``sample_batch`` for one row of ``logits`` (vocab,)."""
    toks, lps = sample_batch(logits[None], [sampling], [generator])
    return toks[0], lps[0]


def eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Every token id that ends a turn: the tokenizer's and the generation config's."""
    ids: set[int] = set()
    for value in (
        tokenizer.eos_token_id,
        getattr(getattr(model, "generation_config", None), "eos_token_id", None),
    ):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    return frozenset(ids)
