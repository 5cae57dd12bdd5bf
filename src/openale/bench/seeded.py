"""Seeded sampling: one episode's view of a shared model, reproducible at temperature > 0.

Seeds come from ``derive_seed(parts...)`` (same parts, same seed, on any
machine); every generation of an episode gets the next seed of its sequence.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

from openale.agent.models.base import Model, ModelResponse


def derive_seed(*parts: Any) -> int:
    """A stable 62-bit seed from ``parts`` (same parts, same seed, on any machine)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


class SeededModel:
    """One episode's view of a shared model: every call gets the next seed of the episode.

    Sampling settings (``seed``, ``temperature``, ``top_p``, ``max_new_tokens``)
    are passed only to models whose ``complete`` takes them (``LocalPolicy``);
    a replay or HTTP model is called as it is.
    """

    def __init__(
        self,
        inner: Model,
        seed: int,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
    ):
        self.inner = inner
        self.seed = seed
        self.name = inner.name
        self.native_tools = inner.native_tools
        self.calls = 0
        self.conversations: set[str] = set()
        accepted = set(inspect.signature(inner.complete).parameters)
        wanted = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens}
        self._sampling = {k: v for k, v in wanted.items() if v is not None and k in accepted}
        self._seeded = "seed" in accepted

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        stop: list[str] | None = None,
        conversation_id: str | None = None,
    ) -> ModelResponse:
        extra = dict(self._sampling)
        if self._seeded:
            extra["seed"] = derive_seed("call", self.seed, self.calls)
        self.calls += 1
        if conversation_id:
            self.conversations.add(conversation_id)
        return self.inner.complete(
            messages, tools=tools, stop=stop, conversation_id=conversation_id, **extra
        )

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return self.inner.count_tokens(messages)

    def release(self) -> None:
        """Forget this episode's token sequences in the shared policy (they are recorded)."""
        end = getattr(self.inner, "end_conversation", None)
        if end is not None:
            for cid in self.conversations:
                end(cid)
        self.conversations.clear()
