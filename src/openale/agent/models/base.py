"""What the agent needs from a model: one call that turns a chat into the next turn."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from openale.agent.trajectory import ToolCall, Usage


class ModelError(Exception):
    """The model could not answer (after retries); the run ends with outcome ``error``."""


class ModelResponse(BaseModel):
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)  # native function calling only
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    # Local policies: the prompt tokens added since the previous call of this
    # conversation, the generated tokens, their behaviour log-probs, and the
    # version of the weights that produced them.
    prompt_token_ids: list[int] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    policy_version: int | None = None
    # The temperature T of ``log_softmax(logits / T)`` the log-probs were taken at.
    logprob_temperature: float | None = None
    # True when ``prompt_token_ids`` continue the previous call's sequence; False
    # when the whole prompt was tokenized afresh (first call, or history rewritten).
    prompt_continues: bool = False


@runtime_checkable
class Model(Protocol):
    name: str
    native_tools: bool  # can it take ``tools=`` and return structured tool calls?

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        stop: list[str] | None = None,
        conversation_id: str | None = None,
    ) -> ModelResponse:
        """The next assistant turn for ``messages``."""

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens ``messages`` would take (for context compression)."""
