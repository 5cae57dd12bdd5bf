"""An OpenAI-compatible HTTP server over a ``LocalPolicy`` (``ale serve-model``).

Any agent that speaks the OpenAI chat API can act with the local policy, and
with ``record`` every call is appended to a JSONL file with the exact token ids,
log-probs and policy version, so those runs can be trained on.

Tools are not native to small models: the server describes them in the system
prompt, asks for ``<tool_call>{...}</tool_call>``, stops at ``</tool_call>`` and
turns the tag back into OpenAI ``tool_calls``. A request whose history extends
an earlier call's (messages, then that call's reply) continues its token
sequence, so generated ids are never re-tokenized across turns.
"""

from __future__ import annotations

import hashlib
import json
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from openale.agent.actions import STOPS, ActionParseError, format_instructions
from openale.agent.actions import parse_tool_call_tags as parse_tool_calls
from openale.agent.models.base import ModelError, ModelResponse
from openale.agent.models.local import LocalPolicy, PromptTooLongError
from openale.agent.trajectory import ToolCall, ToolResult, observation

RECORD_FORMAT = "openale.served-call/1"
ROLES = {"system", "developer", "user", "assistant", "tool"}

# -- the OpenAI schema (the parts this server speaks) ---------------------------------


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown OpenAI options are accepted, unused

    model: str | None = None
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None


class FunctionCall(BaseModel):
    name: str
    arguments: str  # JSON, as OpenAI sends it


class ChatToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ChatToolCall] | None = None


class Choice(BaseModel):
    index: int = 0
    message: ChatMessage
    finish_reason: str
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "openale"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ServedCall(BaseModel):
    """One line of the ``record`` file: a self-contained, trainable sample."""

    format: str = RECORD_FORMAT
    id: str
    created: datetime
    model: str
    policy_version: int
    messages: list[dict[str, Any]]  # as the client sent them
    tools: list[dict[str, Any]] | None = None
    prompt_token_ids: list[int]  # the whole context the tokens were generated after
    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str


class APIError(Exception):
    """An error the client gets in OpenAI's shape: ``{"error": {"message", "type", "code"}}``."""

    def __init__(self, status: int, message: str, type_: str, code: str | None = None):
        super().__init__(message)
        self.status, self.type, self.code = status, type_, code


# -- messages in, tool calls out ------------------------------------------------------


