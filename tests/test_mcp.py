"""MCP tools against real MCP servers: the test calc server over stdio and over
streamable HTTP, and the `mcp-server-time` package from PyPI."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from openale.agent.tools.base import Tool, ToolRegistry
from openale.agent.tools.mcp import McpServerError, McpToolset, connect_mcp_servers
from openale.agent.tools.mcp_config import McpServerConfig, load_mcp_servers, mcp_tool_name

pytestmark = pytest.mark.timeout(60)

CALC = Path(__file__).parent / "mcp_servers" / "calc_server.py"


def calc_config(**fields) -> McpServerConfig:
    return McpServerConfig(name="calc", command=sys.executable, args=[str(CALC)], **fields)


def child_pids(marker: str) -> list[int]:
    """Our child processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        if ppid == os.getpid() and marker in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def calc() -> McpToolset:
    with connect_mcp_servers([calc_config(timeout_s=1)]) as toolset:
        yield toolset


def tool(toolset: McpToolset, name: str) -> Tool:
    return {t.name: t for t in toolset.tools()}[name]


def test_tools_are_listed_with_prefixed_names_and_schemas(calc):
    tools = {t.name: t for t in calc.tools()}
    assert set(tools) == {
        "mcp__calc__add",
        "mcp__calc__slow",
        "mcp__calc__fail",
        "mcp__calc__picture",
        "mcp__calc__do_something_weird_",
        "mcp__calc__header",
        "mcp__calc__crash",
    }
    add = tools["mcp__calc__add"]
    assert isinstance(add, Tool)
    assert add.description == "Add two integers."
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert add.read_only is True  # annotations.readOnlyHint
    assert tools["mcp__calc__slow"].read_only is False  # no hint
    # The registry takes them as they are, schemas included.
    registry = ToolRegistry(calc.tools())
    assert registry.validate("mcp__calc__add", {"a": 1, "b": 2}) is add


def test_a_call_returns_the_result(calc):
    out = tool(calc, "mcp__calc__add").run({"a": 2, "b": 40}, None)
    assert (out.output, out.is_error) == ("42", False)
    # The remote name is used even when the local one had to be sanitized.
    assert tool(calc, "mcp__calc__do_something_weird_").run({}, None).output == "ok"


def test_images_are_described_briefly(calc):
    out = tool(calc, "mcp__calc__picture").run({}, None)
    assert out.output.splitlines() == ["a red dot", "[image: image/png, about 9 bytes]"]


def test_a_tool_error_is_an_error_output(calc):
    out = tool(calc, "mcp__calc__fail").run({"message": "no carry"}, None)
    assert out.is_error
    assert "no carry" in out.output


def test_a_timeout_is_an_error_and_the_connection_stays_usable(calc):
    start = time.monotonic()
    out = tool(calc, "mcp__calc__slow").run({"seconds": 10}, None)
    assert time.monotonic() - start < 5
    assert out.is_error
    assert out.output == "MCP tool 'slow' on server 'calc' timed out after 1s"
    assert tool(calc, "mcp__calc__add").run({"a": 1, "b": 1}, None).output == "2"
    assert tool(calc, "mcp__calc__slow").run({"seconds": 0.1}, None).output == "slept 0.1s"


def test_calls_from_many_threads_share_one_session(calc):
    from concurrent.futures import ThreadPoolExecutor

    add = tool(calc, "mcp__calc__add")
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda i: add.run({"a": i, "b": i}, None).output, range(32)))
    assert outs == [str(2 * i) for i in range(32)]


def test_include_and_exclude_filter_tools():
    configs = [
        calc_config(include=["add", "sl*"]),
        # Full names work too: drop calc2's tools with an "a" in their name.
        calc_config(exclude=["mcp__calc2__*a*"]).model_copy(update={"name": "calc2"}),
    ]
    with connect_mcp_servers(configs) as toolset:
        names = {t.name for t in toolset.tools()}
    assert names == {
        "mcp__calc__add",
        "mcp__calc__slow",
        "mcp__calc2__slow",
        "mcp__calc2__picture",
        "mcp__calc2__do_something_weird_",
    }


def test_close_stops_the_server_process():
    marker = str(CALC)
    before = set(child_pids(marker))
    toolset = connect_mcp_servers([calc_config()])
    (pid,) = set(child_pids(marker)) - before
    assert tool(toolset, "mcp__calc__add").run({"a": 1, "b": 2}, None).output == "3"
    toolset.close()
    assert not Path(f"/proc/{pid}").exists()  # exited and reaped: no zombie
    out = tool(toolset, "mcp__calc__add").run({"a": 1, "b": 2}, None)
    assert out.is_error and "not connected" in out.output
    toolset.close()  # twice is fine


def test_a_missing_command_raises_a_clear_error():
    config = McpServerConfig(name="ghost", command="no-such-mcp-server-xyz", args=["--flag"])
    with pytest.raises(McpServerError) as e:
        connect_mcp_servers([config])
    message = str(e.value)
    assert "'ghost'" in message
    assert "no-such-mcp-server-xyz --flag" in message
    assert "command not found" in message


def test_a_server_that_exits_at_start_shows_its_stderr():
    crash = "import sys; print('missing API key FOO', file=sys.stderr); sys.exit(2)"
    config = McpServerConfig(name="crashy", command=sys.executable, args=["-c", crash])
    with pytest.raises(McpServerError, match="(?s)'crashy'.*missing API key FOO"):
        connect_mcp_servers([config])


def test_a_server_that_never_answers_times_out_at_start():
    mute = "import time; time.sleep(60)  # mute-server"
    config = McpServerConfig(
        name="mute", command=sys.executable, args=["-c", mute], startup_timeout_s=1
    )
    with pytest.raises(McpServerError, match="'mute' .* failed to start: no answer within 1s"):
        connect_mcp_servers([config])
    assert child_pids("mute-server") == []


