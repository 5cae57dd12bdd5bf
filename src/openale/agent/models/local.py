"""``LocalPolicy``: a ``transformers`` causal LM as a ``Model``, token-in, token-out.

The RL path needs three things an HTTP model cannot give: the exact token ids
the policy saw and produced, the behaviour log-probs of the generated tokens,
and the version of the weights that produced them. ``LocalPolicy`` keeps, per
``conversation_id``, the token sequence so far and only tokenizes the messages
that are new since the previous call; generated ids are never re-tokenized.

Many agents call ``complete`` from their own threads at once. One worker
thread gathers the requests that arrive within a short window and decodes them
as one left-padded batch, with its own loop over ``model(..., past_key_values)``
so the log-prob of every sampled token is recorded exactly.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from openale.agent.models.base import ModelError, ModelResponse
from openale.agent.trajectory import Usage

_SENTINEL = "\x00openale-reply\x00"


class PromptTooLongError(ModelError):
    """The prompt leaves no room to generate within the model's context window."""


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


@dataclass
class _Request:
    context: list[int]
    sampling: Sampling
    stop: tuple[str, ...]
    generator: torch.Generator | None
    on_text: Callable[[str], None] | None = None  # streaming: called with each new piece
    future: Future = field(default_factory=Future)
    # Filled in while decoding.
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""  # decoded so far (kept only to look for stop strings or to stream)
    streamed: int = 0  # characters already passed to on_text
    finish: str | None = None


@dataclass
class _Conversation:
    n_messages: int  # messages in the previous call
    prompt_text: str  # their rendering, generation prompt included
    token_ids: list[int]  # everything so far, the last generation included
    generated: list[int]  # the last generation


