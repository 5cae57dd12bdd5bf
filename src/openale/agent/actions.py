"""Action formats: how a model's text becomes tool calls.

- ``native``: the API's own function calling (``tools=``); nothing to parse.
- ``tool_call_tags``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` in the text.
- ``bash_block``: one fenced ```bash block per turn, run in the shell. Small models
  manage this far more often than JSON (SmolLM2-135M: ~70% vs 0%).
A turn with no action is the final answer.
"""

from __future__ import annotations

import json
import re

from openale.agent.trajectory import ActionFormat, ToolCall

TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
BASH_BLOCK = re.compile(r"```(?:bash|sh|shell|console)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)
STOPS: dict[ActionFormat, list[str]] = {
    "native": [],
    "tool_call_tags": ["</tool_call>"],
    "bash_block": [],
}


class ActionParseError(ValueError):
    """The model tried to act but the action is malformed; the message goes back to it."""


def parse_tool_call_tags(text: str) -> list[ToolCall]:
    calls = []
    for m in TOOL_CALL.finditer(text):
        body = m.group(1).strip()
        try:
            data = json.loads(body)
        except json.JSONDecodeError as e:
            msg = f"<tool_call> does not hold valid JSON ({e.msg}): {body[:200]}"
            raise ActionParseError(msg) from None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ActionParseError('a <tool_call> needs {"name": "...", "arguments": {...}}')
        args = data.get("arguments", data.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                msg = f"the arguments of {data['name']} are not a JSON object"
                raise ActionParseError(msg) from None
        if not isinstance(args, dict):
            raise ActionParseError(f"the arguments of {data['name']} must be a JSON object")
        calls.append(ToolCall(name=data["name"], arguments=args))
    return calls


def parse_bash_block(text: str) -> list[ToolCall]:
    m = BASH_BLOCK.search(text)
    if not m or not m.group(1).strip():
        return []
    return [ToolCall(name="shell", arguments={"command": m.group(1).strip()})]


def parse_actions(text: str, fmt: ActionFormat) -> list[ToolCall]:
    if fmt == "tool_call_tags":
        return parse_tool_call_tags(text)
    if fmt == "bash_block":
        return parse_bash_block(text)
    return []


def format_instructions(fmt: ActionFormat, tool_schemas: list[dict]) -> str:
    """What the system prompt says about acting, for text formats."""
    if fmt == "bash_block":
        return (
            "To act, reply with exactly one fenced code block:\n```bash\n<command>\n```\n"
            "It runs in a persistent bash shell and you will see its output. "
            "When the task is done, reply without a code block."
        )
    if fmt == "tool_call_tags":
        lines = [
            "To act, call one tool per turn by writing:",
            '<tool_call>{"name": "<tool>", "arguments": {...}}</tool_call>',
            "You will see the result. When the task is done, reply without a tool call.",
            "Tools:",
        ]
        for s in tool_schemas:
            f = s["function"]
            lines.append(
                f"- {f['name']}: {f['description']} "
                f"Arguments (JSON schema): {json.dumps(f['parameters'])}"
            )
        return "\n".join(lines)
    return ""