def chat_messages(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    """The request's chat as the policy's template renders it: tools in the system prompt,
    tool calls as ``<tool_call>`` text, tool results as observations in user turns."""
    names: dict[str, str] = {}
    msgs: list[dict[str, Any]] = []
    for m in request.messages:
        role, content = m.get("role"), m.get("content") or ""
        if role not in ROLES:
            raise APIError(400, f"unknown message role {role!r}", "invalid_request_error")
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if role == "assistant" and m.get("tool_calls"):
            parts = [content] if content else []
            for call in m["tool_calls"]:
                fn = call.get("function", {})
                names[call.get("id", "")] = fn.get("name", "")
                args = _json_or_text(fn.get("arguments") or "{}")
                body = json.dumps({"name": fn.get("name"), "arguments": args})
                parts.append(f"<tool_call>{body}</tool_call>")
            msgs.append({"role": "assistant", "content": "\n".join(parts)})
        elif role == "tool":
            call_id = m.get("tool_call_id", "")
            result = ToolResult(call_id=call_id, name=names.get(call_id, "tool"), output=content)
            msgs.append({"role": "user", "content": observation(result)})
        elif role == "developer":
            msgs.append({"role": "system", "content": content})
        else:
            msgs.append({"role": role, "content": content})
    tools = _tools(request)
    if tools:
        instructions = format_instructions("tool_call_tags", tools)
        if msgs and msgs[0]["role"] == "system":
            msgs[0] = {"role": "system", "content": f"{msgs[0]['content']}\n\n{instructions}"}
        else:
            msgs.insert(0, {"role": "system", "content": instructions})
    return msgs


def split_tool_calls(text: str) -> tuple[str | None, list[ToolCall]]:
    """The text before the first ``<tool_call>`` and the parsed calls; malformed calls stay text."""
    try:
        calls = parse_tool_calls(text)
    except ActionParseError:
        return text, []
    if not calls:
        return text, []
    before = text.split("<tool_call>", 1)[0].strip()
    return before or None, calls


def _tools(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    if not request.tools or request.tool_choice == "none":
        return []
    tools = []
    for t in request.tools:
        fn = t.get("function", t)
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": fn["name"],
                    "description": fn.get("description", ""),
                    "parameters": fn.get("parameters", {"type": "object", "properties": {}}),
                },
            }
        )
    return tools


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _key(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


# -- the app --------------------------------------------------------------------------


def create_app(policy: LocalPolicy, *, token: str, record: str | Path | None = None) -> FastAPI:
    """The FastAPI app: ``POST /v1/chat/completions``, ``GET /v1/models``, bearer ``token``."""
    app = FastAPI(title="openale serve-model", version="1")
    started = int(time.time())
    record_path = Path(record) if record else None
    record_lock = threading.Lock()
    if record_path:
        record_path.parent.mkdir(parents=True, exist_ok=True)

    @app.exception_handler(APIError)
    async def api_error(_: Request, e: APIError) -> JSONResponse:
        body = {"error": {"message": str(e), "type": e.type, "code": e.code, "param": None}}
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
        return JSONResponse(body, status_code=e.status, headers=headers)

    def authorized(authorization: str | None = Header(None)) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), token):
            message = "missing or wrong bearer token"
            raise APIError(401, message, "invalid_request_error", "invalid_api_key")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": policy.name, "policy_version": policy.version}

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    def models() -> ModelList:
        return ModelList(data=[ModelCard(id=policy.name, created=started)])

    def run(request: ChatCompletionRequest, on_text=None) -> tuple[ModelResponse, str]:
        messages = chat_messages(request)
        conversation = _key(messages)
        # Continue the token sequence of the call whose messages this history extends.
        for k in range(len(messages) - 1, 0, -1):
            if messages[k]["role"] == "assistant" and policy.fork_conversation(
                _key(messages[:k]), conversation
            ):
                break
        stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
        if _tools(request):
            stop += STOPS["tool_call_tags"]
        try:
            response = policy.complete(
                messages,
                stop=stop,
                conversation_id=conversation,
                temperature=request.temperature,
                top_p=request.top_p,
                max_new_tokens=request.max_completion_tokens or request.max_tokens,
                seed=request.seed,
                on_text=on_text,
            )
        except PromptTooLongError as e:
            raise APIError(400, str(e), "invalid_request_error", "context_length_exceeded") from e
        except ModelError as e:
            raise APIError(500, str(e), "server_error") from e
        call_id = "chatcmpl-" + secrets.token_hex(12)
        if record_path:
            context = policy.context_ids(conversation)[: -len(response.token_ids) or None]
            row = ServedCall(
                id=call_id,
                created=datetime.now(UTC),
                model=policy.name,
                policy_version=response.policy_version,
                messages=request.messages,
                tools=request.tools,
                prompt_token_ids=context,
                token_ids=response.token_ids,
                logprobs=response.logprobs,
                text=response.text,
                finish_reason=response.finish_reason,
            )
            with record_lock, record_path.open("a") as f:
                f.write(row.model_dump_json() + "\n")
        return response, call_id

    def answer(request: ChatCompletionRequest, response: ModelResponse) -> tuple[ChatMessage, str]:
        content, calls = response.text, []
        if _tools(request):
            content, calls = split_tool_calls(response.text)
        tool_calls = []
        for c in calls:
            function = FunctionCall(name=c.name, arguments=json.dumps(c.arguments))
            tool_calls.append(ChatToolCall(id=c.id, function=function))
        message = ChatMessage(content=content, tool_calls=tool_calls or None)
        return message, "tool_calls" if calls else response.finish_reason or "stop"

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)], response_model=None)
    def chat_completions(request: ChatCompletionRequest) -> ChatCompletion | StreamingResponse:
        if request.stream:
            return StreamingResponse(stream(request), media_type="text/event-stream")
        response, call_id = run(request)
        message, finish = answer(request, response)
        return ChatCompletion(
            id=call_id,
            created=int(time.time()),
            model=policy.name,
            choices=[Choice(message=message, finish_reason=finish)],
            usage=_usage(response),
        )

    def stream(request: ChatCompletionRequest) -> Iterator[str]:
        """Server-sent events; text streams token by token, tool calls come whole at the end."""
        pieces: queue.Queue[Any] = queue.Queue()
        with_tools = bool(_tools(request))
        on_text = None if with_tools else pieces.put

        def generate() -> None:
            try:
                pieces.put(run(request, on_text))
            except Exception as e:  # handed to the stream, which reports it
                pieces.put(e)

        threading.Thread(target=generate, daemon=True).start()
        created, chunk_id = int(time.time()), "chatcmpl-" + secrets.token_hex(12)

        def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choices = (
                [{"index": 0, "delta": delta, "finish_reason": finish}] if delta or finish else []
            )
            chunk = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": policy.name,
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(chunk)}\n\n"

        yield event({"role": "assistant", "content": ""})
        while True:
            item = pieces.get()
            if isinstance(item, str):
                yield event({"content": item})
                continue
            if isinstance(item, Exception):
                error = {"error": {"message": str(item), "type": "server_error"}}
                yield f"data: {json.dumps(error)}\n\n"
                return
            response, _ = item
            break
        message, finish = answer(request, response)
        if with_tools:
            delta: dict[str, Any] = {"content": message.content}
            if message.tool_calls:
                delta["tool_calls"] = [
                    {"index": i, **c.model_dump()} for i, c in enumerate(message.tool_calls)
                ]
            yield event(delta)
        yield event({}, finish)
        if (request.stream_options or {}).get("include_usage"):
            yield event({}, usage=_usage(response).model_dump())
        yield "data: [DONE]\n\n"

    return app


def _usage(response: ModelResponse) -> CompletionUsage:
    u = response.usage
    return CompletionUsage(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.prompt_tokens + u.completion_tokens,
    )
