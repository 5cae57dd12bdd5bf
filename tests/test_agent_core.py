"""The agent loop, action formats, approval, trajectories and the replay model.

The environment here is a real sandbox; the model is the replay model (a real,
deterministic model implementation), so every run is exact.
"""

import json
from pathlib import Path

import pytest

from openale.agent.actions import ActionParseError, parse_bash_block, parse_tool_call_tags
from openale.agent.approval import ApprovalPolicy, Rule
from openale.agent.environment import SandboxEnvironment
from openale.agent.loop import Agent, AgentConfig
from openale.agent.models.replay import RecordingModel, ReplayModel
from openale.agent.tools.base import ToolOutput, ToolRegistry
from openale.agent.trajectory import (
    Chunk,
    ToolCall,
    ToolResult,
    Trajectory,
    TurnMessages,
    export_openai_jsonl,
    export_parquet,
    load,
    save,
)


class Shell:
    """A minimal shell tool over the environment (the real tool set is tested elsewhere)."""

    name, description, read_only = "shell", "run a command", False
    parameters = {
        "type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"],
        "additionalProperties": False,
    }

    def run(self, args, ctx):
        r = ctx.env.shell(args["command"], timeout=args.get("timeout", 60))
        return ToolOutput(r.output, exit_code=r.exit_code, is_error=r.exit_code != 0)


class Look:
    name, description, read_only = "look", "read-only peek", True
    parameters = {"type": "object", "properties": {}, "additionalProperties": False}

    def run(self, args, ctx):
        return ToolOutput("nothing to see")


def replay(tmp_path: Path, *responses: dict) -> ReplayModel:
    path = tmp_path / f"replay-{len(list(tmp_path.iterdir()))}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in responses))
    return ReplayModel(path)


def call(name: str, **args) -> dict:
    return {"tool_calls": [{"name": name, "arguments": args}]}


@pytest.fixture(scope="module")
def env():
    from openale.sandbox import Sandbox, SandboxSpec

    with Sandbox.create(SandboxSpec(image="openale/debian:bookworm")) as sb:
        yield SandboxEnvironment(sb)


def agent(model, **config) -> Agent:
    return Agent(model, ToolRegistry([Shell(), Look()]), AgentConfig(**config))


# -- action formats -------------------------------------------------------------------


def test_tool_call_tags_are_parsed_and_malformed_ones_explained():
    text = 'I will look.\n<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call>'
    [c] = parse_tool_call_tags(text)
    assert (c.name, c.arguments) == ("shell", {"command": "ls"})
    [c] = parse_tool_call_tags('<tool_call>{"name": "x", "arguments": "{\\"a\\": 1}"}')
    assert c.arguments == {"a": 1}  # a stop string cut the closing tag; args as a JSON string
    with pytest.raises(ActionParseError, match="valid JSON"):
        parse_tool_call_tags("<tool_call>{name: shell}</tool_call>")
    with pytest.raises(ActionParseError, match="needs"):
        parse_tool_call_tags('<tool_call>["shell"]</tool_call>')
    assert parse_tool_call_tags("no action here") == []


def test_bash_blocks_become_shell_calls():
    [c] = parse_bash_block("Let me count.\n```bash\nwc -l /app/data.txt\n```\nthen more")
    assert c.name == "shell" and c.arguments == {"command": "wc -l /app/data.txt"}
    assert parse_bash_block("```\necho untagged\n```")[0].arguments["command"] == "echo untagged"
    assert parse_bash_block("The answer is 42.") == []


# -- approval -------------------------------------------------------------------------


