"""Trajectories: the one data model every layer above the sandbox speaks.

A ``Trajectory`` is one agent run on one instruction; its ``chunks`` are the
assistant turns, each ending in tool calls or in the final answer, with the
tools' results. When a local policy generated a chunk, the chunk also holds the
exact token ids (prompt tokens added since the previous chunk, then the
generated ones), the behaviour log-probs and the policy version, so training
never re-tokenizes text. On disk: JSONL, one trajectory per line, with a
``format`` field.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

FORMAT = "openale.trajectory/1"
Outcome = Literal["completed", "max_turns", "timeout", "error"]
ActionFormat = Literal["native", "tool_call_tags", "bash_block"]


def _now() -> datetime:
    return datetime.now(UTC)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


class ToolCall(BaseModel):
    id: str = Field(default_factory=lambda: "call_" + secrets.token_hex(6))
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResult(BaseModel):
    call_id: str
    name: str
    output: str
    exit_code: int | None = None
    is_error: bool = False
    duration_s: float = 0.0


class Chunk(BaseModel):
    """One assistant turn: the tokens generated between two observations."""

    index: int
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_results: list[ToolResult] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    started_at: datetime = Field(default_factory=_now)
    model_s: float = 0.0
    tools_s: float = 0.0
    # Local policies only: token-in, token-out.
    prompt_token_ids: list[int] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    policy_version: int | None = None
    # The temperature T of ``log_softmax(logits / T)`` that ``logprobs`` were taken at:
    # the sampling temperature (1 for greedy decoding and teacher forcing). None, as in
    # files written before it was recorded, reads as 1. The trainer scores at this T.
    logprob_temperature: float | None = None
    # True: ``prompt_token_ids`` extend the previous chunk's prompt + generation;
    # False: they are the whole prompt (the first chunk, or after compression).
    prompt_continues: bool = False

    @property
    def failed(self) -> bool:
        """A turn whose tool call failed (error-masked SFT leaves it out)."""
        return any(r.is_error for r in self.tool_results)


class Compression(BaseModel):
    """A summary that replaced chunks ``[0, upto)`` in the prompt (never in the trajectory)."""

    upto: int
    summary: str
    prompt_tokens_before: int
    prompt_tokens_after: int | None = None


class UserTurn(BaseModel):
    """A follow-up user message (interactive or ``--resume``), shown before chunk ``at``."""

    at: int
    content: str


class Trajectory(BaseModel):
    format: str = FORMAT
    id: str = Field(default_factory=lambda: "traj-" + secrets.token_hex(8))
    task_id: str | None = None
    agent: str = "openale"
    model: str = ""
    action_format: ActionFormat = "native"
    system_prompt: str = ""
    instruction: str = ""
    started_at: datetime = Field(default_factory=_now)
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    error: str | None = None
    reward: float | None = None
    verifier: dict[str, Any] | None = None
    usage: Usage = Field(default_factory=Usage)
    safety_flags: list[str] = Field(default_factory=list)
    chunks: list[Chunk] = Field(default_factory=list)
    compressions: list[Compression] = Field(default_factory=list)
    user_turns: list[UserTurn] = Field(default_factory=list)
    parent_id: str | None = None
    children: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def final_answer(self) -> str | None:
        last = self.chunks[-1] if self.chunks else None
        return last.text if last and not last.tool_calls else None

    def messages(self) -> list[dict[str, Any]]:
        """The OpenAI-style chat this trajectory is."""
        return self.head() + self.turn_messages(0, len(self.chunks))

    def head(self) -> list[dict[str, Any]]:
        """The system prompt and the instruction."""
        msgs: list[dict[str, Any]] = []
        if self.system_prompt:
            msgs.append({"role": "system", "content": self.system_prompt})
        msgs.append({"role": "user", "content": self.instruction})
        return msgs

    def turn_messages(self, start: int, end: int) -> list[dict[str, Any]]:
        """Chunks ``[start, end)`` with the follow-up user turns before each and at ``end``."""
        msgs: list[dict[str, Any]] = []
        for chunk in self.chunks[start:end]:
            msgs.extend(self.user_messages(chunk.index))
            msgs.extend(chunk_messages(chunk, self.action_format))
        msgs.extend(self.user_messages(end))
        return msgs

    def user_messages(self, at: int) -> list[dict[str, Any]]:
        return [{"role": "user", "content": u.content} for u in self.user_turns if u.at == at]


class TurnMessages:
    """``Trajectory.turn_messages`` for the loop that appends the chunks, each rendered once.

    The loop rebuilds the prompt every step; rendering every turn again made a
    step's cost grow with the run. A chunk must not change once rendered (the
    loop appends it finished), and the user turns must not change meanwhile.
    """

    def __init__(self, traj: Trajectory):
        self.traj = traj
        self._flat: list[dict[str, Any]] = []  # every rendered chunk's messages, in order
        self._starts: list[int] = []  # where chunk i's messages (user turns first) begin

    def __call__(self, start: int, end: int) -> list[dict[str, Any]]:
        traj = self.traj
        while len(self._starts) < end:
            chunk = traj.chunks[len(self._starts)]
            self._starts.append(len(self._flat))
            self._flat.extend(traj.user_messages(chunk.index))
            self._flat.extend(chunk_messages(chunk, traj.action_format))
        begin, stop = (
            self._starts[i] if i < len(self._starts) else len(self._flat) for i in (start, end)
        )
        return self._flat[begin:stop] + traj.user_messages(end)


def chunk_messages(chunk: Chunk, action_format: ActionFormat) -> list[dict[str, Any]]:
    """An assistant message and the observations that answered it."""
    if action_format == "native":
        assistant: dict[str, Any] = {"role": "assistant", "content": chunk.text or None}
        if chunk.tool_calls:
            assistant["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in chunk.tool_calls
            ]
        results = [
            {"role": "tool", "tool_call_id": r.call_id, "content": r.output}
            for r in chunk.tool_results
        ]
        return [assistant, *results]
    # Text formats: the observation comes back as the next user turn.
    msgs: list[dict[str, Any]] = [{"role": "assistant", "content": chunk.text}]
    if chunk.tool_results:
        msgs.append(
            {"role": "user", "content": "\n\n".join(observation(r) for r in chunk.tool_results)}
        )
    return msgs


def observation(result: ToolResult) -> str:
    """How a tool result is shown to a model that acts in text."""
    status = f" (exit code {result.exit_code})" if result.exit_code not in (None, 0) else ""
    error = " [error]" if result.is_error and not status else ""
    return f'<observation tool="{result.name}"{status}{error}>\n{result.output}\n</observation>'


# -- files ----------------------------------------------------------------------------


def save(trajectories: Iterable[Trajectory], path: str | Path, append: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w") as f:
        for t in trajectories:
            f.write(t.model_dump_json() + "\n")
    return path


def load(path: str | Path) -> Iterator[Trajectory]:
    with Path(path).open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            data = json.loads(line)
            if data.get("format") != FORMAT:
                raise ValueError(f"{path}:{n}: format {data.get('format')!r}, expected {FORMAT}")
            yield Trajectory.model_validate(data)


def export_openai_jsonl(trajectories: Iterable[Trajectory], path: str | Path) -> int:
    """OpenAI fine-tuning JSONL (``{"messages": [...]}`` per line); returns rows written."""
    n = 0
    with Path(path).open("w") as f:
        for t in trajectories:
            f.write(json.dumps({"messages": t.messages()}) + "\n")
            n += 1
    return n


def export_parquet(trajectories: Iterable[Trajectory], path: str | Path) -> int:
    """A Hugging Face ``datasets`` Parquet file: one row per trajectory, chunks as JSON."""
    import datasets

    rows = []
    for t in trajectories:
        rows.append(
            {
                "id": t.id,
                "task_id": t.task_id,
                "agent": t.agent,
                "model": t.model,
                "outcome": t.outcome,
                "reward": t.reward,
                "instruction": t.instruction,
                "messages": json.dumps(t.messages()),
                "n_chunks": len(t.chunks),
                "prompt_tokens": t.usage.prompt_tokens,
                "completion_tokens": t.usage.completion_tokens,
                "trajectory": t.model_dump_json(),
            }
        )
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    return len(rows)
