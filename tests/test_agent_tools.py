"""The built-in agent tools, in a real sandbox and on a host directory."""

from __future__ import annotations

import itertools
import os

import jsonschema
import pytest

from openale.agent.environment import SandboxEnvironment
from openale.agent.host import HostEnvironment, PathOutsideWorkspaceError
from openale.agent.tools.base import (
    ToolArgumentError,
    ToolContext,
    ToolOutput,
    ToolRegistry,
    ToolSchemaError,
)
from openale.agent.tools.builtin import FINISH, TOOLS_BY_NAME, default_tools
from tests.conftest import TOOLBOX_IMAGE

REGISTRY = ToolRegistry(default_tools())
_dirs = itertools.count()


@pytest.fixture(scope="module")
def toolbox(engine):
    from openale.sandbox import Sandbox, SandboxSpec

    with Sandbox.create(SandboxSpec(image=TOOLBOX_IMAGE)) as sb:
        yield sb


@pytest.fixture
def workspace(tmp_path):
    """A host workspace directory, with room beside it for files it must not reach."""
    (tmp_path / "ws").mkdir()
    return tmp_path / "ws"


@pytest.fixture(params=["sandbox", "host"])
def env(request):
    """Each test gets a fresh shell; in the shared sandbox, files go under ``base``."""
    if request.param == "sandbox":
        environment = SandboxEnvironment(request.getfixturevalue("toolbox"))
    else:
        environment = HostEnvironment(request.getfixturevalue("workspace"))
    yield environment
    environment.close()


@pytest.fixture
def sandbox_env(toolbox):
    environment = SandboxEnvironment(toolbox)
    yield environment
    environment.close()


@pytest.fixture
def base() -> str:
    """A directory name no other test uses (the sandbox is shared by the module)."""
    return f"case{next(_dirs)}"


def call(env, name: str, ctx: ToolContext | None = None, **args) -> ToolOutput:
    """Validate ``args`` as the agent loop does, then run the tool."""
    tool = REGISTRY.validate(name, args)
    return tool.run(args, ctx or ToolContext(env=env))


# -- shell ------------------------------------------------------------------------------


def test_shell_state_persists_between_calls(env, base):
    out = call(env, "shell", command=f"mkdir -p {base}/sub && cd {base}/sub && export ALE_X=7")
    assert not out.is_error and out.exit_code == 0
    out = call(env, "shell", command='pwd; echo "x=$ALE_X"')
    assert out.output.splitlines()[0].endswith(f"/{base}/sub")
    assert "x=7" in out.output and "[exit code: 0]" in out.output


def test_shell_reports_exit_code_and_empty_output(env):
    out = call(env, "shell", command="echo oops >&2; (exit 3)")
    assert out.exit_code == 3 and not out.is_error
    assert out.output == "oops\n[exit code: 3]"
    assert call(env, "shell", command="true").output == "(no output)\n[exit code: 0]"


def test_shell_timeout_is_reported_and_the_session_survives(env):
    call(env, "shell", command="export KEEP=yes")
    out = call(env, "shell", command="echo started; sleep 60; echo never", timeout=1)
    assert out.is_error and out.exit_code == 130
    assert "started" in out.output and "never" not in out.output
    assert "timed out after 1s" in out.output and "still alive" in out.output
    assert call(env, "shell", command="echo $KEEP").output.startswith("yes\n")


def test_host_shell_stops_a_command_list_and_restarts_a_hung_shell(workspace):
    with HostEnvironment(workspace) as env:
        # SIGINT ends the whole command line, as Ctrl-C would.
        out = call(env, "shell", command="sleep 60; echo next", timeout=1)
        assert out.exit_code == 130 and "next" not in out.output
        # A loop of builtins runs in the shell itself: only a new shell stops it.
        call(env, "shell", command="cd /tmp")
        out = call(env, "shell", command="while :; do :; done", timeout=1)
        assert out.is_error and out.exit_code is None
        assert "fresh shell" in out.output
        assert call(env, "shell", command="pwd").output.startswith(env.workdir + "\n")
        # `exit` ends the shell; the next command gets a new one.
        assert call(env, "shell", command="exit 4").exit_code == 4
        assert call(env, "shell", command="echo back").output.startswith("back\n")