def test_approval_modes_and_rules():
    rules = [
        Rule(tool="shell", pattern=r"rm\s+-rf", decision="deny"),
        Rule(tool="shell", pattern=r"^git push", decision="ask"),
    ]
    default = ApprovalPolicy(rules=rules)
    assert (
        default.decide("shell", {"command": "rm -rf /"}, read_only=False, sandboxed=True) == "deny"
    )
    assert default.decide("shell", {"command": "ls"}, read_only=False, sandboxed=True) == "allow"
    assert default.decide("shell", {"command": "ls"}, read_only=False, sandboxed=False) == "ask"
    assert (
        default.decide("shell", {"command": "git push"}, read_only=False, sandboxed=True) == "ask"
    )
    plan = ApprovalPolicy(mode="plan")
    assert plan.decide("look", {}, read_only=True, sandboxed=False) == "allow"
    assert plan.decide("shell", {"command": "ls"}, read_only=False, sandboxed=True) == "deny"
    yolo = ApprovalPolicy(mode="yolo", rules=rules)
    assert (
        yolo.decide("shell", {"command": "git push"}, read_only=False, sandboxed=False) == "allow"
    )
    assert yolo.decide("shell", {"command": "rm -rf x"}, read_only=False, sandboxed=False) == "deny"


# -- the loop -------------------------------------------------------------------------


def test_a_run_acts_observes_and_completes(env, tmp_path):
    model = replay(
        tmp_path,
        call("shell", command="cd /tmp && echo hi > f && cat f"),
        call("shell", command="pwd"),
        {"text": "Wrote f in /tmp."},
    )
    traj = agent(model).run("write f", env, task_id="t1")
    assert traj.outcome == "completed" and traj.final_answer == "Wrote f in /tmp."
    assert [c.tool_results[0].output for c in traj.chunks[:2]] == ["hi\n", "/tmp\n"]
    msgs = traj.messages()
    assert [m["role"] for m in msgs] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert msgs[3]["tool_call_id"] == traj.chunks[0].tool_calls[0].id


def test_text_action_formats_run_the_same_loop(env, tmp_path):
    model = replay(tmp_path, {"text": "```bash\necho from-a-block\n```"}, {"text": "Done."})
    traj = agent(model, action_format="bash_block").run("say it", env)
    assert traj.outcome == "completed"
    assert traj.chunks[0].tool_results[0].output == "from-a-block\n"
    assert traj.messages()[3]["role"] == "user"  # observations come back as user turns
    model = replay(
        tmp_path,
        {
            "text": '<tool_call>{"name": "shell", "arguments": '
            '{"command": "echo tagged"}}</tool_call>'
        },
        {"text": "<tool_call>{broken</tool_call>"},
        {"text": "Done."},
    )
    traj = agent(model, action_format="tool_call_tags").run("say it", env)
    assert traj.chunks[0].tool_results[0].output == "tagged\n"
    assert traj.chunks[1].tool_results[0].is_error  # the parse error went back to the model
    assert traj.outcome == "completed"


def test_budgets_and_failure_caps(env, tmp_path):
    many = [call("shell", command=f"echo {i}") for i in range(5)]
    traj = agent(replay(tmp_path, *many), max_turns=3).run("loop", env)
    assert traj.outcome == "max_turns" and len(traj.chunks) == 3

    same = [call("shell", command="echo same")] * 5
    traj = agent(replay(tmp_path, *same), max_repeats=3).run("loop", env)
    assert traj.outcome == "error" and "repeated 3 times" in traj.error

    failing = [call("shell", command=f"exit {i + 1}") for i in range(4)]
    traj = agent(replay(tmp_path, *failing), max_consecutive_errors=2).run("fail", env)
    assert traj.outcome == "error" and "2 consecutive failed" in traj.error

    bad_args = [call("shell", cmd="ls"), {"text": "ok"}]
    traj = agent(replay(tmp_path, *bad_args)).run("typo", env)
    assert "invalid arguments for shell" in traj.chunks[0].tool_results[0].output

    traj = agent(replay(tmp_path, call("shell", command="sleep 30")), max_time_s=1).run("t", env)
    assert traj.outcome == "timeout"
    traj = agent(replay(tmp_path, call("shell", command="true"))).run("model runs dry", env)
    assert traj.outcome == "error" and "responses replayed" in traj.error


