"""The ``todo`` tool: the model's own plan, kept in the run's state."""

from __future__ import annotations

from typing import Any

from openale.agent.tools.base import ToolContext, ToolOutput

STATUSES = ("pending", "in_progress", "done")
_MARKS = {"pending": "[ ]", "in_progress": "[>]", "done": "[x]"}


def render_todo(items: list[dict[str, str]]) -> str:
    """The list as the model sees it: one ``[x]``/``[>]``/``[ ]`` line per item."""
    if not items:
        return "Todo list is empty."
    done = sum(item["status"] == "done" for item in items)
    lines = [f"Todo list ({done}/{len(items)} done):"]
    lines += [f"{_MARKS[item['status']]} {item['content']}" for item in items]
    return "\n".join(lines)


class TodoTool:
    name = "todo"
    description = (
        "Keep a todo list for a task with several steps: send the whole list each time "
        "(it replaces the previous one), each item with a status of pending, "
        "in_progress or done. Mark one item in_progress while you work on it and done "
        "as soon as it is finished. Returns the list. Skip it for simple tasks."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "description": "The complete, updated list.",
                "items": {
                    "type": "object",
                    "properties": {
                        "content": {"type": "string", "minLength": 1},
                        "status": {"type": "string", "enum": list(STATUSES)},
                    },
                    "required": ["content", "status"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    }
    read_only = True  # it changes only the agent's state, never the environment

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        items = [{"content": i["content"], "status": i["status"]} for i in args["items"]]
        ctx.state["todo"] = items
        return ToolOutput(render_todo(items))