def test_host_shell_leaves_background_jobs_running(workspace):
    with HostEnvironment(workspace) as env:
        call(env, "shell", command="sleep 60 & echo $! > bg.pid")
        call(env, "shell", command="sleep 60", timeout=0.5)
        pid = int((workspace / "bg.pid").read_text())
        os.kill(pid, 0)  # still there: only the timed-out command was stopped


# -- read_file / write_file / edit ---------------------------------------------------------


def test_write_then_read_round_trip(env, base):
    text = "héllo wörld ✓\nsecond line\n"
    out = call(env, "write_file", path=f"{base}/deep/er/f.txt", content=text)
    assert out.output == f"Created {base}/deep/er/f.txt ({len(text.encode())} bytes)"
    assert env.read(f"{base}/deep/er/f.txt") == text.encode()
    out = call(env, "read_file", path=f"{base}/deep/er/f.txt")
    assert out.output == "     1\théllo wörld ✓\n     2\tsecond line"
    out = call(env, "write_file", path=f"{base}/deep/er/f.txt", content="")
    assert out.output.startswith("Overwrote") and "(0 bytes)" in out.output
    out = call(env, "write_file", path=f"{base}/deep", content="x")
    assert out.is_error and "is a directory" in out.output
    assert call(env, "read_file", path=f"{base}/deep/er/f.txt").output.endswith("is empty)")


def test_read_file_numbers_lines_and_reads_ranges(env, base):
    env.write(f"{base}/ten.txt", "".join(f"line {i}\n" for i in range(1, 11)))
    whole = call(env, "read_file", path=f"{base}/ten.txt").output.splitlines()
    assert len(whole) == 10 and whole[0] == "     1\tline 1" and whole[9] == "    10\tline 10"
    part = call(env, "read_file", path=f"{base}/ten.txt", start_line=3, end_line=4)
    assert part.output == "     3\tline 3\n     4\tline 4\n[lines 3-4 of 10]"
    tail = call(env, "read_file", path=f"{base}/ten.txt", start_line=9, end_line=99)
    assert tail.output.splitlines()[:2] == ["     9\tline 9", "    10\tline 10"]
    past = call(env, "read_file", path=f"{base}/ten.txt", start_line=11)
    assert past.is_error and "has 10 lines" in past.output


def test_read_file_caps_long_files_and_says_how_to_go_on(sandbox_env, base):
    sandbox_env.write(f"{base}/long.txt", "".join(f"{i}\n" for i in range(1, 2501)))
    out = call(sandbox_env, "read_file", path=f"{base}/long.txt")
    lines = out.output.splitlines()
    assert lines[1999] == "  2000\t2000" and len(lines) == 2001
    assert "start_line=2001" in lines[-1] and "of 2500" in lines[-1]
    wide = call(sandbox_env, "write_file", path=f"{base}/wide.txt", content="x" * 5000)
    assert not wide.is_error
    out = call(sandbox_env, "read_file", path=f"{base}/wide.txt")
    assert len(out.output) < 2100 and "3000 more characters" in out.output


def test_read_file_errors_are_clear(env, base):
    env.write(f"{base}/bin.dat", b"\x7fELF\x00\x01\x02")
    env.write(f"{base}/dir/inner.txt", "x")
    env.write(f"{base}/empty.txt", "")
    missing = call(env, "read_file", path=f"{base}/nope.txt")
    assert missing.is_error and "no such file" in missing.output
    binary = call(env, "read_file", path=f"{base}/bin.dat")
    assert binary.is_error and "binary file (7 bytes)" in binary.output
    directory = call(env, "read_file", path=f"{base}/dir")
    assert directory.is_error and "is a directory" in directory.output
    empty = call(env, "read_file", path=f"{base}/empty.txt")
    assert not empty.is_error and "empty" in empty.output