def test_denied_calls_are_recorded_not_silent(env, tmp_path):
    model = replay(tmp_path, call("shell", command="touch /tmp/x"), call("look"), {"text": "ok"})
    a = Agent(model, ToolRegistry([Shell(), Look()]), approval=ApprovalPolicy(mode="plan"))
    traj = a.run("plan only", env)
    assert traj.chunks[0].tool_results[0].is_error
    assert "denied" in traj.chunks[0].tool_results[0].output
    assert traj.metadata["denied_calls"] == [
        {"tool": "shell", "arguments": {"command": "touch /tmp/x"}}
    ]
    assert not traj.chunks[1].tool_results[0].is_error  # read-only tools still run


def test_compression_keeps_history_and_shrinks_the_prompt(env, tmp_path):
    # Each turn's observation is ~300 tokens by the replay model's count; the
    # prompt passes half of a 4000-token window after seven turns.
    responses = [call("shell", command=f"printf '%01200d' {i}") for i in range(7)]
    responses.append({"text": "Goal: print things. Done so far: 0..6. Open items: none."})
    responses.append({"text": "finished"})
    a = agent(
        replay(tmp_path, *responses), context_window=4000, compress_at=0.5, keep_recent_turns=2
    )
    traj = a.run("print a lot", env)
    assert traj.outcome == "completed" and len(traj.chunks) == 8
    [comp] = traj.compressions
    assert comp.upto == 5 and comp.summary.startswith("Goal:")
    assert comp.prompt_tokens_after < comp.prompt_tokens_before / 2
    prompt = a.prompt(traj)
    assert any("Summary of the work so far" in str(m["content"]) for m in prompt)
    assert len(traj.messages()) == len(prompt) + 2 * 5 - 1  # history kept whole


def test_resume_continues_a_session(env, tmp_path):
    model = replay(
        tmp_path,
        call("shell", command="export K=1"),
        {"text": "set"},
        call("shell", command="echo $K"),
        {"text": "it is 1"},
    )
    a = agent(model)
    first = a.run("set K", env)
    second = a.run("what is K?", env, resume=first)
    assert second.id == first.id and second.outcome == "completed"
    assert second.final_answer == "it is 1" and len(second.chunks) == 4
    roles = [m["role"] for m in second.messages()]
    assert roles.count("user") == 2


def test_the_prompt_renders_each_turn_once_as_it_would_afresh(env, tmp_path):
    responses = [call("shell", command="export K=1"), {"text": "set"}]
    responses += [call("shell", command="echo $K"), {"text": "it is 1"}]
    model = RecordingModel(replay(tmp_path, *responses), tmp_path / "sent.jsonl")
    a = agent(model)
    second = a.run("what is K?", env, resume=a.run("set K", env))
    sent = [json.loads(line)["messages"] for line in (tmp_path / "sent.jsonl").open()]
    assert sent[-1] == second.head() + second.turn_messages(0, 3)  # the follow-up is in
    turns, n = TurnMessages(second), len(second.chunks)
    for start in range(n + 1):
        for end in range(start, n + 1):
            assert turns(start, end) == second.turn_messages(start, end), (start, end)


def test_record_then_replay_reproduces_the_run(env, tmp_path):
    original = replay(tmp_path, call("shell", command="echo recorded"), {"text": "done"})
    recorder = RecordingModel(original, tmp_path / "rec" / "calls.jsonl")
    first = agent(recorder).run("rec", env)
    again = agent(ReplayModel(tmp_path / "rec" / "calls.jsonl")).run("rec", env)
    assert [c.text for c in again.chunks] == [c.text for c in first.chunks]
    assert again.chunks[0].tool_results[0].output == "recorded\n"
    row = json.loads((tmp_path / "rec" / "calls.jsonl").read_text().splitlines()[0])
    assert row["messages"][1]["content"] == "rec"


# -- trajectories ---------------------------------------------------------------------


