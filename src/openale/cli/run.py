"""``ale run``: the agent at a terminal (interactive) or in scripts (headless ``-p``)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax

from openale.agent.approval import ApprovalPolicy
from openale.agent.environment import Environment, SandboxEnvironment
from openale.agent.loop import Agent, AgentConfig
from openale.agent.models.factory import make_model
from openale.agent.settings import AgentSettings, load_settings, project_memory
from openale.agent.tools.base import ToolRegistry
from openale.agent.toolset import run_tools
from openale.agent.trajectory import Trajectory, load, save
from openale.cli.common import UsageError, console, err_console, user_errors

EXIT_OK, EXIT_FAILED, EXIT_DENIED = 0, 1, 3


def _emit(fmt: str, kind: str, data: dict[str, Any]) -> None:
    """Progress for humans (text on stderr) or machines (stream-json on stdout)."""
    if fmt == "stream-json":
        payload: dict[str, Any] = {"type": kind}
        for key, value in data.items():
            payload[key] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
        if kind == "end":
            payload = {
                "type": "end",
                "trajectory": data["trajectory"].id,
                "outcome": data["trajectory"].outcome,
            }
        print(json.dumps(payload), flush=True)
        return
    if fmt != "text":
        return
    if kind == "tool":  # shown as it starts: a long command is visibly running
        call = data["call"]
        err_console.print(
            f"[bold]{escape(call.name)}[/] {escape(json.dumps(call.arguments)[:300])}"
        )
    elif kind == "chunk":
        chunk = data["chunk"]
        if chunk.text.strip():
            err_console.print(
                Panel(escape(chunk.text.strip()), title=f"turn {chunk.index}", border_style="blue")
            )
        for call, result in zip(chunk.tool_calls, chunk.tool_results, strict=False):
            if call.name == "edit" and not result.is_error:
                err_console.print(Syntax(result.output[-4000:], "diff", theme="ansi_dark"))
            else:
                style = "red" if result.is_error else "green"
                err_console.print(f"[{style}]{escape(result.output[-1500:])}[/]", highlight=False)
        u, total = chunk.usage, data.get("total")
        counter = f"tokens {u.prompt_tokens}+{u.completion_tokens}"
        if total is not None:
            counter += (
                f" · session {total.prompt_tokens + total.completion_tokens} tokens, "
                f"${total.cost_usd:.4f}"
            )
        err_console.print(f"[dim]{counter}[/]")
    elif kind == "denied":
        err_console.print(f"[red]denied[/] {escape(data['call'].name)}")
    elif kind == "compressed":
        c = data["compression"]
        err_console.print(
            f"[yellow]context compressed[/] {c.prompt_tokens_before} -> "
            f"{c.prompt_tokens_after} tokens"
        )


def _environment(settings: AgentSettings, workspace: Path | None) -> tuple[Environment, Any]:
    if workspace is not None:
        from openale.agent.host import HostEnvironment

        return HostEnvironment(workspace), None
    from openale.sandbox import Sandbox, SandboxSpec

    sandbox = Sandbox.create(SandboxSpec(image=settings.image, network=settings.network))
    return SandboxEnvironment(sandbox), sandbox


def _streams(model: str) -> bool:
    return not model.startswith(("replay:", "local:")) and model not in ("smollm2",)


def _agent(
    settings: AgentSettings,
    workspace: Path | None,
    fmt: str,
    record: str | None,
    interactive: bool,
    tools: ToolRegistry,
) -> Agent:
    streaming = {"on_text": lambda text: err_console.print(text, end="", highlight=False)}
    model = make_model(
        settings.model,
        base_url=settings.base_url,
        api_key=settings.api_key,
        record=record,
        # Streamed text for people watching; only OpenAI-compatible models stream.
        **(streaming if interactive and fmt == "text" and _streams(settings.model) else {}),
    )
    config = AgentConfig(
        max_turns=settings.max_turns,
        max_time_s=settings.timeout_s,
        action_format=settings.action_format,
        context_window=settings.context_window,
        compress_at=settings.compress_at,
        extra_instructions=project_memory(workspace),
    )
    asker = None
    if interactive:

        def asker(tool: str, args: dict) -> bool:
            return typer.confirm(f"allow {tool} {json.dumps(args)[:200]}?", default=False)

    return Agent(
        model,
        tools,
        config,
        side_chain_dir=settings.trajectories_dir,
        approval=ApprovalPolicy(mode=settings.approval_mode, rules=settings.rules),
        asker=asker,
        on_event=lambda kind, data: _emit(fmt, kind, data),
    )


def run_command(
    prompt: Annotated[
        str | None, typer.Option("-p", "--prompt", help="Run headless on this prompt.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model name, replay:FILE or local:smollm2.")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint.")] = None,
    output_format: Annotated[str, typer.Option(help="text | json | stream-json.")] = "text",
    output_file: Annotated[Path | None, typer.Option(help="Also write the result here.")] = None,
    max_turns: Annotated[int | None, typer.Option(help="Turn budget.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Wall-time budget in seconds.")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue a saved session (its id).")] = None,
    task: Annotated[
        Path | None, typer.Option(help="Run a task folder: build, act, verify.")
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            help="Act on this host directory instead of a sandbox (opt-in; asks approval)."
        ),
    ] = None,
    image: Annotated[str | None, typer.Option(help="Sandbox image.")] = None,
    approval_mode: Annotated[str | None, typer.Option(help="default | auto | plan | yolo.")] = None,
    action_format: Annotated[
        str | None, typer.Option(help="native | tool_call_tags | bash_block.")
    ] = None,
    record: Annotated[
        str | None,
        typer.Option(
            help="Record the model's responses to a JSONL file (replay with replay:FILE)."
        ),
    ] = None,
) -> None:
    """Run the openale agent.

    Headless: `ale run -p "fix the failing test" --output-format json`. Without
    -p: an interactive session (Ctrl-C stops the current step, not the session).
    Tools act in a fresh sandbox unless --workspace names a host directory.
    Exit codes: 0 completed, 1 not completed (error, timeout, max turns),
    3 a tool call was denied in headless mode, 2 bad usage.
    """
    if output_format not in ("text", "json", "stream-json"):
        raise typer.BadParameter("--output-format must be text, json or stream-json")
    with user_errors():
        settings = load_settings(
            workspace,
            model=model,
            base_url=base_url,
            max_turns=max_turns,
            timeout_s=timeout,
            image=image,
            approval_mode=approval_mode,
            action_format=action_format,
        )
        if task is not None:
            raise typer.Exit(_run_task(task, settings, output_format))
        if prompt is None and not sys.stdin.isatty():
            prompt = sys.stdin.read()
        interactive = prompt is None
        previous = _load_session(settings, resume) if resume else None
        with contextlib.ExitStack() as stack:
            tools = stack.enter_context(run_tools(settings, workspace))
            agent = _agent(settings, workspace, output_format, record, interactive, tools)
            env, sandbox = _environment(settings, workspace)
            stack.callback(env.close)
            if sandbox is not None:
                stack.callback(sandbox.close)
            if interactive:
                traj = _interactive(agent, env, settings, previous)
            else:
                traj = agent.run(prompt, env, resume=previous)
                save([traj], settings.trajectories_dir / f"{traj.id}.jsonl", append=False)
    # Interactive sessions already showed everything; the exit code still tells.
    raise typer.Exit(_report(traj, "none" if interactive else output_format, output_file))


def _load_session(settings: AgentSettings, session: str) -> Trajectory:
    path = settings.trajectories_dir / f"{session}.jsonl"
    if not path.exists():
        raise UsageError(f"no saved session {session!r} in {settings.trajectories_dir}")
    return list(load(path))[-1]


def _interactive(
    agent: Agent, env: Environment, settings: AgentSettings, traj: Trajectory | None
) -> Trajectory:
    console.print("[bold]openale[/] — type a request; Ctrl-D or /exit quits.")
    while True:
        try:
            line = console.input("[bold cyan]> [/]").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if line in ("/exit", "/quit"):
            break
        if not line:
            continue
        try:
            if traj is None:
                traj = agent.run(line, env)
            else:
                traj = agent.run(line, env, resume=traj)
        except KeyboardInterrupt:
            console.print("[yellow]stopped the current step[/]")
            continue
        u = traj.usage
        if traj.error:
            console.print(f"[yellow]{escape(traj.error)}[/]")
        console.print(
            f"[dim]{traj.outcome}; {u.prompt_tokens}+{u.completion_tokens} tokens, "
            f"${u.cost_usd:.4f}; session {traj.id}[/]"
        )
        save([traj], settings.trajectories_dir / f"{traj.id}.jsonl", append=False)
    if traj is None:
        raise typer.Exit(0)
    return traj


def _report(traj: Trajectory, fmt: str, output_file: Path | None) -> int:
    denied = traj.metadata.get("denied_calls", [])
    result = {
        "session": traj.id,
        "outcome": traj.outcome,
        "error": traj.error,
        "answer": traj.final_answer,
        "turns": len(traj.chunks),
        "denied": denied,
        "usage": traj.usage.model_dump(),
        "reward": traj.reward,
    }
    if fmt == "json":
        print(json.dumps(result))
    elif fmt == "text":
        print(traj.final_answer or f"[{traj.outcome}] {traj.error or ''}".strip())
    if output_file is not None:
        output_file.write_text(json.dumps(result) + "\n")
    if denied:
        err_console.print(f"[red]{len(denied)} tool call(s) were denied[/]")
        return EXIT_DENIED
    return EXIT_OK if traj.outcome == "completed" else EXIT_FAILED


def _run_task(path: Path, settings: AgentSettings, fmt: str) -> int:
    from openale.bench.episode import EpisodeRunner
    from openale.bench.openale_agent import OpenaleAgent
    from openale.bench.trial import run_trial
    from openale.tasks import load_task

    task = load_task(path)
    agent = OpenaleAgent(
        model=settings.model,
        base_url=settings.base_url,
        action_format=settings.action_format,
        max_turns=settings.max_turns,
        context_window=settings.context_window,
    )
    out = settings.trajectories_dir.parent / "runs"
    row = run_trial(task, agent, 0, out, EpisodeRunner())
    if fmt == "json":
        print(row.model_dump_json())
    else:
        console.print(
            f"{task.name}: reward {row.reward}, passed {row.passed}"
            + (f", error ({row.error_stage}): {row.error}" if row.error else "")
        )
        if row.trajectory:
            console.print(f"trajectory: {row.trajectory}")
    return EXIT_OK if row.error is None else EXIT_FAILED
