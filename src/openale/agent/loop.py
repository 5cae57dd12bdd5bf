"""The agent: messages -> model -> tool calls -> tools -> observations, until done.

The trajectory is the append-only record of the run; the prompt is a view
over it (system prompt, instruction, the summary of compressed turns, the
recent turns verbatim). Compression never rewrites history.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from openale.agent.actions import STOPS, ActionParseError, format_instructions, parse_actions
from openale.agent.approval import ApprovalPolicy, Asker
from openale.agent.environment import Environment, SandboxEnvironment
from openale.agent.models.base import Model, ModelError
from openale.agent.tools.base import (
    SubagentRunner,
    ToolArgumentError,
    ToolContext,
    ToolRegistry,
)
from openale.agent.trajectory import (
    ActionFormat,
    Chunk,
    Compression,
    ToolCall,
    ToolResult,
    Trajectory,
    TurnMessages,
    UserTurn,
)

FINISH = "finish"
SYSTEM_PROMPT = (
    "You are openale, an autonomous software engineering agent working in a Linux "
    "environment. Work step by step: inspect before you change, verify after. Use the "
    "tools to act; do not ask the user questions. When the task is complete, give a short "
    "final answer."
)
SUMMARY_PROMPT = (
    "Summarise the work so far so you can continue without the older messages. Use exactly "
    "these headings: Goal, Constraints, Files touched, Done so far, Open items. Be concise "
    "and keep every fact needed to finish (paths, commands, errors, decisions)."
)


class AgentConfig(BaseModel):
    max_turns: int = Field(50, ge=1)
    max_time_s: float = Field(1800.0, gt=0)
    max_total_tokens: int | None = Field(None, description="prompt+completion budget")
    max_consecutive_errors: int = Field(5, ge=1)
    max_repeats: int = Field(4, ge=2, description="identical consecutive calls before stopping")
    action_format: ActionFormat | None = Field(None, description="None: native if supported")
    tool_timeout_s: float = 180.0
    context_window: int = 32768
    compress_at: float = Field(0.8, gt=0, le=1, description="fraction of the window")
    keep_recent_turns: int = Field(4, ge=1)
    system_prompt: str = SYSTEM_PROMPT
    extra_instructions: str = Field("", description="AGENTS.md and the like")


class Agent:
    """One readable loop; models, tools, approval and compression sit behind small interfaces."""

    def __init__(
        self,
        model: Model,
        tools: ToolRegistry,
        config: AgentConfig | None = None,
        approval: ApprovalPolicy | None = None,
        asker: Asker | None = None,
        name: str = "openale",
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        side_chain_dir: Path | None = None,
    ):
        self.model = model
        self.tools = tools
        self.config = config or AgentConfig()
        self.approval = approval or ApprovalPolicy()
        self.asker = asker  # None: headless, an "ask" is a denial
        self.name = name
        self.on_event = on_event or (lambda kind, data: None)
        self.side_chain_dir = side_chain_dir  # where sub-agents' trajectories are saved
        self.format: ActionFormat = self.config.action_format or (
            "native" if model.native_tools else "tool_call_tags"
        )

    # -- the loop ---------------------------------------------------------------------

    def run(
        self,
        instruction: str | None,
        env: Environment,
        *,
        task_id: str | None = None,
        resume: Trajectory | None = None,
        subagents: SubagentRunner | None = None,
    ) -> Trajectory:
        """Run until done; ``resume`` continues a trajectory, with ``instruction`` as a
        follow-up user turn, or (``instruction=None``) right where it stopped.

        ``subagents`` runs the ``task`` tool's sub-agents for this run
        (``(spec, prompt) -> report``), e.g. with another model or elsewhere;
        None: each runs as a child of this agent in ``env``, linked as a side chain.
        """
        if resume is None and instruction is None:
            raise ValueError("an instruction is needed unless a trajectory is resumed")
        traj = resume or Trajectory(
            task_id=task_id,
            agent=self.name,
            model=self.model.name,
            action_format=self.format,
            system_prompt=self.system_prompt(),
            instruction=instruction,
        )
        if resume is not None:
            # Continuing a session: the new instruction is a follow-up turn. Without
            # one the agent carries on (RL restarts from an expert prefix this way).
            if instruction is not None:
                traj.user_turns.append(UserTurn(at=len(traj.chunks), content=instruction))
            traj.outcome, traj.error, traj.ended_at = None, None, None
        ctx = ToolContext(env=env, run_subagent=subagents)
        if subagents is None and self.tools.get("task") is not None:
            from openale.agent.subagents import subagent_runner

            ctx.run_subagent = subagent_runner(self, {"trajectory": traj}, env, self.side_chain_dir)
        turns = TurnMessages(traj)
        sandboxed = isinstance(env, SandboxEnvironment)
        deadline = time.monotonic() + self.config.max_time_s
        errors_in_a_row = 0
        first_turn = len(traj.chunks)
        self.on_event("start", {"trajectory": traj.id, "instruction": instruction})
        try:
            while traj.outcome is None:
                if len(traj.chunks) - first_turn >= self.config.max_turns:
                    traj.outcome = "max_turns"
                    break
                if time.monotonic() > deadline:
                    traj.outcome = "timeout"
                    break
                budget = self.config.max_total_tokens
                if budget and traj.usage.prompt_tokens + traj.usage.completion_tokens > budget:
                    traj.outcome, traj.error = "error", f"token budget of {budget} spent"
                    break
                chunk = self._step(traj, turns, ctx, sandboxed, deadline)
                self.on_event("chunk", {"chunk": chunk, "total": traj.usage})
                if chunk.tool_calls and all(r.is_error for r in chunk.tool_results):
                    errors_in_a_row += 1
                else:
                    errors_in_a_row = 0
                if not chunk.tool_calls and not chunk.tool_results:
                    traj.outcome = "completed"
                elif any(c.name == FINISH for c in chunk.tool_calls):
                    traj.outcome = "completed"
                elif errors_in_a_row >= self.config.max_consecutive_errors:
                    traj.outcome = "error"
                    traj.error = f"{errors_in_a_row} consecutive failed tool calls"
                elif self._repeating(traj):
                    traj.outcome = "error"
                    traj.error = f"the same call was repeated {self.config.max_repeats} times"
        except ModelError as e:
            traj.outcome, traj.error = "error", str(e)
        except KeyboardInterrupt:
            # Ctrl-C stops this run, not the session: the trajectory so far is kept.
            traj.outcome, traj.error = "error", "interrupted by the user"
        traj.ended_at = datetime.now(UTC)
        self.on_event("end", {"trajectory": traj})
        return traj

    def _step(
        self,
        traj: Trajectory,
        turns: TurnMessages,
        ctx: ToolContext,
        sandboxed: bool,
        deadline: float,
    ) -> Chunk:
        messages = self.prompt(traj, turns=turns)
        if self._maybe_compress(traj, messages, turns):
            messages = self.prompt(traj, turns=turns)
        started = time.monotonic()
        native = self.format == "native"
        response = self.model.complete(
            messages,
            tools=self.tools.schemas() if native else None,
            stop=STOPS[self.format] or None,
            conversation_id=self._conversation(traj),
        )
        chunk = Chunk(
            index=len(traj.chunks),
            text=response.text,
            finish_reason=response.finish_reason,
            usage=response.usage,
            model_s=time.monotonic() - started,
            prompt_token_ids=response.prompt_token_ids,
            token_ids=response.token_ids,
            logprobs=response.logprobs,
            policy_version=response.policy_version,
            logprob_temperature=response.logprob_temperature,
            prompt_continues=response.prompt_continues,
        )
        traj.usage = traj.usage + response.usage
        try:
            chunk.tool_calls = (
                response.tool_calls if native else parse_actions(response.text, self.format)
            )
        except ActionParseError as e:
            # Recorded as a failed call, so the model sees why and can retry.
            call = ToolCall(name="invalid_action", arguments={})
            chunk.tool_calls = [call]
            chunk.tool_results = [
                ToolResult(call_id=call.id, name=call.name, output=str(e), is_error=True)
            ]
            traj.chunks.append(chunk)
            return chunk
        started = time.monotonic()
        for call in chunk.tool_calls:
            chunk.tool_results.append(self._call(traj, call, ctx, sandboxed, deadline))
        chunk.tools_s = time.monotonic() - started
        traj.chunks.append(chunk)
        return chunk

    def _call(
        self, traj: Trajectory, call: ToolCall, ctx: ToolContext, sandboxed: bool, deadline: float
    ) -> ToolResult:
        started = time.monotonic()

        def result(output: str, **kw) -> ToolResult:
            return ToolResult(
                call_id=call.id,
                name=call.name,
                output=output,
                duration_s=time.monotonic() - started,
                **kw,
            )

        try:
            tool = self.tools.validate(call.name, call.arguments)
        except ToolArgumentError as e:
            return result(str(e), is_error=True)
        decision = self.approval.decide(
            call.name, call.arguments, read_only=tool.read_only, sandboxed=sandboxed
        )
        if decision == "ask":
            decision = "allow" if self.asker and self.asker(call.name, call.arguments) else "deny"
        if decision == "deny":
            traj.metadata.setdefault("denied_calls", []).append(
                {"tool": call.name, "arguments": call.arguments}
            )
            self.on_event("denied", {"call": call})
            return result(
                f"denied by the approval policy ({self.approval.mode} mode): "
                f"{call.name} was not run",
                is_error=True,
            )
        args = dict(call.arguments)
        if call.name == "shell":
            remaining = max(1.0, deadline - time.monotonic())
            args["timeout"] = min(args.get("timeout", self.config.tool_timeout_s), remaining)
        self.on_event("tool", {"call": call})
        try:
            out = tool.run(args, ctx)
        except Exception as e:  # a tool bug is an observation, not the end of the run
            return result(f"{call.name} failed: {type(e).__name__}: {e}", is_error=True)
        return result(out.output, exit_code=out.exit_code, is_error=out.is_error)

    # -- the prompt as a view ---------------------------------------------------------

    def system_prompt(self) -> str:
        parts = [self.config.system_prompt]
        instructions = format_instructions(self.format, self.tools.schemas())
        if instructions:
            parts.append(instructions)
        if self.config.extra_instructions:
            parts.append(self.config.extra_instructions)
        return "\n\n".join(parts)

    def prompt(
        self, traj: Trajectory, upto: int | None = None, *, turns: TurnMessages | None = None
    ) -> list[dict[str, Any]]:
        """What the model sees: the head, the latest summary, then the turns since it.

        ``turns`` renders the turns (once each, for the run that appends them);
        None renders them afresh."""
        msgs = traj.head()
        start = 0
        if traj.compressions:
            last = traj.compressions[-1]
            summary = f"Summary of the work so far (older turns were compressed):\n{last.summary}"
            msgs.append({"role": "user", "content": summary})
            start = last.upto
        render = turns or traj.turn_messages
        return msgs + render(start, len(traj.chunks) if upto is None else upto)

    def _conversation(self, traj: Trajectory) -> str:
        # A compression starts a new token sequence for a local policy.
        return f"{traj.id}#{len(traj.compressions)}"

    def _maybe_compress(
        self, traj: Trajectory, messages: list[dict[str, Any]], turns: TurnMessages
    ) -> bool:
        """Summarise older turns when ``messages`` (the current prompt) is over the limit."""
        limit = self.config.compress_at * self.config.context_window
        start = traj.compressions[-1].upto if traj.compressions else 0
        upto = len(traj.chunks) - self.config.keep_recent_turns
        if upto <= start:
            return False
        measured = self.model.count_tokens(messages)
        if measured <= limit:
            return False
        request = [
            *self.prompt(traj, upto, turns=turns),
            {"role": "user", "content": SUMMARY_PROMPT},
        ]
        response = self.model.complete(
            request, conversation_id=f"{traj.id}#summary{len(traj.compressions)}"
        )
        traj.usage = traj.usage + response.usage
        compression = Compression(
            upto=upto, summary=response.text.strip(), prompt_tokens_before=measured
        )
        traj.compressions.append(compression)
        compression.prompt_tokens_after = self.model.count_tokens(self.prompt(traj, turns=turns))
        self.on_event("compressed", {"compression": compression})
        return True

    def _repeating(self, traj: Trajectory) -> bool:
        n = self.config.max_repeats
        if len(traj.chunks) < n:
            return False
        keys = [
            json.dumps([(c.name, c.arguments) for c in ch.tool_calls], sort_keys=True)
            for ch in traj.chunks[-n:]
        ]
        return keys[0] != "[]" and len(set(keys)) == 1