def test_edit_replaces_once_and_returns_a_diff(env, base):
    path = f"{base}/m.py"
    env.write(path, "def f():\n    return 1\n\n\ndef g():\n    return 1\n")
    out = call(
        env,
        "edit",
        path=path,
        old_string="def g():\n    return 1",
        new_string="def g():\n    return 2",
    )
    assert not out.is_error
    assert out.output.startswith(f"Edited {path}: replaced 1 occurrence\n--- a/{path}\n+++ b/")
    assert "-    return 1\n+    return 2" in out.output
    assert env.read(path).decode() == "def f():\n    return 1\n\n\ndef g():\n    return 2\n"


def test_edit_reports_how_many_matches_it_found(env, base):
    path = f"{base}/m.py"
    original = "a = 1\nb = 1\nc = 1\n"
    env.write(path, original)
    none = call(env, "edit", path=path, old_string="a = 2", new_string="a = 3")
    assert none.is_error and "0 matches" in none.output
    many = call(env, "edit", path=path, old_string="= 1", new_string="= 9")
    assert many.is_error and "matches 3 times" in many.output
    assert env.read(path).decode() == original
    every = call(env, "edit", path=path, old_string="= 1", new_string="= 9", replace_all=True)
    assert "replaced 3 occurrences" in every.output
    assert env.read(path).decode() == "a = 9\nb = 9\nc = 9\n"
    missing = call(env, "edit", path=f"{base}/nope.py", old_string="x", new_string="y")
    assert missing.is_error and "no such file" in missing.output


def test_edit_matches_plain_newlines_in_a_crlf_file(sandbox_env, base):
    sandbox_env.write(f"{base}/w.txt", "one\r\ntwo\r\n")
    out = call(sandbox_env, "edit", path=f"{base}/w.txt", old_string="one\ntwo", new_string="1\n2")
    assert not out.is_error
    assert sandbox_env.read(f"{base}/w.txt") == b"1\r\n2\r\n"


# -- list / glob / grep -------------------------------------------------------------------


def _tree(env, base: str) -> None:
    for path, content in {
        "top.py": "import os\n",
        "README.md": "# readme\n",
        "src/pkg/mod.py": "def hello():\n    return 'Hello'\n",
        "src/pkg/data.txt": "-x marks\nnothing\n",
        "src/pkg/deep/more/leaf.py": "HELLO = 1\n",
        "node_modules/lib/index.py": "hello\n",
        "odd dir/we:ird.py": "hello = 'colon'\n",
    }.items():
        env.write(f"{base}/{path}", content)


def test_glob_matches_any_depth_sorted(env, base):
    _tree(env, base)
    out = call(env, "glob", pattern="**/*.py", path=base)
    assert out.output.splitlines() == [
        f"{base}/odd dir/we:ird.py",
        f"{base}/src/pkg/deep/more/leaf.py",
        f"{base}/src/pkg/mod.py",
        f"{base}/top.py",
    ]
    assert call(env, "glob", pattern=f"{base}/*.py").output == f"{base}/top.py"
    braces = call(env, "glob", pattern="src/**/*.{txt,md}", path=base)
    assert braces.output == f"{base}/src/pkg/data.txt"
    assert "No files match" in call(env, "glob", pattern="*.rs", path=base).output
    named = call(env, "glob", pattern="node_modules/**/*.py", path=base)
    assert named.output == f"{base}/node_modules/lib/index.py"