class LocalPolicy:
    """A local causal LM behind the ``Model`` protocol, recording ids, log-probs and version."""

    native_tools = False  # tool instructions go in the system prompt

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int | None = None,
        max_batch: int = 8,
        batch_window_s: float = 0.02,
        max_conversations: int = 1024,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or str(getattr(model.config, "_name_or_path", "") or "local")
        self.sampling = Sampling(temperature, top_p, max_new_tokens, seed)
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.max_conversations = max_conversations
        self.version = 0
        self.batch_sizes: Counter[int] = Counter()  # how many requests each batch decoded
        self._seeds = torch.Generator().manual_seed(seed) if seed is not None else None
        self._weights_lock = threading.RLock()  # held while a batch decodes
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()
        self._state_lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer is not safe to share
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self.eos_ids = _eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.max_context = int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30)
        self._end_of_turn = self._encode(_end_of_turn_text(tokenizer))

    @classmethod
    def from_pretrained(cls, name_or_path: str = "smollm2", **kwargs: Any) -> LocalPolicy:
        """A policy over ``smollm2``, ``tiny-random`` or a checkpoint folder."""
        from openale.agent.models.smollm import resolve_model

        model, tokenizer = resolve_model(name_or_path)
        path = Path(name_or_path).expanduser()
        kwargs.setdefault("name", path.name if path.is_dir() else str(name_or_path))
        return cls(model, tokenizer, **kwargs)

    # -- the Model protocol --------------------------------------------------------------

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        stop: list[str] | None = None,
        conversation_id: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
        seed: int | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> ModelResponse:
        """The next assistant turn; ``tools`` are ignored (the caller describes them in text).

        With a ``conversation_id`` whose previous call's messages, plus its
        reply, begin ``messages``, only the new messages are tokenized and
        appended after the ids generated last time; otherwise the whole prompt
        is tokenized (e.g. after context compression rewrote the history).
        Calls of one conversation must not overlap; different conversations may.
        """
        del tools
        context, new_ids, prompt_text = self._prompt_ids(messages, conversation_id)
        full = context + new_ids
        sampling = Sampling(
            self.sampling.temperature if temperature is None else temperature,
            self.sampling.top_p if top_p is None else top_p,
            self.sampling.max_new_tokens if max_new_tokens is None else max_new_tokens,
            seed,
        )
        gen = self.generate(full, sampling, stop=stop, on_text=on_text)
        return self._respond(messages, conversation_id, prompt_text, context, new_ids, gen)

    def teacher_force(
        self,
        messages: list[dict[str, Any]],
        reply: str,
        *,
        conversation_id: str | None = None,
    ) -> ModelResponse:
        """Answer ``messages`` with the given ``reply`` as if this policy had generated it.

        The prompt ids are built exactly as ``complete`` builds them (and the
        conversation state advances the same way), the reply is tokenized and
        closed with the end-of-turn token a generation stops on, and its
        behaviour log-probs come from one forward pass of the current weights
        (temperature 1). Used to record expert trajectories (oracle data,
        initialized resampling) in the same token-in/token-out form as rollouts.
        """
        context, new_ids, prompt_text = self._prompt_ids(messages, conversation_id)
        full = context + new_ids
        token_ids = self._encode(reply) + self._end_of_turn[:1]
        if len(full) + len(token_ids) > self.max_context:
            raise PromptTooLongError(
                f"prompt ({len(full)}) + reply ({len(token_ids)}) tokens exceed the model's "
                f"context of {self.max_context}"
            )
        logprobs, version = self.score(full, token_ids)
        gen = Generation(token_ids, logprobs, "stop", version)
        return self._respond(messages, conversation_id, prompt_text, context, new_ids, gen)

    @torch.inference_mode()
    def score(self, context: list[int], continuation: list[int]) -> tuple[list[float], int]:
        """Log-probs (temperature 1) of ``continuation`` after ``context``, and the version."""
        if not context or not continuation:
            raise ValueError("score needs a non-empty context and continuation")
        ids = torch.tensor([context + continuation], device=self.model.device)  # (1, n)
        with self._weights_lock:
            version = self.version
            logits = self.model(input_ids=ids).logits[0, len(context) - 1 : -1].float()
        logp = torch.log_softmax(logits, -1)  # (len(continuation), vocab)
        picked = logp.gather(1, torch.tensor(continuation, device=logp.device)[:, None])
        return picked[:, 0].tolist(), version

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return len(self._encode(self.render(messages)))

    # -- conversations and weights -------------------------------------------------------

    def context_ids(self, conversation_id: str) -> list[int]:
        """The exact token sequence of a conversation so far (prompts and generations)."""
        with self._state_lock:
            conv = self._conversations.get(conversation_id)
        if conv is None:
            raise KeyError(f"no conversation {conversation_id!r}")
        return list(conv.token_ids)

    def fork_conversation(self, source: str, target: str) -> bool:
        """Start ``target`` from ``source``'s state (branching, or renaming); False if unknown."""
        with self._state_lock:
            conv = self._conversations.get(source)
            if conv is None:
                return False
            self._conversations[target] = _Conversation(
                conv.n_messages, conv.prompt_text, list(conv.token_ids), list(conv.generated)
            )
            return True

    def end_conversation(self, conversation_id: str) -> None:
        with self._state_lock:
            self._conversations.pop(conversation_id, None)

    def load_weights(self, state_dict: dict[str, torch.Tensor], strict: bool = True) -> int:
        """Replace the weights between two batches; returns the new policy version."""
        with self._weights_lock:
            self.model.load_state_dict(state_dict, strict=strict)
            self.version += 1
            return self.version

    def bump_version(self) -> int:
        """Mark the weights as changed in place (e.g. after an optimizer step)."""
        with self._weights_lock:
            self.version += 1
            return self.version

    @contextlib.contextmanager
    def updating_weights(self) -> Iterator[None]:
        """Hold generation off while the weights change in place; bumps the version after."""
        with self._weights_lock:
            yield
            self.version += 1

    def _prompt_ids(
        self, messages: list[dict[str, Any]], conversation_id: str | None
    ) -> tuple[list[int], list[int], str]:
        """``(context, new_ids, prompt_text)``: the ids already held for the conversation
        (empty when the prompt is tokenized afresh) and the ids to add after them."""
        prompt_text = self.render(messages)
        with self._state_lock:
            conv = self._conversations.get(conversation_id) if conversation_id else None
        new_ids = self._continuation(conv, messages, prompt_text) if conv else None
        if new_ids is None:
            return [], self._encode(prompt_text), prompt_text
        return conv.token_ids, new_ids, prompt_text

    def _respond(
        self,
        messages: list[dict[str, Any]],
        conversation_id: str | None,
        prompt_text: str,
        context: list[int],
        new_ids: list[int],
        gen: Generation,
    ) -> ModelResponse:
        """Remember the conversation's new state and describe the turn."""
        full = context + new_ids
        if conversation_id:
            with self._state_lock:
                self._conversations[conversation_id] = _Conversation(
                    len(messages), prompt_text, full + gen.token_ids, gen.token_ids
                )
                self._conversations.move_to_end(conversation_id)
                while len(self._conversations) > self.max_conversations:
                    self._conversations.popitem(last=False)
        return ModelResponse(
            text=self.tokenizer.decode(gen.token_ids, skip_special_tokens=True),
            finish_reason=gen.finish_reason,
            usage=Usage(prompt_tokens=len(full), completion_tokens=len(gen.token_ids)),
            prompt_token_ids=new_ids,
            token_ids=gen.token_ids,
            logprobs=gen.logprobs,
            policy_version=gen.policy_version,
            prompt_continues=bool(context),
        )

    # -- tokens --------------------------------------------------------------------------

    def render(self, messages: list[dict[str, Any]], generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(
            [_plain(m) for m in messages],
            tokenize=False,
            add_generation_prompt=generation_prompt,
        )

    def _encode(self, text: str) -> list[int]:
        # The chat template writes the special tokens itself.
        with self._tokenizer_lock:
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _continuation(
        self, conv: _Conversation, messages: list[dict[str, Any]], prompt_text: str
    ) -> list[int] | None:
        """Ids to append after the last generation, or None when the history was rewritten."""
        k = conv.n_messages
        if len(messages) <= k or messages[k].get("role") != "assistant":
            return None
        with_reply = self.render(messages[: k + 1], generation_prompt=False)
        if not with_reply.startswith(conv.prompt_text) or not prompt_text.startswith(with_reply):
            return None
        # The template closes the reply with an end-of-turn the generation may
        # lack (a stop string or the length limit ended it): add what is missing.
        eot, gen = self._end_of_turn, conv.generated
        done = next((j for j in range(len(eot), 0, -1) if gen[-j:] == eot[:j]), 0)
        return eot[done:] + self._encode(prompt_text[len(with_reply) :])

    # -- generation ----------------------------------------------------------------------

    def generate(
        self,
        context: list[int],
        sampling: Sampling | None = None,
        *,
        stop: list[str] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        """Continue ``context`` (token ids), batched with whatever else is in flight."""
        sampling = sampling or self.sampling
        room = self.max_context - len(context)
        if room <= 0:
            raise PromptTooLongError(
                f"the prompt has {len(context)} tokens; the model's context is {self.max_context}"
            )
        sampling = Sampling(
            sampling.temperature,
            sampling.top_p,
            min(sampling.max_new_tokens, room),
            sampling.seed,
        )
        seed = sampling.seed
        if seed is None and self._seeds is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=self._seeds))
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        request = _Request(list(context), sampling, tuple(stop or ()), generator, on_text)
        self._ensure_worker()
        self._queue.put(request)
        return request.future.result()

    def close(self) -> None:
        """Stop the batching worker (requests already queued are answered first)."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def __enter__(self) -> LocalPolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_worker(self) -> None:
        with self._state_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._serve, name="local-policy-batcher", daemon=True
                )
                self._worker.start()

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
    def _decode(self, batch: list[_Request]) -> list[Generation]:
        """Decode a batch of requests together; each row stops on its own."""
        from transformers import DynamicCache

        device = self.model.device
        n = len(batch)
        width = max(len(r.context) for r in batch)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, r in enumerate(batch):  # left padding: every row's last token is at -1
            ids[i, width - len(r.context) :] = torch.tensor(r.context)
            mask[i, width - len(r.context) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (n, width)
        with self._weights_lock:
            version = self.version
            cache = DynamicCache(config=self.model.config)
            out = self.model(
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
                for b, r in enumerate(active):
                    tok, lp = _sample(logits[b], r.sampling, r.generator)
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
                out = self.model(
                    input_ids=step,
                    attention_mask=mask,
                    position_ids=last_pos[:, None],
                    past_key_values=cache,
                    use_cache=True,
                )
        return [Generation(r.tokens, r.logprobs, r.finish, version) for r in batch]

    def _finish_reason(self, r: _Request) -> str | None:
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


def _sample(
    logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None
) -> tuple[int, float]:
    """One token from ``logits`` (vocab,) and its log-prob under the distribution sampled from.

    Greedy decoding records the log-prob under the model's own distribution
    (temperature 1), since the one "sampled from" puts all mass on the argmax.
    """
    if sampling.temperature <= 0:
        tok = int(torch.argmax(logits))
        return tok, float(torch.log_softmax(logits, -1)[tok])
    scaled = logits / sampling.temperature
    if sampling.top_p < 1.0:
        sorted_logits, order = torch.sort(scaled, descending=True)
        probs = torch.softmax(sorted_logits, -1)
        # Drop a token when the ones before it already reach top_p (the first always stays).
        drop = (probs.cumsum(-1) - probs) >= sampling.top_p
        scaled = scaled.scatter(0, order[drop], float("-inf"))
    logp = torch.log_softmax(scaled, -1)
    tok = int(torch.multinomial(logp.exp(), 1, generator=generator))
    return tok, float(logp[tok])


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
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


def _end_of_turn_text(tokenizer: Any) -> str:
    """What the chat template writes after an assistant message's content (``<|im_end|>\\n``)."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": _SENTINEL}],
        tokenize=False,
    )
    return text.split(_SENTINEL, 1)[1]


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    """A message as a plain chat template expects it: ``content`` always a string."""
    content = message.get("content")
    if content is None:
        content = ""
    elif isinstance(content, list):  # OpenAI content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return {**message, "content": content}