def test_trajectory_files_and_exporters(tmp_path):
    call_ = ToolCall(name="shell", arguments={"command": "ls"})
    t = Trajectory(
        task_id="t",
        instruction="list",
        system_prompt="sys",
        outcome="completed",
        chunks=[
            Chunk(
                index=0,
                tool_calls=[call_],
                token_ids=[1, 2],
                logprobs=[-0.1, -0.2],
                policy_version=3,
                tool_results=[ToolResult(call_id=call_.id, name="shell", output="a\n")],
            ),
            Chunk(index=1, text="a"),
        ],
    )
    path = save([t, t], tmp_path / "t.jsonl", append=False)
    loaded = list(load(path))
    assert loaded[0] == t and len(loaded) == 2
    assert loaded[0].chunks[0].logprobs == [-0.1, -0.2]
    assert export_openai_jsonl([t], tmp_path / "ft.jsonl") == 1
    msgs = json.loads((tmp_path / "ft.jsonl").read_text())["messages"]
    assert msgs[2]["tool_calls"][0]["function"]["name"] == "shell"
    assert export_parquet([t], tmp_path / "t.parquet") == 1
    import datasets

    ds = datasets.Dataset.from_parquet(str(tmp_path / "t.parquet"))
    assert ds[0]["task_id"] == "t" and Trajectory.model_validate_json(ds[0]["trajectory"]) == t
    (tmp_path / "bad.jsonl").write_text('{"format": "other/9"}\n')
    with pytest.raises(ValueError, match="format"):
        list(load(tmp_path / "bad.jsonl"))


def test_a_subagent_works_on_its_own_and_is_linked(env, tmp_path):
    from openale.agent.subagents import TaskTool, load_subagents

    agents_dir = tmp_path / ".ale" / "agents"
    agents_dir.mkdir(parents=True)
    (agents_dir / "counter.md").write_text(
        "---\nname: counter\ndescription: counts files\ntools: [shell]\nmax_turns: 3\n---\n"
        "You count files and report the number.\n"
    )
    specs = load_subagents(agents_dir)
    assert specs["counter"].tools == ["shell"] and specs["counter"].max_turns == 3
    model = replay(
        tmp_path,
        call("task", agent="counter", prompt="count /etc/*.conf"),
        call("shell", command="ls /etc/*.conf | wc -l"),
        {"text": "There are N."},
        {"text": "The sub-agent counted them."},
    )
    parent = Agent(
        model, ToolRegistry([Shell(), Look(), TaskTool(specs)]), side_chain_dir=tmp_path / "side"
    )
    traj = parent.run("how many conf files?", env)
    assert traj.outcome == "completed"
    report = traj.chunks[0].tool_results[0].output
    assert report.startswith("[counter — completed, 2 turns]") and "There are N." in report
    [child_id] = traj.children
    child = next(load(tmp_path / "side" / f"{child_id}.jsonl"))
    assert child.parent_id == traj.id and child.system_prompt.startswith("You count files")
    assert [c.name for c in child.chunks[0].tool_calls] == ["shell"]


def test_a_run_can_hand_its_subagents_to_another_runner(env, tmp_path):
    from openale.agent.subagents import SubagentSpec, TaskTool

    specs = {"counter": SubagentSpec(name="counter", description="counts", prompt="Count.")}
    asked = []

    def elsewhere(spec, prompt):
        asked.append((spec.name, prompt))
        return f"{spec.name} ran elsewhere"

    model = replay(tmp_path, call("task", agent="counter", prompt="count /etc"), {"text": "ok"})
    parent = Agent(model, ToolRegistry([Shell(), TaskTool(specs)]), side_chain_dir=tmp_path / "s")
    traj = parent.run("how many?", env, subagents=elsewhere)

    assert traj.outcome == "completed" and traj.final_answer == "ok"
    assert asked == [("counter", "count /etc")]
    assert traj.chunks[0].tool_results[0].output == "counter ran elsewhere"
    assert traj.children == [] and not (tmp_path / "s").exists()  # no child ran here