def test_grep_returns_path_line_text(env, base):
    _tree(env, base)
    out = call(env, "grep", pattern="hello", path=base)
    assert set(out.output.splitlines()) == {
        f"{base}/src/pkg/mod.py:1:def hello():",
        f"{base}/odd dir/we:ird.py:1:hello = 'colon'",
    }  # not node_modules/lib/index.py: skipped
    icase = call(env, "grep", pattern="hel+o", path=base, ignore_case=True, glob="*.py")
    assert set(icase.output.splitlines()) == {
        f"{base}/src/pkg/mod.py:1:def hello():",
        f"{base}/src/pkg/mod.py:2:    return 'Hello'",
        f"{base}/src/pkg/deep/more/leaf.py:1:HELLO = 1",
        f"{base}/odd dir/we:ird.py:1:hello = 'colon'",
    }
    one_file = call(env, "grep", pattern="return", path=f"{base}/src/pkg/mod.py")
    assert one_file.output == f"{base}/src/pkg/mod.py:2:    return 'Hello'"


def test_grep_takes_patterns_that_look_like_options(env, base):
    _tree(env, base)
    out = call(env, "grep", pattern="-x", path=base)
    assert out.output == f"{base}/src/pkg/data.txt:1:-x marks"
    out = call(env, "grep", pattern="--help", path=base)
    assert not out.is_error and out.output.startswith("No matches")


def test_grep_caps_results_and_reports_bad_patterns(sandbox_env, base):
    sandbox_env.write(f"{base}/many.txt", "hit\n" * 50)
    out = call(sandbox_env, "grep", pattern="hit", path=base, max_results=5)
    lines = out.output.splitlines()
    assert lines[:5] == [f"{base}/many.txt:{i}:hit" for i in range(1, 6)]
    assert "stopped at 5 matches" in lines[5] and len(lines) == 6
    bad = call(sandbox_env, "grep", pattern="(unclosed", path=base)
    assert bad.is_error and "Unmatched" in bad.output
    missing = call(sandbox_env, "grep", pattern="x", path=f"{base}/nowhere")
    assert missing.is_error and "no such file" in missing.output


def test_list_shows_a_tree_to_the_given_depth(sandbox_env, base):
    _tree(sandbox_env, base)
    shallow = call(sandbox_env, "list", path=base, depth=1).output.splitlines()
    assert shallow == [
        f"{base}/",
        "  README.md",
        "  node_modules/ (not expanded)",
        "  odd dir/",
        "  src/",
        "  top.py",
    ]
    deeper = call(sandbox_env, "list", path=base, depth=3).output.splitlines()
    assert deeper[deeper.index("  src/") + 1 :][:4] == [
        "    pkg/",
        "      data.txt",
        "      deep/",
        "      mod.py",
    ]
    assert "more/" not in "\n".join(deeper)  # depth 4
    top = call(sandbox_env, "list", depth=1).output.splitlines()
    assert top[0] == "/workspace/" and f"  {base}/" in top
    file = call(sandbox_env, "list", path=f"{base}/top.py")
    assert file.is_error and "not a directory" in file.output


# -- todo / finish / registry ------------------------------------------------------------


def test_todo_replaces_the_list_and_renders_it(sandbox_env):
    ctx = ToolContext(env=sandbox_env)
    items = [
        {"content": "read the failing test", "status": "done"},
        {"content": "fix the parser", "status": "in_progress"},
        {"content": "run the suite", "status": "pending"},
    ]
    out = call(sandbox_env, "todo", ctx, items=items)
    assert out.output == (
        "Todo list (1/3 done):\n[x] read the failing test\n[>] fix the parser\n[ ] run the suite"
    )
    assert ctx.state["todo"] == items
    call(sandbox_env, "todo", ctx, items=[])
    assert ctx.state["todo"] == []


def test_finish_returns_the_answer(sandbox_env):
    assert FINISH == "finish" and TOOLS_BY_NAME[FINISH].read_only
    assert call(sandbox_env, "finish", answer="42").output == "42"
    assert call(sandbox_env, "finish").output == ""


