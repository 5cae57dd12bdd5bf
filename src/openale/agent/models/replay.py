"""Deterministic offline models: replay recorded responses, or record a real model's."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from openale.agent.models.base import Model, ModelError, ModelResponse


def _estimate_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content") or "")) // 4 + 4 for m in messages)


class ReplayModel:
    """Answers with the responses of a JSONL file, in order (``--model replay:FILE``).

    Each line is a ``ModelResponse`` (``text``, optional ``tool_calls``); lines
    that ``RecordingModel`` wrote also carry the messages they answered.
    """

    native_tools = True

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no replay file {self.path}")
        self.name = name or f"replay:{self.path.name}"
        self._responses = []
        for line in self.path.read_text().splitlines():
            if line.strip():
                data = json.loads(line)
                self._responses.append(ModelResponse.model_validate(data.get("response", data)))
        self._next = 0
        self._lock = threading.Lock()

    def complete(self, messages, *, tools=None, stop=None, conversation_id=None) -> ModelResponse:
        with self._lock:
            if self._next >= len(self._responses):
                raise ModelError(f"{self.path}: all {len(self._responses)} responses replayed")
            response = self._responses[self._next].model_copy(deep=True)
            self._next += 1
        response.usage.prompt_tokens = response.usage.prompt_tokens or _estimate_tokens(messages)
        return response

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return _estimate_tokens(messages)


class RecordingModel:
    """Wraps a real model and appends every exchange to a JSONL file ReplayModel reads."""

    def __init__(self, inner: Model, path: str | Path):
        self.inner = inner
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.name = inner.name
        self.native_tools = inner.native_tools
        self._lock = threading.Lock()

    def complete(self, messages, *, tools=None, stop=None, conversation_id=None) -> ModelResponse:
        response = self.inner.complete(
            messages, tools=tools, stop=stop, conversation_id=conversation_id
        )
        row = {"messages": messages, "response": response.model_dump(exclude_none=True)}
        with self._lock, self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        return response

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return self.inner.count_tokens(messages)