def test_a_server_that_dies_mid_session_gives_error_outputs():
    with connect_mcp_servers([calc_config()]) as toolset:
        out = tool(toolset, "mcp__calc__crash").run({}, None)
        assert out.is_error
        assert out.output.startswith("MCP tool 'crash' on server 'calc' failed")
        assert "crashing on purpose" in out.output
        again = tool(toolset, "mcp__calc__add").run({"a": 1, "b": 2}, None)
        assert again.is_error and "'calc'" in again.output


def test_tool_names_must_stay_unique_across_servers():
    configs = [calc_config(include=["add"]).model_copy(update={"name": n}) for n in ("a.b", "a_b")]
    with pytest.raises(McpServerError, match="both map to 'mcp__a_b__add'"):
        connect_mcp_servers(configs)


def test_a_failed_server_stops_the_others():
    marker = str(CALC)
    before = set(child_pids(marker))
    bad = McpServerConfig(name="ghost", command="no-such-mcp-server-xyz")
    with pytest.raises(McpServerError, match="ghost"):
        connect_mcp_servers([calc_config(), bad])
    assert set(child_pids(marker)) - before == set()


def test_disabled_servers_are_not_started():
    with connect_mcp_servers([calc_config(enabled=False)]) as toolset:
        assert toolset.tools() == []


# -- streamable HTTP ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_url():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(CALC), "--http", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the HTTP MCP server did not come up") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_streamable_http_server(http_url):
    config = McpServerConfig(
        name="web",
        url=http_url,
        headers={"X-Probe": "hello"},
        timeout_s=1,
        exclude=["picture"],
    )
    assert config.transport == "http"
    with connect_mcp_servers([config]) as toolset:
        names = {t.name for t in toolset.tools()}
        assert "mcp__web__add" in names and "mcp__web__picture" not in names
        assert tool(toolset, "mcp__web__add").run({"a": 20, "b": 22}, None).output == "42"
        assert tool(toolset, "mcp__web__header").run({"name": "X-Probe"}, None).output == "hello"
        assert tool(toolset, "mcp__web__fail").run({}, None).is_error
        slow = tool(toolset, "mcp__web__slow").run({"seconds": 10}, None)
        assert slow.is_error and "timed out after 1s" in slow.output
        assert tool(toolset, "mcp__web__add").run({"a": 1, "b": 2}, None).output == "3"


def test_an_unreachable_url_raises_a_clear_error():
    config = McpServerConfig(name="down", url=f"http://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(McpServerError, match=r"'down' \(http://127\.0\.0\.1:\d+/mcp\) failed"):
        connect_mcp_servers([config])


# -- a server from PyPI ---------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("mcp_server_time") is None,
    reason="mcp-server-time is not installed (pip install -e '.[dev]')",
)
def test_pypi_time_server():
    config = McpServerConfig(
        name="time", command=sys.executable, args=["-m", "mcp_server_time", "--local-timezone=UTC"]
    )
    with connect_mcp_servers([config]) as toolset:
        tools = {t.name: t for t in toolset.tools()}
        assert set(tools) == {"mcp__time__get_current_time", "mcp__time__convert_time"}
        convert = tools["mcp__time__convert_time"]
        assert convert.read_only is True
        assert set(convert.parameters["required"]) == {"source_timezone", "time", "target_timezone"}
        args = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
        out = convert.run(args, None)
        assert not out.is_error, out.output
        assert json.loads(out.output)["target"]["datetime"].endswith("T21:00:00+09:00")
        bad = convert.run({**args, "target_timezone": "Mars/Olympus"}, None)
        assert bad.is_error and "Mars/Olympus" in bad.output


# -- settings -------------------------------------------------------------------------

SETTINGS = """
[mcp.servers.fs]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]
env = { DEBUG = "1" }
exclude = ["write_*"]

[mcp.servers.docs]
url = "https://example.invalid/mcp"
headers = { Authorization = "Bearer t" }
timeout_s = 10

[mcp.servers.off]
transport = "stdio"
command = "x"
enabled = false
"""


def test_servers_load_from_toml():
    doc = tomllib.loads(SETTINGS)
    configs = {c.name: c for c in load_mcp_servers(doc["mcp"])}
    assert configs == {c.name: c for c in load_mcp_servers(doc["mcp"]["servers"])}
    fs, docs, off = configs["fs"], configs["docs"], configs["off"]
    assert (fs.transport, fs.command, fs.env, fs.timeout_s) == ("stdio", "npx", {"DEBUG": "1"}, 60)
    assert not fs.wants("write_file") and fs.wants("read_file")
    assert (docs.transport, docs.headers["Authorization"], docs.timeout_s) == (
        "http",
        "Bearer t",
        10,
    )
    assert off.enabled is False


@pytest.mark.parametrize(
    "table, problem",
    [
        ({"s": {"transport": "stdio"}}, "needs `command`"),
        ({"s": {"transport": "http"}}, "needs `url`"),
        ({"s": {"url": "http://x", "command": "y"}}, "are for stdio servers"),
        ({"s": {"command": "y", "timeout": 5}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_tables_are_rejected(table, problem):
    with pytest.raises(ValueError, match=problem):
        load_mcp_servers(table)


def test_tool_names_are_sanitized_and_bounded():
    assert mcp_tool_name("my server", "files/read.v2") == "mcp__my_server__files_read_v2"
    long_a, long_b = mcp_tool_name("s", "x" * 80 + "a"), mcp_tool_name("s", "x" * 80 + "b")
    assert len(long_a) == len(long_b) == 64 and long_a != long_b