def test_every_tool_has_a_strict_valid_schema():
    assert set(TOOLS_BY_NAME) == {
        "shell",
        "read_file",
        "write_file",
        "edit",
        "list",
        "glob",
        "grep",
        "todo",
        "finish",
    }
    writers = {t.name for t in default_tools() if not t.read_only}
    assert writers == {"shell", "write_file", "edit"}
    for tool in default_tools():
        jsonschema.Draft202012Validator.check_schema(tool.parameters)
        assert tool.parameters["additionalProperties"] is False
        assert len(tool.description) > 80


@pytest.mark.parametrize(
    ("name", "args", "field"),
    [
        ("read_file", {"path": 3}, "path"),
        ("read_file", {"path": "a", "start_line": "2"}, "start_line"),
        ("shell", {"command": "ls", "timeout": "10"}, "timeout"),
        ("edit", {"path": "a", "old_string": "x"}, "new_string"),
        ("grep", {"pattern": "x", "recursive": True}, "recursive"),
        ("todo", {"items": [{"content": "x", "status": "started"}]}, "items/0/status"),
    ],
)
def test_registry_rejects_bad_arguments_naming_the_field(name, args, field):
    with pytest.raises(ToolArgumentError, match=field) as raised:
        REGISTRY.validate(name, args)
    # The model reads the message jsonschema.validate gives (the one before the cache).
    with pytest.raises(jsonschema.ValidationError) as reference:
        jsonschema.validate(args, TOOLS_BY_NAME[name].parameters)
    where = "/".join(str(p) for p in reference.value.absolute_path) or "arguments"
    assert str(raised.value) == f"invalid arguments for {name}: {where}: {reference.value.message}"


def test_a_tool_schema_is_checked_once_when_the_tool_is_added(monkeypatch):
    class Odd:
        name, description, read_only = "odd", "a tool with a broken schema", True
        parameters = {"type": "object", "properties": {"n": {"type": "integr"}}}

        def run(self, args, ctx):
            return ToolOutput("never")

    with pytest.raises(ToolSchemaError, match=r"tool 'odd' .*properties/n/type"):
        ToolRegistry([Odd()])

    checks = []
    real = jsonschema.Draft202012Validator.check_schema
    monkeypatch.setattr(
        jsonschema.Draft202012Validator,
        "check_schema",
        classmethod(lambda cls, schema, **kw: (checks.append(1), real(schema, **kw))[1]),
    )
    registry = ToolRegistry(default_tools())
    for _ in range(3):
        registry.validate("shell", {"command": "ls"})
        with pytest.raises(ToolArgumentError):
            registry.validate("shell", {"command": 1})
    assert checks == []  # compiled before; calls never re-check the schema


# -- host confinement ---------------------------------------------------------------------


def test_host_environment_refuses_paths_outside_the_workspace(workspace, tmp_path):
    (tmp_path / "outside.txt").write_text("secret\n")
    (workspace / "link").symlink_to(tmp_path / "outside.txt")
    with HostEnvironment(workspace) as env:
        with pytest.raises(PathOutsideWorkspaceError):
            env.read("../outside.txt")
        for path in ("../outside.txt", "link", str(tmp_path / "outside.txt")):
            out = call(env, "read_file", path=path)
            assert out.is_error and "outside the workspace" in out.output
        out = call(env, "write_file", path="../escaped.txt", content="x")
        assert out.is_error and not (tmp_path / "escaped.txt").exists()
        out = call(env, "edit", path="link", old_string="secret", new_string="leaked")
        assert out.is_error and (tmp_path / "outside.txt").read_text() == "secret\n"
        inside = call(env, "write_file", path=str(workspace / "ok.txt"), content="ok")
        assert not inside.is_error
    with HostEnvironment(workspace, allow_outside=True) as env:
        assert call(env, "read_file", path="../outside.txt").output == "     1\tsecret"


def test_host_environment_needs_an_existing_directory(tmp_path):
    with pytest.raises(NotADirectoryError):
        HostEnvironment(tmp_path / "missing")
