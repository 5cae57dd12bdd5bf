"""``ale serve-model`` as a real server process, called with the ``openai`` SDK.

The served model is a tiny Llama taught to answer "List the files." with a
``<tool_call>``, saved as a checkpoint folder: what it says is known, so tool
calls, stop strings and recording can be checked end to end.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import openai
import pytest
from openai import OpenAI

from openale.agent.models.smollm import smollm2_tokenizer, tiny_random_model
from openale.agent.serve import ChatCompletionRequest, chat_messages, split_tool_calls
from tests.test_local_policy import LIST_FILES, TOOL_REPLY, teach

TOKEN = "test-token-123"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "shell",
            "description": "Run a shell command.",
            "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
        },
    }
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    checkpoint, record = folder / "model", folder / "calls.jsonl"
    tokenizer = smollm2_tokenizer()
    model, _ = tiny_random_model(tokenizer=tokenizer)
    with_tools = chat_messages(ChatCompletionRequest(messages=LIST_FILES, tools=TOOLS))
    teach(model, tokenizer, [LIST_FILES, with_tools], TOOL_REPLY)
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)

    port = free_port()
    command = [sys.executable, "-m", "openale.cli.serve_model", "--model", str(checkpoint)]
    command += ["--port", str(port), "--token", TOKEN, "--record", str(record)]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start:\n{proc.stdout.read()}")
        time.sleep(0.2)
    yield base, record
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def client(server):
    return OpenAI(base_url=f"{server[0]}/v1", api_key=TOKEN, max_retries=0)


def rows(record) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_models_lists_the_served_checkpoint(client):
    (card,) = client.models.list().data
    assert card.id.endswith("model")
    assert card.owned_by == "openale"


def test_plain_completion(client):
    r = client.chat.completions.create(model="local", messages=LIST_FILES, temperature=0)
    choice = r.choices[0]
    assert choice.message.content == TOOL_REPLY  # no tools asked for: the tag is just text
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_max_tokens_ends_with_length(client):
    r = client.chat.completions.create(
        model="local", messages=LIST_FILES, temperature=0, max_tokens=3
    )
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3


def test_tools_come_back_as_tool_calls(client):
    r = client.chat.completions.create(
        model="local", messages=LIST_FILES, tools=TOOLS, temperature=0
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "shell"
    assert json.loads(call.function.arguments) == {"command": "ls"}


def test_a_tool_result_turn_continues_the_recorded_token_sequence(client, server):
    first = client.chat.completions.create(
        model="local", messages=LIST_FILES, tools=TOOLS, temperature=0
    )
    message = first.choices[0].message
    history = [
        *LIST_FILES,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "a.txt\nb.txt"},
    ]
    client.chat.completions.create(
        model="local", messages=history, tools=TOOLS, temperature=0, max_tokens=4
    )
    *_, before, after = rows(server[1])
    earlier = before["prompt_token_ids"] + before["token_ids"]
    assert after["prompt_token_ids"][: len(earlier)] == earlier  # generated ids kept verbatim
    assert after["messages"][-1]["content"] == "a.txt\nb.txt"


def test_record_holds_token_ids_and_logprobs(client, server):
    r = client.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Hello"}], temperature=0, max_tokens=5
    )
    row = rows(server[1])[-1]
    assert row["format"] == "openale.served-call/1"
    assert row["id"] == r.id
    assert row["policy_version"] == 0
    assert len(row["token_ids"]) == len(row["logprobs"]) == 5
    assert all(lp <= 0 for lp in row["logprobs"])
    assert len(row["prompt_token_ids"]) == r.usage.prompt_tokens
    assert row["messages"] == [{"role": "user", "content": "Hello"}]


def test_streaming_sends_the_same_text(client):
    stream = client.chat.completions.create(
        model="local",
        messages=LIST_FILES,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TOOL_REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens > 0


def test_streaming_with_tools_sends_the_tool_call(client):
    stream = client.chat.completions.create(
        model="local", messages=LIST_FILES, tools=TOOLS, temperature=0, stream=True
    )
    chunks = [c for c in stream if c.choices]
    calls = [t for c in chunks for t in c.choices[0].delta.tool_calls or []]
    assert [t.function.name for t in calls] == ["shell"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_token_is_required(server):
    anonymous = OpenAI(base_url=f"{server[0]}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.chat.completions.create(model="local", messages=LIST_FILES)
    r = httpx.get(f"{server[0]}/v1/models")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"


def test_bad_requests_are_rejected(client):
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="local", messages=LIST_FILES, temperature=5)


# -- without a server -----------------------------------------------------------------


def test_split_tool_calls():
    text, calls = split_tool_calls(
        'Let me look.\n<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call>'
    )
    assert text == "Let me look."
    assert [(c.name, c.arguments) for c in calls] == [("shell", {"command": "ls"})]
    # Arguments sent as a JSON string are accepted too.
    _, calls = split_tool_calls(
        '<tool_call>{"name": "shell", "arguments": "{\\"command\\": \\"pwd\\"}"}</tool_call>'
    )
    assert calls[0].arguments == {"command": "pwd"}
    # Malformed calls stay text for the client to see.
    assert split_tool_calls("<tool_call>{not json</tool_call>") == (
        "<tool_call>{not json</tool_call>",
        [],
    )
    assert split_tool_calls("no call here") == ("no call here", [])


def test_chat_messages_put_tools_in_the_system_prompt_and_results_in_user_turns():
    request = ChatCompletionRequest(
        messages=[
            {"role": "system", "content": "Be brief."},
            *LIST_FILES,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "shell", "arguments": '{"command": "ls"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
        ],
        tools=TOOLS,
    )
    system, user, assistant, result = chat_messages(request)
    assert system["content"].startswith("Be brief.\n\n")
    assert "<tool_call>" in system["content"] and "shell" in system["content"]
    assert user == LIST_FILES[0]
    assert assistant == {
        "role": "assistant",
        "content": '<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call>',
    }
    assert result["role"] == "user"
    assert '<observation tool="shell">' in result["content"] and "a.txt" in result["content"]
