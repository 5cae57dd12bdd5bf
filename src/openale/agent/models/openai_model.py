"""Any OpenAI-compatible endpoint through the ``openai`` SDK."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

import openai

from openale.agent.models.base import ModelError, ModelResponse
from openale.agent.trajectory import ToolCall, Usage

# USD per million tokens (prompt, completion); extend through settings.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
}


class OpenAIModel:
    """Chat completions with native tool calling, retries with backoff, usage and cost."""

    native_tools = True

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_retries: int = 4,
        timeout_s: float = 300.0,
        prices: dict[str, tuple[float, float]] | None = None,
        on_text: Callable[[str], None] | None = None,
    ):
        self.name = model
        key = api_key or os.environ.get("ALE_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.client = openai.OpenAI(
            base_url=base_url or os.environ.get("ALE_BASE_URL") or None,
            api_key=key or "not-needed",  # local servers often ignore it
            max_retries=max_retries,  # the SDK backs off exponentially on 429/5xx
            timeout=timeout_s,
        )
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.prices = {**DEFAULT_PRICES, **(prices or {})}
        self.on_text = on_text  # streaming callback for interactive use
        self._last_prompt_tokens = 0
        self._last_message_count = 0
        self._lock = threading.Lock()

    def complete(self, messages, *, tools=None, stop=None, conversation_id=None) -> ModelResponse:
        kwargs: dict[str, Any] = {"model": self.name, "messages": messages}
        if tools:
            kwargs["tools"] = tools
        if stop:
            kwargs["stop"] = stop
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        try:
            if self.on_text is not None:
                response = self._stream(kwargs)
            else:
                response = self._parse(self.client.chat.completions.create(**kwargs))
        except openai.APIError as e:
            raise ModelError(f"{self.name}: {type(e).__name__}: {e}") from None
        with self._lock:
            self._last_prompt_tokens = response.usage.prompt_tokens
            self._last_message_count = len(messages)
        return response

    def _parse(self, completion) -> ModelResponse:
        choice = completion.choices[0]
        calls = []
        for c in choice.message.tool_calls or []:
            try:
                args = json.loads(c.function.arguments or "{}")
            except json.JSONDecodeError:
                args = {"__raw__": c.function.arguments}
            calls.append(ToolCall(id=c.id, name=c.function.name, arguments=args))
        usage = self._usage(completion.usage)
        return ModelResponse(
            text=choice.message.content or "",
            tool_calls=calls,
            finish_reason=choice.finish_reason,
            usage=usage,
        )

    def _stream(self, kwargs: dict[str, Any]) -> ModelResponse:
        text, finish, usage = [], None, Usage()
        calls: dict[int, dict[str, str]] = {}
        stream = self.client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
        for event in stream:
            if event.usage:
                usage = self._usage(event.usage)
            for choice in event.choices:
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                    self.on_text(delta.content)
                for tc in delta.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = tc.id or slot["id"]
                    if tc.function:
                        slot["name"] += tc.function.name or ""
                        slot["arguments"] += tc.function.arguments or ""
                finish = choice.finish_reason or finish
        tool_calls = []
        for slot in calls.values():
            try:
                args = json.loads(slot["arguments"] or "{}")
            except json.JSONDecodeError:
                args = {"__raw__": slot["arguments"]}
            ids = {"id": slot["id"]} if slot["id"] else {}
            tool_calls.append(ToolCall(name=slot["name"], arguments=args, **ids))
        return ModelResponse(
            text="".join(text), tool_calls=tool_calls, finish_reason=finish, usage=usage
        )

    def _usage(self, u) -> Usage:
        if u is None:
            return Usage()
        prompt, completion = u.prompt_tokens or 0, u.completion_tokens or 0
        p_in, p_out = self.prices.get(self.name, (0.0, 0.0))
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=(prompt * p_in + completion * p_out) / 1e6,
        )

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """The last measured prompt size plus an estimate for what was appended since."""
        with self._lock:
            base, seen = self._last_prompt_tokens, self._last_message_count
        new = messages[seen:] if base else messages
        return base + sum(len(json.dumps(m)) // 4 for m in new)
