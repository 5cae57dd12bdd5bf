"""``LocalPolicy``: a ``transformers`` causal LM as a ``Model``, token-in, token-out.

The RL path needs three things an HTTP model cannot give: the exact token ids
the policy saw and produced, the behaviour log-probs of the generated tokens,
and the version of the weights that produced them. Each has its own module:
the token bookkeeping per conversation (``local_tokens``), the worker that
decodes concurrent callers as one batch recording every log-prob
(``local_batching``), and the weights with their version (``local_weights``).
``LocalPolicy`` puts them behind the ``Model`` protocol.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch

from openale.agent.models.base import ModelError, ModelResponse
from openale.agent.models.local_batching import Batcher, Generation, Request, Sampling, eos_ids
from openale.agent.models.local_tokens import ConversationTokens
from openale.agent.models.local_weights import PolicyWeights
from openale.agent.trajectory import Usage


class PromptTooLongError(ModelError):
    """The prompt leaves no room to generate within the model's context window."""


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
        self.tokenizer = tokenizer
        self.name = name or str(getattr(model.config, "_name_or_path", "") or "local")
        self.sampling = Sampling(temperature, top_p, max_new_tokens, seed)
        self.weights = PolicyWeights(model)
        self.tokens = ConversationTokens(tokenizer, max_conversations)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.max_context = int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30)
        self.batcher = Batcher(
            self.weights,
            tokenizer,
            eos_ids=eos_ids(model, tokenizer),
            pad_id=self.pad_id,
            max_batch=max_batch,
            batch_window_s=batch_window_s,
        )
        self._seeds = torch.Generator().manual_seed(seed) if seed is not None else None

    @classmethod
    def from_pretrained(cls, name_or_path: str = "smollm2", **kwargs: Any) -> LocalPolicy:
        """A policy over ``smollm2``, ``tiny-random`` or a checkpoint folder."""
        from openale.agent.models.smollm import resolve_model

        model, tokenizer = resolve_model(name_or_path)
        path = Path(name_or_path).expanduser()
        kwargs.setdefault("name", path.name if path.is_dir() else str(name_or_path))
        return cls(model, tokenizer, **kwargs)

    @property
    def model(self) -> Any:
        return self.weights.model

    @property
    def version(self) -> int:
        """The version of the current weights; each generation records the one it used."""
        return self.weights.version

    @version.setter
    def version(self, value: int) -> None:
        with self.weights.lock:
            self.weights.version = value

    @property
    def batch_sizes(self) -> Counter[int]:
        """How many requests each decoded batch held (batch size -> count)."""
        return self.batcher.batch_sizes

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
        context, new_ids, prompt_text = self.tokens.prompt_ids(messages, conversation_id)
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
        context, new_ids, prompt_text = self.tokens.prompt_ids(messages, conversation_id)
        full = context + new_ids
        token_ids = self.tokens.encode(reply) + self.tokens.end_of_turn[:1]
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
        with self.weights.lock:
            version = self.weights.version
            logits = self.model(input_ids=ids).logits[0, len(context) - 1 : -1].float()
        logp = torch.log_softmax(logits, -1)  # (len(continuation), vocab)
        picked = logp.gather(1, torch.tensor(continuation, device=logp.device)[:, None])
        return picked[:, 0].tolist(), version

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return len(self.tokens.encode(self.render(messages)))

    # -- conversations and weights -------------------------------------------------------

    def context_ids(self, conversation_id: str) -> list[int]:
        """The exact token sequence of a conversation so far (prompts and generations)."""
        return self.tokens.context_ids(conversation_id)

    def fork_conversation(self, source: str, target: str) -> bool:
        """Start ``target`` from ``source``'s state (branching, or renaming); False if unknown."""
        return self.tokens.fork(source, target)

    def end_conversation(self, conversation_id: str) -> None:
        self.tokens.end(conversation_id)

    def load_weights(self, state_dict: dict[str, torch.Tensor], strict: bool = True) -> int:
        """Replace the weights between two batches; returns the new policy version."""
        return self.weights.load(state_dict, strict=strict)

    def bump_version(self) -> int:
        """Mark the weights as changed in place (e.g. after an optimizer step)."""
        return self.weights.bump()

    def updating_weights(self) -> AbstractContextManager[None]:
        """Hold generation off while the weights change in place; bumps the version after."""
        return self.weights.updating()

    def render(self, messages: list[dict[str, Any]], generation_prompt: bool = True) -> str:
        """``messages`` through the chat template, as the policy sees them."""
        return self.tokens.render(messages, generation_prompt)

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
            self.tokens.remember(conversation_id, len(messages), prompt_text, full, gen.token_ids)
        return ModelResponse(
            text=self.tokenizer.decode(gen.token_ids, skip_special_tokens=True),
            finish_reason=gen.finish_reason,
            usage=Usage(prompt_tokens=len(full), completion_tokens=len(gen.token_ids)),
            prompt_token_ids=new_ids,
            token_ids=gen.token_ids,
            logprobs=gen.logprobs,
            policy_version=gen.policy_version,
            logprob_temperature=gen.logprob_temperature,
            prompt_continues=bool(context),
        )

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
        generator = None
        if seed is not None:  # on the model's device: CUDA sampling refuses a CPU generator
            generator = torch.Generator(device=self.model.device).manual_seed(seed)
        return self.batcher.generate(
            Request(list(context), sampling, tuple(stop or ()), generator, on_text)
        )

    def close(self) -> None:
        """Stop the batching worker (requests already queued are answered first)."""
        self.batcher.close()

    def __enter__(self) -> LocalPolicy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
